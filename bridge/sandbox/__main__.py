"""Run the sandbox alone: ``python -m bridge.sandbox --port 5003``.

Serves the Conversations, TaskRouter, Flex and Studio emulators and the agent console at the same
paths as when embedded (``/sandbox/twilio/v1/...``, ``/sandbox/``), accepting the credentials in
TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (the documented sandbox ones when unset).
A bridge uses it as it would use Twilio: TWILIO_API_BASE_URL=http://HOST:PORT/sandbox/twilio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from dotenv import load_dotenv
from hypercorn.asyncio import serve
from hypercorn.config import Config

from bridge.config import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FLOW_SID,
    SANDBOX_WORKFLOW_SID,
    SANDBOX_WORKSPACE_SID,
    ConfigError,
    is_loopback,
    sandbox_webhook_urls,
)
from bridge.sandbox.app import create_sandbox_app
from bridge.sandbox.outbound import WebhookTargets, exposure_warning


def main(argv: list[str] | None = None, prog: str = "python -m bridge.sandbox") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5003)
    args = parser.parse_args(argv)
    load_dotenv(Path.cwd() / ".env")  # the working directory's, not a parent's
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        allowed = sandbox_webhook_urls(os.environ)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(exposure_warning(args.host), file=sys.stderr, flush=True)
    account_sid = os.environ.get("TWILIO_ACCOUNT_SID") or SANDBOX_ACCOUNT_SID
    auth_token = os.environ.get("TWILIO_AUTH_TOKEN") or SANDBOX_AUTH_TOKEN
    config = Config()
    config.bind = [f"{args.host}:{args.port}"]
    config.accesslog = None
    config.graceful_timeout = 2
    base = f"http://{args.host}:{args.port}"
    print(
        f"Twilio sandbox on {base}/sandbox/twilio/v1 (account {account_sid}); "
        f"console {base}/sandbox/; sign-in provider {base}/sandbox/idp",
        flush=True,
    )
    app = create_sandbox_app(
        account_sid,
        auth_token,
        webhook_targets=WebhookTargets.from_setting(allowed, own=None),
        workspace_sid=SANDBOX_WORKSPACE_SID,
        workflow_sid=SANDBOX_WORKFLOW_SID,
        flow_sid=SANDBOX_FLOW_SID,
    )
    asyncio.run(serve(app, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
