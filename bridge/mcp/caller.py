"""Who is calling ``/mcp``: checked before the MCP SDK sees the request.

The credentials are checked by :mod:`bridge.auth.caller`, as for the HTTP API; the
outcome travels in the ASGI scope (``scope[CALLER_SCOPE_KEY]``) to the tool handlers,
which read it from the HTTP request the SDK hands them. When the caller names no user
(modes none and apikey), the user is the MCP session.

With several bridge processes (PostgreSQL), the SDK runs stateless, so any process
serves any request, and the session is the bridge's own: an ``initialize`` without one
is given a new random Mcp-Session-Id here, which the client sends back on every later
request, to whichever process; the user is a keyed hash of it, the same everywhere.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from quart import Quart
from starlette.datastructures import Headers

from bridge.auth.caller import Unauthenticated
from bridge.services import Services

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CALLER_SCOPE_KEY = "flex_bridge.mcp_caller"
SESSION_HEADER = "mcp-session-id"
#: Ends the session ids the bridge issues to clients that show MCP Apps: stateless, the
#: SDK cannot tell a tool call what the client said it supports at initialize.
APPS_SESSION_SUFFIX = ".ui"
#: An initialize request is small; a larger body is not read here to look for one.
MAX_PEEK_BYTES = 64 * 1024


def wired_services(bridge: Quart) -> Services | None:
    """The bridge's services, once its start-up has run (None before, and after stop)."""
    found: Services | None = bridge.extensions.get("bridge")
    return found


async def _reply(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class McpAuthentication:
    """ASGI middleware in front of the MCP app: 401 unless the caller is admitted."""

    def __init__(self, app: ASGIApp, bridge: Quart, *, issue_sessions: bool = False) -> None:
        """``issue_sessions``: the SDK is stateless (several processes) and sessions are
        the bridge's own."""
        self.app = app
        self.bridge = bridge
        self.issue_sessions = issue_sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wired = wired_services(self.bridge)
        if wired is None:
            await _reply(send, 503, "starting", "The service is starting; try again.")
            return
        try:
            caller = await wired.callers.authenticate(Headers(scope=scope), "mcp")
        except Unauthenticated as refused:
            await _reply(
                send, 401, refused.code, refused.message, {"WWW-Authenticate": refused.challenge}
            )
            return
        scope[CALLER_SCOPE_KEY] = caller
        if self.issue_sessions and scope.get("method") == "POST":
            receive, send = await _with_session(scope, receive, send)
        await self.app(scope, receive, send)


async def _with_session(scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """For an ``initialize`` that carries no session: a new session id, put on the request
    (for this process) and on the answer (for the client to send back)."""
    if any(name == SESSION_HEADER.encode() for name, _ in scope.get("headers", [])):
        return receive, send
    body, messages = b"", []
    while len(body) <= MAX_PEEK_BYTES:
        message = await receive()
        messages.append(message)
        body += message.get("body", b"")
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    try:
        request = json.loads(body)
        method = request.get("method")
    except (ValueError, AttributeError):
        request, method = {}, None
    if method != "initialize":
        return replay, send
    session = secrets.token_urlsafe(24) + (APPS_SESSION_SUFFIX if _shows_apps(request) else "")
    scope["headers"] = [*scope.get("headers", []), (SESSION_HEADER.encode(), session.encode())]

    async def answered(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                h for h in message.get("headers", []) if h[0].lower() != SESSION_HEADER.encode()
            ]
            message = {
                **message,
                "headers": [*headers, (SESSION_HEADER.encode(), session.encode())],
            }
        await send(message)

    return replay, answered


def _shows_apps(initialize: Any) -> bool:
    """Whether an initialize request says the client shows MCP Apps (the extension, with
    its MIME type)."""
    try:
        settings = initialize["params"]["capabilities"]["extensions"][EXTENSION_ID]
        return APP_MIME_TYPE in settings["mimeTypes"]
    except (KeyError, TypeError):
        return False


def session_shows_apps(session_id: str | None) -> bool:
    """Whether the client of a session the bridge issued said it shows MCP Apps."""
    return session_id is not None and session_id.endswith(APPS_SESSION_SUFFIX)
