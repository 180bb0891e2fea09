"""Play a Flex agent from the command line, with the standard ``twilio`` library.

Does what the Flex agent desktop does, through Twilio's public APIs (TaskRouter, Flex
Interactions, Conversations), against the sandbox started by ``make run`` or, with
``--twilio``, a real Flex account (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN):

    .venv/bin/python examples/agent.py list
    .venv/bin/python examples/agent.py accept
    .venv/bin/python examples/agent.py reply "Hi, I'm Alex. How can I help?"
    .venv/bin/python examples/agent.py close

``accept`` makes the agent an Available worker and accepts the task offered to them
(Flex then joins them to the conversation); ``reply`` and ``close`` act on the newest
conversation the agent holds unless ``--sid`` is given; ``close`` ends the chat and
completes the task by closing the Interaction channel, as Flex does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN


def client_for(args: argparse.Namespace) -> Client:
    client = Client(
        os.environ.get("TWILIO_ACCOUNT_SID") or SANDBOX_ACCOUNT_SID,
        os.environ.get("TWILIO_AUTH_TOKEN") or SANDBOX_AUTH_TOKEN,
    )
    if not args.twilio:
        base = args.sandbox.rstrip("/")
        client.conversations.base_url = f"{base}/sandbox/twilio"
        client.taskrouter.base_url = f"{base}/sandbox/taskrouter"
        client.flex_api.base_url = f"{base}/sandbox/flex"
    return client


def workspace(client: Client, sid: str | None) -> Any:
    """The Flex workspace (a Flex account has one: Flex Task Assignment)."""
    if sid is None:
        sid = client.taskrouter.v1.workspaces.list(limit=1)[0].sid
    return client.taskrouter.v1.workspaces(sid)


def worker(ws: Any, name: str) -> Any:
    """The agent's worker, Available (made on first use)."""
    available = ws.activities.list(friendly_name="Available")[0].sid
    found = ws.workers.list(friendly_name=name)
    if not found:
        return ws.workers.create(friendly_name=name, activity_sid=available)
    if found[0].activity_sid != available:
        return ws.workers(found[0].sid).update(activity_sid=available)
    return found[0]


def held_tasks(ws: Any, worker_sid: str) -> list[Any]:
    """The tasks the agent has accepted and not completed, newest first."""
    accepted = ws.workers(worker_sid).reservations.list(reservation_status="accepted")
    tasks = [ws.tasks(r.task_sid).fetch() for r in accepted]
    return sorted(tasks, key=lambda t: t.date_created, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["list", "accept", "reply", "close"])
    parser.add_argument("text", nargs="?", help="the reply, for 'reply'")
    parser.add_argument("--sid", help="conversation SID (default: the newest one you hold)")
    parser.add_argument("--agent", default="agent.alex", help="the agent (worker) name")
    parser.add_argument("--workspace", help="TaskRouter workspace SID (default: the first)")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for an offer")
    parser.add_argument("--sandbox", default="http://127.0.0.1:5002", help="the sandbox's URL")
    parser.add_argument("--twilio", action="store_true", help="use Twilio itself")
    args = parser.parse_args()

    client = client_for(args)
    ws = workspace(client, args.workspace)

    if args.action == "list":
        for task in ws.tasks.list(limit=20):
            # A list leaves the attributes out (Twilio shows them on a fetch only).
            attributes = json.loads(ws.tasks(task.sid).fetch().attributes or "{}")
            print(f"{attributes.get('conversationSid')}  {task.assignment_status:9}  {task.sid}")
        return 0

    me = worker(ws, args.agent)
    if args.action == "accept":
        deadline = time.monotonic() + args.wait
        while True:
            offers = ws.workers(me.sid).reservations.list(reservation_status="pending")
            if offers:
                break
            if time.monotonic() >= deadline:
                print(f"Nothing was offered to {args.agent}.", file=sys.stderr)
                return 1
            time.sleep(0.25)
        ws.workers(me.sid).reservations(offers[0].sid).update(reservation_status="accepted")
        sid = json.loads(ws.tasks(offers[0].task_sid).fetch().attributes)["conversationSid"]
        print(f"{args.agent} accepted {sid}")
        return 0

    held = held_tasks(ws, me.sid)
    by_conversation = {json.loads(t.attributes)["conversationSid"]: t for t in held}
    sid = args.sid or next(iter(by_conversation), None)
    if sid is None or sid not in by_conversation:
        print(f"{args.agent} holds no such conversation: accept one first.", file=sys.stderr)
        return 1

    if args.action == "close":
        attributes = json.loads(by_conversation[sid].attributes)
        channel = client.flex_api.v1.interaction(attributes["flexInteractionSid"]).channels(
            attributes["flexInteractionChannelSid"]
        )
        channel.update(status="closed", routing={"status": "closed"})
        print(f"Closed {sid} and completed its task")
        return 0

    if not args.text:
        parser.error("reply needs the text to send")
    message = client.conversations.v1.conversations(sid).messages.create(
        author=args.agent, body=args.text, x_twilio_webhook_enabled="true"
    )
    print(f"Replied in {sid} as {args.agent}: {message.sid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
