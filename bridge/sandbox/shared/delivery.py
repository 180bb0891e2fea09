"""Webhooks as Twilio sends them: form-encoded (or a signed GET), signed with the
account's auth token, fire-and-forget, with a timeout, a token that a retry repeats, and
the sandbox's delivery faults (dropped, duplicated)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import urlencode

import aiohttp
import yarl
from twilio.request_validator import RequestValidator

from bridge.sandbox.faults import Faults, Stats

log = logging.getLogger(__name__)

#: Twilio waits this long for a webhook answer before giving up on it.
WEBHOOK_TIMEOUT_SECONDS = 5.0
#: Deliveries in flight at once. Twilio's capacity is far larger; the emulator's is a
#: pool, and a delivery's 5 s start when it has a connection, not while it queues for one.
MAX_DELIVERIES_IN_FLIGHT = 100


class SignedDelivery:
    """Sends signed webhook requests in the background; start it in the running loop."""

    def __init__(self, auth_token: str, faults: Faults, stats: Stats) -> None:
        self._faults = faults
        self._stats = stats
        self._validator = RequestValidator(auth_token)
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = asyncio.Semaphore(MAX_DELIVERIES_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_DELIVERIES_IN_FLIGHT)
        )

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=WEBHOOK_TIMEOUT_SECONDS)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def sign(self, url: str, params: dict[str, str]) -> str:
        """The X-Twilio-Signature Twilio would send for this request."""
        return str(self._validator.compute_signature(url, params))

    def send(self, url: str, method: str, params: dict[str, str]) -> None:
        """Deliver one event (in the background)."""
        self._spawn(url, method, params)

    def _spawn(self, url: str, method: str, params: dict[str, str]) -> None:
        if Faults.chance(self._faults.drop_webhooks):
            self._stats.webhooks["dropped"] += 1
            return
        copies = 2 if Faults.chance(self._faults.duplicate_webhooks) else 1
        if copies == 2:
            self._stats.webhooks["duplicated"] += 1
        # A retry of the same event carries the same token, so receivers can tell.
        token = secrets.token_hex(16)
        for _ in range(copies):
            task = asyncio.get_running_loop().create_task(self._deliver(url, method, params, token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, method: str, params: dict[str, str], token: str) -> None:
        async with self._in_flight:
            await self._deliver_now(url, method, params, token)

    async def _deliver_now(self, url: str, method: str, params: dict[str, str], token: str) -> None:
        if self._session is None:  # shutting down
            return
        headers = {"User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": token}
        try:
            async with asyncio.timeout(WEBHOOK_TIMEOUT_SECONDS):
                status = await self._request(url, method, params, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._stats.webhooks["failed"] += 1
            log.warning(
                "webhook delivery failed: %s %s", params.get("EventType"), type(exc).__name__
            )
            return
        if 200 <= status < 300:
            self._stats.webhooks["delivered"] += 1
        else:
            self._stats.webhooks["failed"] += 1
            log.warning("webhook answered %s for %s", status, params.get("EventType"))

    async def _request(
        self, url: str, method: str, params: dict[str, str], headers: dict[str, str]
    ) -> int:
        assert self._session is not None
        if method == "get":
            signed_url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
            headers["X-Twilio-Signature"] = self.sign(signed_url, {})
            # Sent exactly as signed: aiohttp must not re-encode the query.
            target = yarl.URL(signed_url, encoded=True)
            async with self._session.get(target, headers=headers) as response:
                return response.status
        headers["X-Twilio-Signature"] = self.sign(url, params)
        async with self._session.post(url, data=params, headers=headers) as response:
            return response.status
