"""Flex Bridge entry point: ``python main.py [serve|doctor]``."""

from __future__ import annotations

import argparse
import sys

from dotenv import load_dotenv

from bridge import logs
from bridge.config import ConfigError, Settings, is_loopback, load_settings


def banner(settings: Settings) -> str:
    url = settings.public_url
    lines = [
        "",
        f"Flex Bridge listening on http://{settings.host}:{settings.port}",
        f"  public URL        {url}",
        f"  OpenAPI           {url}/openapi.yaml",
        f"  plugin manifest   {url}/.well-known/ai-plugin.json",
    ]
    if settings.sandbox:
        lines += [
            "",
            "Sandbox mode: Twilio is emulated locally, nothing leaves this machine.",
            f"  agent console     {url}/sandbox/   <- answer as the Flex agent here",
            f"  Twilio API        {settings.local_url}/sandbox/twilio/v1",
            f"  account SID       {settings.twilio_account_sid}",
            f"  auth token        {settings.twilio_auth_token}",
        ]
    lines += [
        "",
        "Try it:",
        f"  curl -s -X POST {url}/send/alice -H 'Content-Type: application/json' \\",
        '       -d \'{"msg": "I need a human, please"}\'',
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "doctor"],
        help="serve (default), or doctor: check the settings and a running bridge",
    )
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from bridge.doctor import main as doctor

        return doctor()
    load_dotenv()
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


if __name__ == "__main__":
    sys.exit(main())
