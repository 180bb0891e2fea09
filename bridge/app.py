"""The application factory: routes, error handling, and the services wired at start-up."""

from __future__ import annotations

import secrets

from quart import Quart

from bridge import http_policy, store
from bridge.auth.server import AuthorizationServer
from bridge.config import Settings
from bridge.conversations import ConversationsClient
from bridge.errors import register_error_handlers
from bridge.handoff import HandoffService
from bridge.metrics import Metrics
from bridge.ratelimit import RateLimiter
from bridge.routes.assistant import assistant
from bridge.routes.handoff import handoff
from bridge.routes.oauth import oauth_routes
from bridge.routes.operations import operations
from bridge.routes.twilio_events import twilio_events
from bridge.services import Services

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
    app.register_blueprint(handoff)
    app.register_blueprint(assistant)
    app.register_blueprint(twilio_events)
    app.register_blueprint(operations)
    http_policy.install(app, settings)
    if settings.auth.mode == "oauth":
        app.register_blueprint(oauth_routes)

    @app.before_serving
    async def start() -> None:
        # Inside the running loop: the HTTP session and the database thread bind to it.
        db = await store.open_database(settings.database_path)
        secret = settings.bridge_secret or await store.get_or_create_setting(
            db, "bridge_secret", secrets.token_urlsafe(32)
        )
        metrics = Metrics()
        twilio = ConversationsClient(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_base_url,
            settings.twilio_timeout_seconds,
            observe=metrics.twilio_call,
        )
        handoff_service = HandoffService(
            db,
            twilio,
            flow_sid=settings.twilio_flow_sid,
            reply_wait_seconds=settings.reply_wait_seconds,
            webhook_url=settings.webhook_url if settings.webhooks else None,
            poll_interval_seconds=settings.poll_interval_seconds,
            reconcile_interval_seconds=settings.reconcile_interval_seconds,
            metrics=metrics,
        )
        await handoff_service.start()
        oauth = (
            AuthorizationServer(db, settings.auth, settings.public_url)
            if settings.auth.mode == "oauth"
            else None
        )
        app.extensions["bridge"] = Services(
            settings,
            db,
            twilio,
            handoff_service,
            secret,
            rate_limiter=RateLimiter(settings.auth.rate_limit_per_minute),
            metrics=metrics,
            oauth=oauth,
        )

    @app.after_serving
    async def stop() -> None:
        wired: Services | None = app.extensions.pop("bridge", None)
        if wired is None:
            return
        await wired.handoff.close()
        await wired.twilio.close()
        await wired.db.close()

    return app
