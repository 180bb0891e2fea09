"""Who is calling ``/mcp``, by AUTH_MODE: checked before the MCP SDK sees the request.

The outcome travels in the ASGI scope (``scope[CALLER_SCOPE_KEY]``) to the tool handlers,
which read it from the HTTP request the SDK hands them.

- ``none``: one identity per MCP session (``mcp-session:<Mcp-Session-Id>``).
- ``apikey``: a valid key, sent as ``Authorization: Bearer``, admits the client; the user
  is again the MCP session, since one key is shared by everyone behind a client.
- ``oauth``: the bridge's own access token; the user is the token's subject, the same
  identity the HTTP API gives the same signed-in person.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from quart import Quart
from starlette.datastructures import Headers

from bridge.auth.apikeys import key_matches, presented_key
from bridge.identity import identity_hash
from bridge.services import Services

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CALLER_SCOPE_KEY = "flex_bridge.mcp_caller"
SESSION_HEADER = "mcp-session-id"


@dataclass(frozen=True)
class McpCaller:
    """``identity`` is None when the user is the MCP session (modes none and apikey)."""

    identity: str | None
    profile: str | None = None


def wired_services(bridge: Quart) -> Services | None:
    """The bridge's services, once its start-up has run (None before, and after stop)."""
    found: Services | None = bridge.extensions.get("bridge")
    return found


def session_identity(secret: str, session_id: str) -> str:
    return identity_hash(secret, f"mcp-session:{session_id}")


def resource_metadata_url(public_url: str) -> str:
    return f"{public_url}/.well-known/oauth-protected-resource"


def mcp_resource(public_url: str) -> str:
    """The MCP endpoint as an OAuth protected resource (RFC 8707 / RFC 9728)."""
    return f"{public_url}/mcp"


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
        headers = Headers(scope=scope)
        auth = wired.settings.auth
        if auth.mode == "apikey":
            key = presented_key(headers, auth.api_key_header)
            if key is None or not key_matches(key, auth.api_keys):
                await _reply(
                    send,
                    401,
                    "unauthorized",
                    "Send a valid API key as Authorization: Bearer <key>.",
                    {"WWW-Authenticate": 'Bearer realm="flex-bridge"'},
                )
                return
            caller = McpCaller(None)
        elif auth.mode == "oauth":
            found = await self._oauth_caller(wired, headers)
            if isinstance(found, str):
                await self._challenge(send, wired, found)
                return
            caller = found
        else:
            caller = McpCaller(None)
        scope[CALLER_SCOPE_KEY] = caller
        await self.app(scope, receive, send)

    async def _oauth_caller(self, wired: Services, headers: Headers) -> McpCaller | str:
        """The caller, or why not: ``"missing"`` or ``"invalid"``."""
        assert wired.oauth is not None
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        if not token:
            return "missing"
        row = await wired.oauth.check_access_token(token)
        if row is None or not wired.oauth.audience_allows(
            row, mcp_resource(wired.settings.public_url)
        ):
            return "invalid"
        profile = row.profile if wired.settings.auth.share_profile_with_agent else None
        return McpCaller(identity_hash(wired.secret, f"oauth:{row.subject}"), profile)

    async def _challenge(self, send: Send, wired: Services, why: str) -> None:
        challenge = f'Bearer resource_metadata="{resource_metadata_url(wired.settings.public_url)}"'
        if why == "invalid":
            challenge += ', error="invalid_token"'
            message = "Sign in again: the access token is expired, revoked or not for /mcp."
        else:
            message = "Send the user's access token as Authorization: Bearer <token>."
        await _reply(
            send,
            401,
            "invalid_token" if why == "invalid" else "unauthorized",
            message,
            {"WWW-Authenticate": challenge},
        )
