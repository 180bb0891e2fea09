"""The agent console at ``/sandbox/``: the sandbox's Flex agent desktop.

The page is plain HTML, CSS and JavaScript from ``static/``. It reads the desk (queue,
agents, offers) and transcripts from the JSON endpoints below, hears about changes over
Server-Sent Events, and acts as a Flex agent through the emulated Flex and TaskRouter
(:mod:`.desk`), so every action fires the events and signed webhooks the Flex UI would
cause. Several agents may work at once, one per browser tab.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from bridge.sandbox.console import desk
from bridge.sandbox.console.desk import ConsoleError
from bridge.sandbox.console.views import desk_snapshot, message_view, summary
from bridge.sandbox.conversations.state import Account, Conversation
from bridge.sandbox.flex.state import Flex
from bridge.sandbox.shared.clock import iso, now
from bridge.sandbox.shared.errors import EmulatorError

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


@console.get("/console/desk")
async def desk_state() -> Response:
    return jsonify(desk_snapshot(_flex(), _hours()))


@console.get("/console/conversations/<sid>")
async def transcript(sid: str) -> Response:
    flex = _flex()
    conv = _routed(sid)
    return jsonify(
        {
            "server_time": iso(now()),
            "conversation": summary(flex, conv),
            "messages": [message_view(conv, m) for m in conv.messages],
        }
    )


@console.get("/console/events")
async def events() -> Response:
    """The desk as Server-Sent Events: a snapshot now, then one after every change."""
    closing: asyncio.Event = current_app.config["SANDBOX_CONSOLE_CLOSING"]
    hours = current_app.config.get("SANDBOX_HOURS")
    response = Response(_stream(_flex(), closing, hours), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None  # the stream bounds itself
    return response


def _hours() -> dict[str, Any] | None:
    """Whether the support team is open now, when the bridge keeps business hours."""
    hours: Callable[[], dict[str, Any]] | None = current_app.config.get("SANDBOX_HOURS")
    return hours() if hours is not None else None


async def _stream(
    flex: Flex, closing: asyncio.Event, hours: Callable[[], dict[str, Any]] | None
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    sent: dict[str, Any] | None = None
    while not closing.is_set():
        # Take the event before reading, so a change made in between still wakes us.
        changed = flex.account.changed
        snapshot = desk_snapshot(flex, hours() if hours is not None else None)
        shown = {k: v for k, v in snapshot.items() if k != "server_time"}
        if shown != sent:
            sent = shown
            yield f"event: desk\ndata: {json.dumps(snapshot)}\n\n".encode()
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


# --- acting as an agent ----------------------------------------------------------------------


@console.post("/console/agents")
async def sign_in() -> Response:
    """Sign in by name: the agent's TaskRouter worker (made Available on first sign-in)."""
    data = await _json_body()
    worker = desk.sign_in(_flex(), desk.agent_name(data.get("name")))
    return jsonify({"agent": _agent_view(worker.sid)})


@console.post("/console/agents/<worker_sid>/activity")
async def activity(worker_sid: str) -> Response:
    """Available, Unavailable or Offline; leaving Available passes open offers on."""
    flex = _flex()
    data = await _json_body()
    worker = desk.agent(flex, worker_sid)
    desk.set_activity(flex, worker, data.get("activity"))
    return jsonify({"agent": _agent_view(worker.sid)})


#: The answers to an offer, as TaskRouter names the reservation's new status.
ANSWERS = {"accept": "accepted", "reject": "rejected"}


@console.post("/console/offers/<sid>/<answer>")
async def answer_offer(sid: str, answer: str) -> Response:
    """Accept an offer (Flex then joins the agent to the conversation) or reject it
    (TaskRouter offers it to the next agent)."""
    if answer not in ANSWERS:
        raise ConsoleError(404, "not_found", "An offer is answered with accept or reject.")
    flex = _flex()
    worker = desk.agent(flex, (await _json_body()).get("agent"))
    reservation = desk.answer_offer(flex, worker, sid, ANSWERS[answer])
    return jsonify({"conversation": _task_conversation(reservation.task_sid)})


@console.post("/console/conversations/<sid>/reply")
async def reply(sid: str) -> tuple[Response, int]:
    flex = _flex()
    conv = _routed(sid)
    data = await _json_body()
    worker = desk.agent(flex, data.get("agent"))
    message = desk.reply(flex, worker, conv, data.get("body"))
    return jsonify({"message": message_view(conv, message)}), 201


@console.post("/console/conversations/<sid>/end")
async def end(sid: str) -> Response:
    """End chat: the conversation closes and the task wraps up."""
    flex = _flex()
    conv = _routed(sid)
    worker = desk.agent(flex, (await _json_body()).get("agent"))
    desk.end_chat(flex, worker, conv)
    return jsonify({"conversation": summary(flex, conv)})


@console.post("/console/conversations/<sid>/complete")
async def complete(sid: str) -> Response:
    """Complete after wrap-up: the task is completed."""
    flex = _flex()
    conv = _routed(sid)
    worker = desk.agent(flex, (await _json_body()).get("agent"))
    desk.complete(flex, worker, conv)
    return jsonify({"conversation": summary(flex, conv)})


def _agent_view(worker_sid: str) -> dict[str, Any]:
    workspace = _flex().workspace
    worker = workspace.workers[worker_sid]
    return {
        "sid": worker.sid,
        "name": worker.friendly_name,
        "activity": workspace.activities[worker.activity_sid].friendly_name,
    }


def _task_conversation(task_sid: str) -> dict[str, Any] | None:
    flex = _flex()
    attributes = json.loads(flex.workspace.tasks[task_sid].attributes)
    conv = _account().conversations.get(attributes.get("conversationSid", ""))
    return summary(flex, conv) if conv is not None else None


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


async def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ConsoleError(415, "unsupported_media_type", "Send a JSON object (application/json).")
    data = await request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ConsoleError(400, "invalid_json", "The request body must be a JSON object.")
    return data
