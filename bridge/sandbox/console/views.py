"""What the agent desktop shows, as JSON: the routed conversations (with their place in
the queue, the agent holding them, the offer open on them), the agents and their
activities, and the open offers. Read from the emulated Flex and TaskRouter state."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from bridge.sandbox.conversations.state import Conversation, Message, Participant
from bridge.sandbox.flex.state import Flex
from bridge.sandbox.shared.clock import iso, now
from bridge.sandbox.taskrouter.state import Reservation, Task

CONTEXT_PREFIX = "Context from the assistant: "
LATEST_CHARS = 160
USER_HASH = re.compile(r"^[0-9a-f]{64}$")

STATUS_LABELS = {
    "waiting": "waiting for an agent",
    "assigned": "with an agent",
    "wrapping": "wrapping up",
    "closed": "closed",
}
#: A worker's reservation while the task is theirs: accepted, then wrapping up.
HELD = ("accepted", "wrapping", "completed")


def desk_snapshot(flex: Flex, hours: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the desktop shows: conversations (waiting first, in the order TaskRouter
    offers them; then with an agent; then closed, most recent first), agents, offers, and
    the business hours (``{"open", "opens_at"}``; None when none are kept)."""
    routed = [c for c in flex.account.conversations.values() if flex.task_of(c.sid) is not None]
    positions = _positions(flex)
    order = {"waiting": 0, "assigned": 1, "wrapping": 1}

    def key(conv: Conversation) -> tuple[int, float]:
        status = conversation_status(flex, conv)
        if status == "closed":
            return 2, -conv.date_updated.timestamp()
        task = flex.task_of(conv.sid)
        assert task is not None
        if status == "waiting":
            return 0, positions.get(task.sid, 0)
        return order[status], task.date_created.timestamp()

    routed.sort(key=key)
    workspace = flex.workspace
    return {
        "server_time": iso(now()),
        "hours": hours,
        "conversations": [summary(flex, c, positions) for c in routed],
        "agents": [
            {
                "sid": w.sid,
                "name": w.friendly_name,
                "activity": workspace.activities[w.activity_sid].friendly_name,
            }
            for w in sorted(workspace.workers.values(), key=lambda w: w.friendly_name)
        ],
        "offers": [
            _offer(flex, r)
            for r in workspace.reservations.values()
            if r.reservation_status == "pending"
        ],
    }


def _positions(flex: Flex) -> dict[str, int]:
    """Each waiting task's place in its queue (1 is offered next)."""
    workspace = flex.workspace
    places: dict[str, int] = {}
    for queue_sid in workspace.queues:
        waiting = [
            t
            for t in workspace.tasks.values()
            if t.task_queue_sid == queue_sid and t.assignment_status in ("pending", "reserved")
        ]
        for place, task in enumerate(workspace.waiting_order(waiting), start=1):
            places[task.sid] = place
    return places


def _offer(flex: Flex, reservation: Reservation) -> dict[str, Any]:
    task = flex.workspace.tasks[reservation.task_sid]
    return {
        "sid": reservation.sid,
        "agent_sid": reservation.worker_sid,
        "conversation_sid": json.loads(task.attributes).get("conversationSid"),
        "offered_at": iso(reservation.date_created),
        "expires_at": iso(reservation.expires),
    }


def summary(
    flex: Flex, conv: Conversation, positions: dict[str, int] | None = None
) -> dict[str, Any]:
    task = flex.task_of(conv.sid)
    assert task is not None
    status = conversation_status(flex, conv)
    user = first_participant(conv)
    agent = holder(flex, task)
    offered = offered_to(flex, task)
    accepted = next((p for p in conv.participants.values() if agent and p.identity == agent), None)
    latest = conv.messages[-1] if conv.messages else None
    place = (positions if positions is not None else _positions(flex)).get(task.sid)
    return {
        "sid": conv.sid,
        "status": status,
        "status_label": STATUS_LABELS[status],
        "user": short(user.identity) if user and user.identity else None,
        "agent": agent,
        "offered_to": offered,
        "position": place if status == "waiting" else None,
        "queue": flex.workspace.queues[task.task_queue_sid].friendly_name,
        "queued_at": iso(task.date_created),
        "accepted_at": iso(accepted.date_created) if accepted else None,
        "closed_at": iso(conv.date_updated) if status == "closed" else None,
        "message_count": len(conv.messages),
        "latest": _latest(conv, latest) if latest else None,
    }


def conversation_status(flex: Flex, conv: Conversation) -> str:
    """waiting (the task waits for, or is offered to, an agent), assigned, wrapping (the
    chat ended, the agent has yet to complete the task), or closed."""
    task = flex.task_of(conv.sid)
    if task is None or task.assignment_status in ("completed", "canceled"):
        return "closed"
    if task.assignment_status == "wrapping":
        return "wrapping"
    if conv.state == "closed":
        return "closed"
    return "waiting" if task.assignment_status in ("pending", "reserved") else "assigned"


def holder(flex: Flex, task: Task) -> str | None:
    """The name of the worker who accepted the task, if one has."""
    for reservation in flex.workspace.reservations.values():
        if reservation.task_sid == task.sid and reservation.reservation_status in HELD:
            return flex.workspace.workers[reservation.worker_sid].friendly_name
    return None


def offered_to(flex: Flex, task: Task) -> str | None:
    for reservation in flex.workspace.reservations.values():
        if reservation.task_sid == task.sid and reservation.reservation_status == "pending":
            return flex.workspace.workers[reservation.worker_sid].friendly_name
    return None


def first_participant(conv: Conversation) -> Participant | None:
    """The person behind the assistant: the first participant, added when it was opened."""
    return next(iter(conv.participants.values()), None)


def short(identity: str) -> str:
    return identity[:8]


def message_view(conv: Conversation, message: Message) -> dict[str, Any]:
    role = _role(conv, message)
    view = {
        "index": message.index,
        "role": role,
        "author": _author_label(role, message),
        "body": _body(role, message),
        "sent_at": _iso(message.date_created),
    }
    part = _part(message)
    if part is not None:
        view["part"] = part
    return view


def _part(message: Message) -> str | None:
    """The part a message is, as "2/5", when the bridge split a long message in parts."""
    marker = _marker(message)
    number, parts = marker.get("part"), marker.get("parts")
    if isinstance(number, int) and isinstance(parts, int) and 1 <= number <= parts and parts > 1:
        return f"{number}/{parts}"
    return None


def _role(conv: Conversation, message: Message) -> str:
    if message.author == "system":
        return "system"
    user = first_participant(conv)
    if (user is not None and message.author == user.identity) or USER_HASH.match(message.author):
        return "context" if _is_context(message) else "user"
    return "agent"


def _marker(message: Message) -> dict[str, Any]:
    """What the bridge put in a message's attributes (``flex_bridge``), if anything."""
    try:
        attributes = json.loads(message.attributes)
    except ValueError:
        return {}
    marker = attributes.get("flex_bridge") if isinstance(attributes, dict) else None
    return marker if isinstance(marker, dict) else {}


def _is_context(message: Message) -> bool:
    return _marker(message).get("kind") == "context"


def _author_label(role: str, message: Message) -> str:
    if role == "context":
        return "Context from the assistant"
    if role == "user":
        return f"User {short(message.author)}"
    if role == "system":
        return "System"
    return message.author


def _body(role: str, message: Message) -> str:
    body = message.body or ""
    return body.removeprefix(CONTEXT_PREFIX) if role == "context" else body


def _latest(conv: Conversation, message: Message) -> dict[str, Any]:
    role = _role(conv, message)
    body = " ".join(_body(role, message).split())
    if len(body) > LATEST_CHARS:
        body = body[: LATEST_CHARS - 1].rstrip() + "…"
    return {
        "role": role,
        "author": _author_label(role, message),
        "body": body,
        "sent_at": _iso(message.date_created),
    }


def _iso(moment: datetime) -> str:
    return iso(moment) or ""
