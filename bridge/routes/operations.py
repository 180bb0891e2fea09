"""What operators and their monitoring call: /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import time

from quart import Blueprint, Response, jsonify, request

from bridge.auth.caller import require_bearer
from bridge.conversations import TwilioError
from bridge.errors import ApiError
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


async def _wakeups_check(wired: Services) -> str | None:
    # Without the listener this process misses other processes' wake-ups: waiters would
    # answer late, so it takes no traffic until the listener is back.
    if wired.coordination.wakeups.listening:
        return None
    return "not listening for other processes' wake-ups"


_CHECKERS = {"store": _store_check, "twilio": _twilio_check, "wakeups": _wakeups_check}

#: What /readyz can check. A load balancer asks for the process's own (the store and the
#: wake-up listener): Twilio is the same for every process, so taking one out of service
#: for it helps nobody, while the bridge still takes messages and queues them.
READY_CHECKS = tuple(_CHECKERS)


def _chosen_checks(asked: str | None) -> tuple[str, ...]:
    if asked is None:
        return READY_CHECKS
    chosen = tuple(dict.fromkeys(name.strip() for name in asked.split(",")[:8]))
    if not chosen or any(name not in READY_CHECKS for name in chosen):
        raise ApiError(
            400,
            "invalid_checks",
            f"checks must name some of {', '.join(READY_CHECKS)}, separated by commas.",
        )
    return chosen


async def readiness(wired: Services, chosen: tuple[str, ...] = READY_CHECKS) -> dict[str, str]:
    """Each chosen check: "ok", or what is wrong (Twilio asked at most every 15 s)."""
    found = await asyncio.gather(*(_CHECKERS[name](wired) for name in chosen))
    return {name: problem or "ok" for name, problem in zip(chosen, found, strict=True)}


@operations.get("/readyz")
async def readyz() -> Response:
    """Ready: the store answers, Twilio accepts the credentials (checked at most every
    15 s) and this process hears other processes' wake-ups; 503 with the failing checks
    otherwise. ``?checks=store,wakeups`` checks only those (a load balancer's probe)."""
    wired = services()
    checks = await readiness(wired, _chosen_checks(request.args.get("checks")))
    ready = all(value == "ok" for value in checks.values())
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
