"""The ``flex-bridge`` command: ``serve`` (the default), ``doctor``, ``sandbox``, ``--version``.

Installed with the package (``pip install flex-bridge``, ``pipx run flex-bridge``); in a
checkout ``python main.py`` does the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlencode

from dotenv import load_dotenv

from bridge import logs
from bridge.config import (
    SANDBOX_AUTH_TOKEN,
    SANDBOX_SIGNED_IN_PATH,
    ConfigError,
    Settings,
    is_loopback,
    load_settings,
)
from bridge.version import package_version


def banner(settings: Settings) -> str:
    """What a person starting the service needs next: its URLs, and how to call it in the
    auth mode it runs in."""
    url = settings.public_url
    lines = [
        "",
        f"Flex Bridge {package_version()} listening on http://{settings.host}:{settings.port}",
        f"  public URL        {url}",
        f"  API reference     {url}/docs",
        f"  OpenAPI           {url}/openapi.yaml",
        f"  plugin manifest   {url}/.well-known/ai-plugin.json",
        f"  MCP endpoint      {url}/mcp",
    ]
    if settings.sandbox:
        lines += [
            "",
            "Sandbox mode: Twilio is emulated locally, nothing leaves this machine.",
            f"  agent console     {url}/sandbox/   <- open it first: answer as the Flex agent",
            f"  MCP host          {url}/sandbox/mcp-host/   (the live chat pane; make mcp-host)",
            f"  Twilio API        {settings.local_url}/sandbox/twilio/v1",
            f"  account SID       {settings.twilio_account_sid}",
            # Only the sandbox's documented token: a real one never goes to a terminal.
            "  auth token        "
            + (
                settings.twilio_auth_token
                if settings.twilio_auth_token == SANDBOX_AUTH_TOKEN
                else "(TWILIO_AUTH_TOKEN)"
            ),
        ]
    auth = settings.auth
    if auth.mode == "oauth":
        lines += _oauth_lines(settings)
    elif auth.mode == "apikey":
        lines += [
            "",
            "Try it (AUTH_MODE=apikey: send one of API_KEYS):",
            f"  curl -s -X POST {url}/send/alice -H 'Content-Type: application/json' \\",
            "       -H 'Authorization: Bearer YOUR_API_KEY' \\",
            '       -d \'{"msg": "I need a human, please"}\'',
        ]
    else:
        if not settings.sandbox:
            lines += [
                "",
                "!" * 78,
                "!! ALLOW_INSECURE_NO_AUTH=1: anyone who reaches this address can send as any",
                "!! user and read any user's replies. Use AUTH_MODE=oauth (or apikey) for real.",
                "!" * 78,
            ]
        lines += [
            "",
            "Try it:",
            f"  curl -s -X POST {url}/send/alice -H 'Content-Type: application/json' \\",
            '       -d \'{"msg": "I need a human, please"}\'',
        ]
    return "\n".join([*lines, ""])


def _oauth_lines(settings: Settings) -> list[str]:
    url = settings.public_url
    auth = settings.auth
    lines = ["", "AUTH_MODE=oauth: users sign in; assistants get tokens for them."]
    if settings.sandbox:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": auth.oauth_client_id,
                "redirect_uri": f"{url}{SANDBOX_SIGNED_IN_PATH}",
                "scope": auth.scope,
                "state": "try-it",
            }
        )
        lines += [
            f"  dev client        {auth.oauth_client_id} (secret in OAUTH_CLIENT_SECRET, or the",
            "                    sandbox's documented one)",
            "  Sign in as a user, in a browser:",
            f"  {url}/oauth/authorize?{query}",
            "  The page you land on shows the token and the next call to make with it.",
        ]
    else:
        lines += [
            f"  authorize         {url}/oauth/authorize",
            f"  token             {url}/oauth/token",
        ]
    return lines


def _serve() -> int:
    load_dotenv(Path.cwd() / ".env")  # the working directory's, not a parent's
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level, bodies=settings.log_message_bodies)
    from bridge.server import run

    print(banner(settings), flush=True)
    if settings.sandbox and not is_loopback(settings.host):
        # Imported only for the sandbox, like the sandbox itself.
        from bridge.sandbox.outbound import exposure_warning

        print(exposure_warning(settings.host), file=sys.stderr, flush=True)
    run(settings)
    return 0


def main(argv: list[str] | None = None, prog: str = "flex-bridge") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Hand a chat from an AI assistant to a human agent in Twilio Flex.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the service (the default; sandbox mode without Twilio)")
    commands.add_parser("doctor", help="check the settings, Twilio and a running bridge")
    commands.add_parser(
        "sandbox",
        help="run the Twilio sandbox alone (--host, --port): a stand-in for Twilio",
        add_help=False,
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "sandbox":
        from bridge.sandbox.__main__ import main as sandbox

        return sandbox(rest, prog=f"{prog} sandbox")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "doctor":
        from bridge.doctor import main as doctor

        return doctor()
    return _serve()
