"""The ASGI application Hypercorn serves: the bridge, its MCP endpoint, and the sandbox
when enabled."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from quart import Quart

from bridge.app import create_app
from bridge.config import Settings
from bridge.mcp.app import MCP_PATH, create_mcp_app

Scope = dict[str, Any]
ASGIApp = Any

SANDBOX_PREFIX = "/sandbox"
#: Requests whose headers add up to more than this are refused with 431, whatever the path.
MAX_HEADER_BYTES = 16 * 1024
_HEADERS_TOO_LARGE = json.dumps(
    {"error": {"code": "headers_too_large", "message": "The request headers are too large."}}
).encode()


async def _refuse_headers(send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_HEADERS_TOO_LARGE)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _HEADERS_TOO_LARGE})


class PathDispatcher:
    """Routes each mounted prefix (and below) to its app, everything else to the default.

    Paths are passed on unchanged (the sandbox serves the same paths when run alone, and
    the MCP app routes ``/mcp`` itself). Lifespan events go to every app: the mounts in
    the order given, then the default; stopped in reverse.
    """

    def __init__(self, default: ASGIApp, mounts: dict[str, ASGIApp]) -> None:
        self.default = default
        self.mounts = mounts

    def _app_for(self, path: str) -> ASGIApp:
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return app
        return self.default

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if sum(len(name) + len(value) for name, value in scope.get("headers", ())) > (
            MAX_HEADER_BYTES
        ):
            await _refuse_headers(send)
            return
        await self._app_for(scope.get("path", ""))(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Any, send: Any) -> None:
        apps = [*self.mounts.values(), self.default]  # the mounts are up before the bridge
        runners = [_LifespanRunner(app, scope) for app in apps]
        message = await receive()
        assert message["type"] == "lifespan.startup"
        for runner in runners:
            error = await runner.send_and_wait("lifespan.startup")
            if error is not None:
                await send({"type": "lifespan.startup.failed", "message": error})
                return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        for runner in reversed(runners):
            await runner.send_and_wait("lifespan.shutdown")
        await send({"type": "lifespan.shutdown.complete"})


class _LifespanRunner:
    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(
            app(scope, self._inbox.get, self._outbox.put)
        )

    async def send_and_wait(self, event: str) -> str | None:
        await self._inbox.put({"type": event})
        reply = await self._outbox.get()
        if reply["type"].endswith(".failed"):
            return str(reply.get("message", "failed"))
        return None


def build_asgi_app(settings: Settings) -> tuple[ASGIApp, Quart]:
    """The app to serve, and the bridge's own Quart app within it."""
    bridge = create_app(settings)
    mounts: dict[str, ASGIApp] = {}
    if settings.sandbox:
        mounts[SANDBOX_PREFIX] = _sandbox(settings)
    mounts[MCP_PATH] = create_mcp_app(settings, bridge)
    return PathDispatcher(bridge, mounts), bridge


def _sandbox(settings: Settings) -> ASGIApp:
    # Imported here: outside sandbox mode the emulator is not loaded at all.
    from bridge.sandbox.app import create_sandbox_app
    from bridge.sandbox.idp import DEV_CLIENT

    # The development sign-in provider also accepts the bridge's public callback (ngrok).
    dev = DEV_CLIENT
    dev = replace(dev, redirect_uris=(*dev.redirect_uris, f"{settings.public_url}/oauth/callback"))
    return create_sandbox_app(
        settings.twilio_account_sid, settings.twilio_auth_token, idp_clients={dev.client_id: dev}
    )
