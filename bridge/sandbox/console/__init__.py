"""The agent console at ``/sandbox/``: a stand-in for the Flex agent UI.

The page is plain HTML, CSS and JavaScript from ``static/``. It reads the queue and the
transcripts from the JSON endpoints below, hears about changes over Server-Sent Events
and acts through :class:`~bridge.sandbox.conversations.state.Account` with
``source="SDK"``, so every action fires the same signed webhooks the Flex UI would cause.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from bridge.sandbox.conversations.state import Account, Conversation, Message, Participant
from bridge.sandbox.flex.state import Flex
from bridge.sandbox.shared.clock import iso, now
from bridge.sandbox.shared.errors import EmulatorError
from bridge.sandbox.taskrouter.state import Reservation, Worker

STATIC = Path(__file__).parent / "static"

console = Blueprint(
    "console",
    __name__,
    url_prefix="/sandbox",
    static_folder="static",
    static_url_path="/console/static",
)

#: An event stream ends after this long and the page reconnects at once. On shutdown Hypercorn
#: waits for open responses before the app hears of it, so this bounds how long an open
#: console can delay a stop.
STREAM_SECONDS = 3.0
#: The reconnection delay offered to EventSource clients (the page schedules its own).
RETRY_MILLISECONDS = 250

CONTEXT_PREFIX = "Context from the assistant: "
MAX_AGENT_NAME = 64
MAX_BODY = 1600
LATEST_CHARS = 160
_AGENT_NAME = re.compile(r"^[\w.@+\- ]+$")
_USER_HASH = re.compile(r"^[0-9a-f]{64}$")

#: Chats an agent of the console may have at once.
CONSOLE_CHAT_CAPACITY = 10
TASK_ENDED = ("completed", "canceled")

STATUS_LABELS = {
    "waiting": "waiting for an agent",
    "assigned": "with an agent",
    "closed": "closed",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ConsoleError(Exception):
    """Answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


#: Emulator errors the console can meet, as console error codes.
_EMULATOR_CODES = {
    20404: "not_found",
    50377: "conversation_closed",
    50433: "already_joined",
    50006: "body_too_long",
}


# --- serving ---------------------------------------------------------------------------------


# Streams end on their own within STREAM_SECONDS; this also ends any still open when the
# app stops (which Hypercorn does only after its grace period).
@console.before_app_serving
async def _open() -> None:
    current_app.config["SANDBOX_CONSOLE_CLOSING"] = asyncio.Event()


@console.after_app_serving
async def _close() -> None:
    closing: asyncio.Event | None = current_app.config.get("SANDBOX_CONSOLE_CLOSING")
    if closing is not None:
        closing.set()


@console.after_request
async def _security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    # Revalidate every time (cheap with ETags), so an upgraded console is never served stale.
    response.headers["Cache-Control"] = "no-cache"
    response.headers.pop("Expires", None)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@console.errorhandler(ConsoleError)
async def _console_error(error: ConsoleError) -> Response:
    return _error(error.status, error.code, error.message)


@console.errorhandler(EmulatorError)
async def _emulator_error(error: EmulatorError) -> Response:
    code = _EMULATOR_CODES.get(error.code, "invalid_request" if error.status == 400 else "conflict")
    return _error(error.status, code, error.message)


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _account() -> Account:
    account: Account = current_app.config["SANDBOX_ACCOUNT"]
    return account


# --- the page --------------------------------------------------------------------------------


@console.get("/")
async def page() -> Response:
    # Read whole (it is small): a streamed file is left open if the client stops reading.
    html = (STATIC / "console.html").read_bytes()
    return Response(html, content_type="text/html; charset=utf-8")


# --- reading ---------------------------------------------------------------------------------


@console.get("/console/queue")
async def queue() -> Response:
    return jsonify(queue_snapshot(_flex()))


@console.get("/console/conversations/<sid>")
async def transcript(sid: str) -> Response:
    conv = _routed(sid)
    return jsonify(
        {
            "server_time": iso(now()),
            "conversation": summary(_flex(), conv),
            "messages": [_message(conv, m) for m in conv.messages],
        }
    )


@console.get("/console/events")
async def events() -> Response:
    """The queue as Server-Sent Events: a snapshot now, then one after every change."""
    closing: asyncio.Event = current_app.config["SANDBOX_CONSOLE_CLOSING"]
    response = Response(_stream(_flex(), closing), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None  # the stream bounds itself
    return response


async def _stream(flex: Flex, closing: asyncio.Event) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    sent: list[dict[str, Any]] | None = None
    while not closing.is_set():
        # Take the event before reading, so a change made in between still wakes us.
        changed = flex.account.changed
        snapshot = queue_snapshot(flex)
        if snapshot["conversations"] != sent:
            sent = snapshot["conversations"]
            yield f"event: queue\ndata: {json.dumps(snapshot)}\n\n".encode()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await _first_of(changed, closing, within=remaining)


async def _first_of(*events: asyncio.Event, within: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


# --- acting ----------------------------------------------------------------------------------


@console.post("/console/conversations/<sid>/accept")
async def accept(sid: str) -> Response:
    """The agent (a TaskRouter worker of that name, made Available) accepts the offer of
    this conversation's task; Flex then joins them to the conversation."""
    flex = _flex()
    conv = _routed(sid)
    agent = _agent_name(await _json_body(), conv)
    _require_open(conv)
    task = flex.task_of(conv.sid)
    if task is None or task.assignment_status not in ("pending", "reserved", "assigned"):
        raise ConsoleError(409, "conversation_closed", "This conversation's task has ended.")
    holder = _agent(flex, conv)
    if task.assignment_status == "assigned":
        if holder != agent:
            raise ConsoleError(
                409, "already_assigned", f"This conversation is already with {holder}."
            )
        return jsonify({"conversation": summary(flex, conv)})
    worker = _worker(agent)
    offer = _offer(task.sid, worker.sid)
    if offer is None:
        other = _offer(task.sid)
        name = flex.workspace.workers[other.worker_sid].friendly_name if other else "nobody"
        raise ConsoleError(409, "already_assigned", f"This conversation is offered to {name}.")
    flex.workspace.answer_reservation(offer, "accepted")
    return jsonify({"conversation": summary(flex, conv)})


def _worker(agent: str) -> Worker:
    """The agent's worker, signed in as Available (made on first use, several chats at a
    time: an agent in the console works like a Flex agent with chat capacity)."""
    workspace = _flex().workspace
    found = next((w for w in workspace.workers.values() if w.friendly_name == agent), None)
    if found is None:
        found = workspace.add_worker(agent, json.dumps({"full_name": agent}), None)
        found.capacity = {"chat": CONSOLE_CHAT_CAPACITY, "default": 1}
    available = workspace.activity_named("Available").sid
    if found.activity_sid != available:
        workspace.set_activity(found, available)
    return found


def _offer(task_sid: str, worker_sid: str | None = None) -> Reservation | None:
    for reservation in _flex().workspace.reservations.values():
        if reservation.task_sid != task_sid or reservation.reservation_status != "pending":
            continue
        if worker_sid is None or reservation.worker_sid == worker_sid:
            return reservation
    return None


@console.post("/console/conversations/<sid>/reply")
async def reply(sid: str) -> tuple[Response, int]:
    account = _account()
    conv = _routed(sid)
    data = await _json_body()
    agent = _agent_name(data, conv)
    body = data.get("body")
    if not isinstance(body, str) or not body.strip():
        raise ConsoleError(400, "empty_reply", "Write a reply before sending it.")
    if len(body) > MAX_BODY:
        raise ConsoleError(
            400, "body_too_long", f"A reply can be at most {MAX_BODY} characters long."
        )
    _require_open(conv)
    if not any(p.identity == agent for p in conv.participants.values()):
        raise ConsoleError(
            409, "not_accepted", f"Accept the conversation as {agent} before replying."
        )
    message = account.add_message(conv, author=agent, body=body, attributes=None, source="SDK")
    return jsonify({"message": _message(conv, message)}), 201


@console.post("/console/conversations/<sid>/end")
async def end(sid: str) -> Response:
    """Flex's End chat, then Complete: the conversation closes (the task wraps up), and
    the task is completed (the console has no separate wrap-up step)."""
    flex = _flex()
    conv = _routed(sid)
    await _json_body()
    _require_open(conv)
    flex.account.update_conversation(conv, state="closed", source="SDK", reason="SDK")
    task = flex.task_of(conv.sid)
    if task is not None and task.assignment_status == "wrapping":
        flex.workspace.update_task(task, assignment_status="completed", reason="ended")
    return jsonify({"conversation": summary(flex, conv)})


def _flex() -> Flex:
    found: Flex = current_app.config["SANDBOX_FLEX"]
    return found


def _routed(sid: str) -> Conversation:
    """A conversation Flex routed (Studio's Send to Flex or an Interaction); the console
    knows no others."""
    conv = _account().conversations.get(sid)
    if conv is None or _flex().task_of(sid) is None:
        raise ConsoleError(404, "not_found", f"There is no conversation {sid} in the agent queue.")
    return conv


def _require_open(conv: Conversation) -> None:
    if conv.state == "closed":
        raise ConsoleError(409, "conversation_closed", "This conversation is closed.")


async def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ConsoleError(415, "unsupported_media_type", "Send a JSON object (application/json).")
    data = await request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ConsoleError(400, "invalid_json", "The request body must be a JSON object.")
    return data


def _agent_name(data: dict[str, Any], conv: Conversation) -> str:
    raw = data.get("agent")
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise ConsoleError(400, "invalid_agent", "Give your agent name.")
    if len(name) > MAX_AGENT_NAME or not _AGENT_NAME.match(name):
        raise ConsoleError(
            400,
            "invalid_agent",
            f"An agent name is 1 to {MAX_AGENT_NAME} letters, digits, spaces or . _ - @ +.",
        )
    user = _user(conv)
    if name == "system" or _USER_HASH.match(name) or (user and name == user.identity):
        raise ConsoleError(400, "invalid_agent", f"{name!r} cannot be used as an agent name.")
    return name


# --- views -----------------------------------------------------------------------------------


def queue_snapshot(flex: Flex) -> dict[str, Any]:
    """Every conversation Flex routed: waiting first (longest wait on top), then those with
    an agent, then closed ones (most recent first)."""
    routed = [c for c in flex.account.conversations.values() if flex.task_of(c.sid) is not None]
    order = {"waiting": 0, "assigned": 1}

    def key(conv: Conversation) -> tuple[int, float]:
        status = _status(flex, conv)
        if status == "closed":
            return 2, -conv.date_updated.timestamp()
        task = flex.task_of(conv.sid)
        assert task is not None
        return order[status], task.date_created.timestamp()

    routed.sort(key=key)
    return {"server_time": iso(now()), "conversations": [summary(flex, c) for c in routed]}


def summary(flex: Flex, conv: Conversation) -> dict[str, Any]:
    task = flex.task_of(conv.sid)
    assert task is not None
    status = _status(flex, conv)
    user = _user(conv)
    agent = _agent(flex, conv)
    accepted = next((p for p in conv.participants.values() if agent and p.identity == agent), None)
    latest = conv.messages[-1] if conv.messages else None
    return {
        "sid": conv.sid,
        "status": status,
        "status_label": STATUS_LABELS[status],
        "user": _short(user.identity) if user and user.identity else None,
        "agent": agent,
        "queued_at": iso(task.date_created),
        "accepted_at": iso(accepted.date_created) if accepted else None,
        "closed_at": iso(conv.date_updated) if status == "closed" else None,
        "message_count": len(conv.messages),
        "latest": _latest(conv, latest) if latest else None,
    }


def _status(flex: Flex, conv: Conversation) -> str:
    """waiting (the task waits for, or is offered to, an agent), assigned, or closed."""
    task = flex.task_of(conv.sid)
    if conv.state == "closed" or task is None or task.assignment_status in TASK_ENDED:
        return "closed"
    return "waiting" if task.assignment_status in ("pending", "reserved") else "assigned"


def _agent(flex: Flex, conv: Conversation) -> str | None:
    """The worker who accepted the conversation's task, if one has."""
    task = flex.task_of(conv.sid)
    if task is None:
        return None
    for reservation in flex.workspace.reservations.values():
        if reservation.task_sid == task.sid and reservation.reservation_status in (
            "accepted",
            "wrapping",
            "completed",
        ):
            return flex.workspace.workers[reservation.worker_sid].friendly_name
    return None


def _user(conv: Conversation) -> Participant | None:
    """The person behind the assistant: the first participant, added when it was opened."""
    return next(iter(conv.participants.values()), None)


def _short(identity: str) -> str:
    return identity[:8]


def _role(conv: Conversation, message: Message) -> str:
    if message.author == "system":
        return "system"
    user = _user(conv)
    if (user is not None and message.author == user.identity) or _USER_HASH.match(message.author):
        return "context" if _is_context(message) else "user"
    return "agent"


def _is_context(message: Message) -> bool:
    try:
        attributes = json.loads(message.attributes)
    except ValueError:
        return False
    marker = attributes.get("flex_bridge") if isinstance(attributes, dict) else None
    return isinstance(marker, dict) and marker.get("kind") == "context"


def _author_label(role: str, message: Message) -> str:
    if role == "context":
        return "Context from the assistant"
    if role == "user":
        return f"User {_short(message.author)}"
    if role == "system":
        return "System"
    return message.author


def _body(role: str, message: Message) -> str:
    body = message.body or ""
    return body.removeprefix(CONTEXT_PREFIX) if role == "context" else body


def _message(conv: Conversation, message: Message) -> dict[str, Any]:
    role = _role(conv, message)
    return {
        "index": message.index,
        "role": role,
        "author": _author_label(role, message),
        "body": _body(role, message),
        "sent_at": _iso(message.date_created),
    }


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
