"""The ASGI application Hypercorn serves: the bridge, its MCP endpoint, and the sandbox
when enabled."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from typing import Any

from quart import Quart

from bridge.app import create_app
from bridge.config import Settings
from bridge.hours import hours_now
from bridge.mcp.app import MCP_PATH, create_mcp_app

Scope = dict[str, Any]
ASGIApp = Any

SANDBOX_PREFIX = "/sandbox"
#: Requests whose headers add up to more than this are refused with 431, whatever the path.
MAX_HEADER_BYTES = 16 * 1024
_HEADERS_TOO_LARGE = json.dumps(
    {"error": {"code": "headers_too_large", "message": "The request headers are too large."}}
).encode()


_UNKNOWN_HOST = json.dumps(
    {
        "error": {
            "code": "unknown_host",
            "message": "This service answers only at its own address (PUBLIC_URL); the Host "
            "header names another. Operators: add it to ALLOWED_HOSTS.",
        }
    }
).encode()


async def _refuse(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"host":
            return str(value.decode("latin-1").lower())
    return ""


#: An answered request's unread body is read up to this much so the connection can serve
#: the next one; a longer one (already refused with 413) closes the connection instead.
MAX_DRAIN_BYTES = 64 * 1024
#: ...and waited for this long at most (a client that never sends it is then cut off).
DRAIN_SECONDS = 10.0


async def _reading_the_body_first(app: ASGIApp, scope: Scope, receive: Any, send: Any) -> None:
    """Run ``app``, reading the rest of the request body before its answer goes out.

    Hypercorn reads a body only as the app asks for it, and closes a keep-alive connection
    whose request was answered before its body was read; under load a body often arrives
    after an early answer (404, 401, 405...), and the client's next request on that
    connection then fails. Done here, for every app behind the dispatcher.
    """
    ended = False
    read = 0
    waiting = 0  # receive() calls in progress: the app may have a reader of its own
    progress = asyncio.Event()

    async def tracked() -> Any:
        nonlocal ended, read, waiting
        waiting += 1
        try:
            message = await receive()
        finally:
            waiting -= 1
            progress.set()
        read += len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            ended = True
        return message

    async def answering(message: Any) -> None:
        if message["type"] == "http.response.start" and not ended:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DRAIN_SECONDS
            while not ended and read <= MAX_DRAIN_BYTES and loop.time() < deadline:
                if waiting == 0:
                    await tracked()
                    continue
                # Quart reads the body in a task of its own: never two readers at once.
                progress.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        await progress.wait()
        await send(message)

    await app(scope, tracked, answering)


class PathDispatcher:
    """Routes each mounted prefix (and below) to its app, everything else to the default,
    once the request's Host is one this service answers (every path: the API, /mcp and
    the sandbox alike).

    Paths are passed on unchanged (the sandbox serves the same paths when run alone, and
    the MCP app routes ``/mcp`` itself). Lifespan events go to every app: the mounts in
    the order given, then the default; stopped in reverse.
    """

    def __init__(
        self,
        default: ASGIApp,
        mounts: dict[str, ASGIApp],
        allowed_hosts: frozenset[str],
        *,
        exact: frozenset[str] = frozenset(),
    ) -> None:
        """``exact``: mounts that serve their path alone (below it, the default answers:
        one 404 everywhere)."""
        self.default = default
        self.mounts = mounts
        self.allowed_hosts = allowed_hosts
        self.exact = exact

    def _app_for(self, path: str) -> ASGIApp:
        for prefix, app in self.mounts.items():
            below = path.startswith(prefix + "/")
            if path in (prefix, prefix + "/") or (below and prefix not in self.exact):
                return app
        return self.default

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if sum(len(name) + len(value) for name, value in scope.get("headers", ())) > (
            MAX_HEADER_BYTES
        ):
            await _refuse(send, 431, _HEADERS_TOO_LARGE)
            return
        if scope["type"] in ("http", "websocket") and _host(scope) not in self.allowed_hosts:
            # DNS rebinding: a page on another site made the browser call this address.
            await _refuse(send, 421, _UNKNOWN_HOST)
            return
        app = self._app_for(scope.get("path", ""))
        if scope["type"] == "http":
            await _reading_the_body_first(app, scope, receive, send)
        else:
            await app(scope, receive, send)

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
    dispatcher = PathDispatcher(bridge, mounts, settings.allowed_hosts, exact=frozenset({MCP_PATH}))
    return dispatcher, bridge


def _sandbox(settings: Settings) -> ASGIApp:
    # Imported here: outside sandbox mode the emulator is not loaded at all.
    from bridge.sandbox.app import create_sandbox_app
    from bridge.sandbox.idp import DEV_CLIENT
    from bridge.sandbox.outbound import WebhookTargets

    # The development sign-in provider also accepts the bridge's public callback (ngrok).
    dev = DEV_CLIENT
    dev = replace(dev, redirect_uris=(*dev.redirect_uris, f"{settings.public_url}/oauth/callback"))
    return create_sandbox_app(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        idp_clients={dev.client_id: dev},
        webhook_targets=WebhookTargets.from_setting(
            settings.sandbox_webhook_urls, own=f"{settings.public_url}/twilio"
        ),
        workspace_sid=settings.twilio_workspace_sid,
        workflow_sid=settings.twilio_workflow_sid,
        # As an operator sets it once in the Console (docs/flex-setup.md).
        event_callback_url=settings.taskrouter_event_url if settings.webhooks else None,
        flow_sid=settings.twilio_flow_sid or None,
        hours=hours_now(settings.business_hours) if settings.business_hours else None,
    )
