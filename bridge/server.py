"""Running the service under Hypercorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from bridge.asgi import build_asgi_app
from bridge.config import Settings


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.keep_alive_timeout = 75  # above common proxies' idle timeouts
    # Longer than the longest wait, so requests waiting for a reply finish on shutdown.
    config.graceful_timeout = settings.reply_wait_seconds + 5
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve(
    settings: Settings, shutdown_trigger: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM (or ``shutdown_trigger`` completes)."""
    app = build_asgi_app(settings)
    config = hypercorn_config(settings)
    if shutdown_trigger is None:
        await hypercorn_serve(app, config)
    else:
        await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger)


def run(settings: Settings) -> None:
    asyncio.run(serve(settings))
