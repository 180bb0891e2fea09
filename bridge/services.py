"""The objects wired at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite
from quart import current_app

from bridge.auth.server import AuthorizationServer
from bridge.config import Settings
from bridge.conversations import ConversationsClient
from bridge.handoff import HandoffService
from bridge.metrics import Metrics
from bridge.ratelimit import RateLimiter


@dataclass
class Services:
    settings: Settings
    db: aiosqlite.Connection
    twilio: ConversationsClient
    handoff: HandoffService
    secret: str
    rate_limiter: RateLimiter
    metrics: Metrics
    oauth: AuthorizationServer | None = None
    #: When /readyz last asked Twilio, and what was wrong then (None: nothing).
    twilio_readiness: tuple[float, str | None] = (float("-inf"), None)


def services() -> Services:
    found: Services = current_app.extensions["bridge"]
    return found
