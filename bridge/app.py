"""The application factory: routes, error handling, and the services wired at start-up."""

from __future__ import annotations

from contextlib import AsyncExitStack

from quart import Quart

from bridge import http_policy
from bridge.config import Settings
from bridge.errors import register_error_handlers
from bridge.routes.assistant import assistant
from bridge.routes.handoff import handoff
from bridge.routes.home import home
from bridge.routes.oauth import oauth_routes
from bridge.routes.operations import operations
from bridge.routes.twilio_events import twilio_events
from bridge.services import Services, build_services

#: Request bodies above this are refused with 413 before they are read.
MAX_REQUEST_BYTES = 64 * 1024


def begin_shutdown(app: Quart) -> None:
    """Answer every request waiting for a reply now, before the server drains."""
    wired: Services | None = app.extensions.get("bridge")
    if wired is not None:
        wired.handoff.begin_shutdown()


def create_app(settings: Settings) -> Quart:
    app = Quart("bridge")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_error_handlers(app)
    app.register_blueprint(home)
    app.register_blueprint(handoff)
    app.register_blueprint(assistant)
    app.register_blueprint(twilio_events)
    app.register_blueprint(operations)
    http_policy.install(app, settings)
    if settings.auth.mode == "oauth":
        app.register_blueprint(oauth_routes)
    running = AsyncExitStack()

    @app.before_serving
    async def start() -> None:
        # Inside the running loop: the HTTP session and the database thread bind to it.
        app.extensions["bridge"] = await running.enter_async_context(build_services(settings))

    @app.after_serving
    async def stop() -> None:
        app.extensions.pop("bridge", None)
        await running.aclose()

    return app
