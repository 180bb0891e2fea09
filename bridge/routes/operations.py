"""What operators and their monitoring call: /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import time

from quart import Blueprint, Response, jsonify, request

from bridge.auth.caller import require_bearer
from bridge.conversations import TwilioError
from bridge.routes import services
from bridge.services import Services

operations = Blueprint("operations", __name__)

#: A readiness probe every few seconds must not turn into a Twilio call every few seconds.
TWILIO_CHECK_CACHE_SECONDS = 15.0
READY_CHECK_TIMEOUT_SECONDS = 3.0
#: The text format every Prometheus version reads.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@operations.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers. Nothing else is checked, so a Twilio outage does not get
    the process restarted."""
    return {"status": "ok"}


async def _store_check(wired: Services) -> str | None:
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_SECONDS):
            await wired.store.ping()
    except Exception as exc:  # timeouts, a closed connection, the driver's errors: not ready
        return f"the database does not answer ({type(exc).__name__})"
    return None


async def _twilio_check(wired: Services) -> str | None:
    checked_at, problem = wired.twilio_readiness
    if time.monotonic() - checked_at < TWILIO_CHECK_CACHE_SECONDS:
        return problem
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_SECONDS):
            await wired.twilio.check_access()
        problem = None
    except TimeoutError:
        problem = "Twilio did not answer in time"
    except TwilioError as exc:
        problem = f"Twilio {'refused' if exc.status else 'is unreachable'}: {exc}"
    wired.twilio_readiness = (time.monotonic(), problem)
    return problem


@operations.get("/readyz")
async def readyz() -> Response:
    """Ready: the store answers and Twilio accepts the credentials (checked at most every
    15 s). 503 with the failing checks otherwise, so a load balancer holds traffic back."""
    wired = services()
    store_problem, twilio_problem = await asyncio.gather(_store_check(wired), _twilio_check(wired))
    # Without the listener this process misses other processes' wake-ups: waiters would
    # answer late, so it takes no traffic until the listener is back.
    listening = wired.coordination.wakeups.listening
    checks = {
        "store": store_problem or "ok",
        "twilio": twilio_problem or "ok",
        "wakeups": "ok" if listening else "not listening for other processes' wake-ups",
    }
    ready = store_problem is None and twilio_problem is None and listening
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@operations.get("/metrics")
async def metrics() -> Response:
    """Prometheus text format; with METRICS_TOKEN set, only for ``Bearer <token>``."""
    wired = services()
    if wired.settings.metrics_token is not None:
        require_bearer(request.headers, wired.settings.metrics_token, "metrics", "METRICS_TOKEN")
    counts = await wired.store.operational_counts()
    wired.metrics.open_conversations.set(counts.open_conversations)
    wired.metrics.outbox_depth.set(counts.outbox_depth)
    response = Response(wired.metrics.render(), content_type=PROMETHEUS_TEXT)
    response.headers["Cache-Control"] = "no-store"
    return response
