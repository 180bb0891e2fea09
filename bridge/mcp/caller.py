"""Who is calling ``/mcp``: checked before the MCP SDK sees the request.

The credentials are checked by :mod:`bridge.auth.caller`, as for the HTTP API; the
outcome travels in the ASGI scope (``scope[CALLER_SCOPE_KEY]``) to the tool handlers,
which read it from the HTTP request the SDK hands them. When the caller names no user
(modes none and apikey), the user is the MCP session.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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

    def __init__(self, app: ASGIApp, bridge: Quart) -> None:
        self.app = app
        self.bridge = bridge

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
        await self.app(scope, receive, send)
