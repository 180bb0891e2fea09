"""What an agent does at the Flex agent desktop, on the emulated Flex and TaskRouter state:
sign in as a worker, change activity, accept or reject an offer, reply, end the chat
(wrap-up) and complete the task. Each step goes the way the Flex UI's goes, so it fires
the same TaskRouter events and conversation webhooks (``Source=SDK``)."""

from __future__ import annotations

import json
import re

from bridge.sandbox.console.views import USER_HASH
from bridge.sandbox.conversations.state import Conversation, Message
from bridge.sandbox.flex.state import Flex
from bridge.sandbox.taskrouter.state import Reservation, Task, Worker

MAX_AGENT_NAME = 64
MAX_BODY = 1600
#: Chats an agent of the console may have at once.
CONSOLE_CHAT_CAPACITY = 10
AGENT_NAME = re.compile(r"^[\w.@+\- ]+$")
WORKER_SID = re.compile(r"^WK[0-9a-f]{32}$")


class ConsoleError(Exception):
    """Answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def agent_name(raw: object) -> str:
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise ConsoleError(400, "invalid_agent", "Give your agent name.")
    if len(name) > MAX_AGENT_NAME or not AGENT_NAME.match(name):
        raise ConsoleError(
            400,
            "invalid_agent",
            f"An agent name is 1 to {MAX_AGENT_NAME} letters, digits, spaces or . _ - @ +.",
        )
    # Names the transcript gives other meanings: the system, and users' identity hashes.
    if name == "system" or USER_HASH.match(name):
        raise ConsoleError(400, "invalid_agent", f"{name!r} cannot be used as an agent name.")
    return name


def sign_in(flex: Flex, name: str) -> Worker:
    """The agent's worker, made on first sign-in (Available, with room for several chats,
    as a Flex agent with chat capacity); a returning agent keeps their activity."""
    workspace = flex.workspace
    found = next((w for w in workspace.workers.values() if w.friendly_name == name), None)
    if found is not None:
        return found
    worker = workspace.add_worker(
        name, json.dumps({"full_name": name}), workspace.activity_named("Available").sid
    )
    worker.capacity = {"chat": CONSOLE_CHAT_CAPACITY, "default": 1}
    return worker


def agent(flex: Flex, raw: object) -> Worker:
    """The signed-in agent a request names (its worker SID)."""
    if not isinstance(raw, str) or not WORKER_SID.match(raw):
        raise ConsoleError(400, "invalid_agent", "Sign in as an agent first.")
    found = flex.workspace.workers.get(raw)
    if found is None:
        raise ConsoleError(404, "unknown_agent", "That agent is not signed in: sign in again.")
    return found


def set_activity(flex: Flex, worker: Worker, raw: object) -> Worker:
    workspace = flex.workspace
    names = [a.friendly_name for a in workspace.activities.values()]
    if not isinstance(raw, str) or raw not in names:
        raise ConsoleError(
            400, "invalid_activity", f"An activity is one of {', '.join(sorted(names))}."
        )
    activity = workspace.activity_named(raw)
    # As Flex does when an agent steps away: their open offers go to someone else.
    return workspace.set_activity(worker, activity.sid, reject_pending=not activity.available)


def answer_offer(flex: Flex, worker: Worker, sid: str, answer: str) -> Reservation:
    """Accept (Flex then joins the agent to the conversation) or reject an offer."""
    reservation = flex.workspace.reservations.get(sid)
    if reservation is None or reservation.worker_sid != worker.sid:
        raise ConsoleError(404, "not_found", "There is no such offer for you.")
    if reservation.reservation_status != "pending":
        why = {
            "timeout": "it timed out",
            "canceled": "the conversation ended",
            "rescinded": "it was taken back",
        }.get(reservation.reservation_status, f"it was {reservation.reservation_status}")
        raise ConsoleError(409, "offer_closed", f"This offer is no longer open: {why}.")
    return flex.workspace.answer_reservation(reservation, answer)


def reply(flex: Flex, worker: Worker, conv: Conversation, body: object) -> Message:
    if not isinstance(body, str) or not body.strip():
        raise ConsoleError(400, "empty_reply", "Write a reply before sending it.")
    if len(body) > MAX_BODY:
        raise ConsoleError(
            400, "body_too_long", f"A reply can be at most {MAX_BODY} characters long."
        )
    task = _held(flex, worker, conv)
    if conv.state == "closed" or task.assignment_status != "assigned":
        raise ConsoleError(409, "conversation_closed", "This conversation is closed.")
    return flex.account.add_message(
        conv, author=worker.friendly_name, body=body, attributes=None, source="SDK"
    )


def end_chat(flex: Flex, worker: Worker, conv: Conversation) -> None:
    """Flex's End chat: the agent's Interaction participant goes to wrapup, which closes
    the conversation and wraps up the task."""
    task = _held(flex, worker, conv)
    if task.assignment_status != "assigned":
        raise ConsoleError(409, "conversation_closed", "This chat has ended already.")
    flex.agent_leaves(task, "wrapup")


def complete(flex: Flex, worker: Worker, conv: Conversation) -> None:
    """Flex's Complete after wrap-up: the participant closed, the task completed."""
    task = _held(flex, worker, conv)
    if task.assignment_status != "wrapping":
        raise ConsoleError(409, "not_wrapping", "End the chat before completing it.")
    flex.agent_leaves(task, "closed")


def _held(flex: Flex, worker: Worker, conv: Conversation) -> Task:
    """The conversation's task, which must be this agent's."""
    task = flex.task_of(conv.sid)
    if task is None or task.assignment_status in ("completed", "canceled"):
        raise ConsoleError(409, "conversation_closed", "This conversation's task has ended.")
    mine = any(
        r.task_sid == task.sid
        and r.worker_sid == worker.sid
        and r.reservation_status in ("accepted", "wrapping")
        for r in flex.workspace.reservations.values()
    )
    if not mine:
        raise ConsoleError(
            409,
            "not_accepted",
            f"This conversation is not {worker.friendly_name}'s: accept its offer first.",
        )
    return task
