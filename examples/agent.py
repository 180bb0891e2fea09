"""Play the Flex agent from the command line, with the standard ``twilio`` library.

Against the sandbox started by ``make run`` (defaults below) or any Conversations API:

    .venv/bin/python examples/agent.py list
    .venv/bin/python examples/agent.py reply "Hi, I'm Alex. How can I help?"
    .venv/bin/python examples/agent.py close

``reply`` and ``close`` act on the newest active conversation unless ``--sid`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys

from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["list", "reply", "close"])
    parser.add_argument("text", nargs="?", help="the reply, for 'reply'")
    parser.add_argument("--sid", help="conversation SID (default: the newest active one)")
    parser.add_argument("--agent", default="agent.alex", help="the agent's identity")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("TWILIO_API_BASE_URL", "http://127.0.0.1:5002/sandbox/twilio"),
    )
    args = parser.parse_args()

    client = Client(
        os.environ.get("TWILIO_ACCOUNT_SID") or SANDBOX_ACCOUNT_SID,
        os.environ.get("TWILIO_AUTH_TOKEN") or SANDBOX_AUTH_TOKEN,
    )
    client.conversations.base_url = args.base_url
    conversations = client.conversations.v1.conversations

    if args.action == "list":
        for conv in conversations.list(limit=20):
            print(f"{conv.sid}  {conv.state:8}  {conv.friendly_name}")
        return 0

    sid = args.sid
    if sid is None:
        active = conversations.list(state="active", limit=1)
        if not active:
            print("No active conversation: send a message to the bridge first.", file=sys.stderr)
            return 1
        sid = active[0].sid
    conversation = conversations(sid)

    if args.action == "close":
        conversation.update(state="closed", x_twilio_webhook_enabled="true")
        print(f"Closed {sid}")
        return 0

    if not args.text:
        parser.error("reply needs the text to send")
    if args.agent not in {p.identity for p in conversation.participants.list()}:
        conversation.participants.create(identity=args.agent, x_twilio_webhook_enabled="true")
    message = conversation.messages.create(
        author=args.agent, body=args.text, x_twilio_webhook_enabled="true"
    )
    print(f"Replied in {sid} as {args.agent}: {message.sid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
