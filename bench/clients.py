"""HTTP clients for the driver: the bridge's hand-off API and the emulator (REST as the
agent uses it, plus its fault and call-count controls)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from bench.procs import ACCOUNT_SID, AUTH_TOKEN, BRIDGE_SECRET

AGENT = "agent.bench"
T = TypeVar("T")


def identity_of(user: str) -> str:
    """The identity the bridge gives ``user``: HMAC-SHA256(BRIDGE_SECRET, user) in hex (the
    benchmark sets BRIDGE_SECRET, so it can tell which conversation is whose)."""
    return hmac.new(BRIDGE_SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()


def unique_name_of(user: str, generation: int = 1) -> str:
    """The conversation UniqueName the bridge derives from the identity and generation."""
    return f"flexbridge-{identity_of(user)}-{generation}"


def session(limit: int = 100, keepalive: float = 15.0) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=keepalive)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


@dataclass
class Answer:
    """One hand-off API answer as the driver saw it."""

    http_status: int
    body: dict[str, Any]
    started: float
    finished: float

    @property
    def ok(self) -> bool:
        return self.http_status == 200

    @property
    def status(self) -> str:
        return str(self.body.get("status", ""))

    @property
    def replies(self) -> list[dict[str, str]]:
        found: list[dict[str, str]] = self.body.get("replies", [])
        return found


class BridgeClient:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def send(self, user: str, msg: str, context: str | None = None) -> Answer:
        payload: dict[str, str] = {"msg": msg}
        if context is not None:
            payload["context"] = context
        started = time.perf_counter()
        async with self.http.post(f"{self.url}/send/{user}", json=payload) as response:
            body = await _json(response)
        return Answer(response.status, body, started, time.perf_counter())

    async def replies(self, user: str, wait: float = 0) -> Answer:
        started = time.perf_counter()
        async with self.http.get(
            f"{self.url}/replies/{user}", params={"wait": f"{wait:g}"}
        ) as response:
            body = await _json(response)
        return Answer(response.status, body, started, time.perf_counter())


async def cancel_and_close(
    tasks: Iterable[asyncio.Task[Any]], *sessions: aiohttp.ClientSession
) -> None:
    """Cancel the driver's calls still running and close its client sessions."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for opened in sessions:
        await opened.close()


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        found = await response.json(content_type=None)
    except ValueError:
        return {"raw": (await response.text())[:200]}
    return found if isinstance(found, dict) else {"raw": found}


class EmulatorError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class EmulatorClient:
    """The emulator's REST API, called the way an agent's tooling would call Twilio."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.api = f"{url}/sandbox/twilio/v1"
        self.auth = aiohttp.BasicAuth(ACCOUNT_SID, AUTH_TOKEN)

    async def _call(
        self,
        method: str,
        url: str,
        *,
        data: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        async with self.http.request(
            method, url, data=data, json=json, params=params, headers=headers, auth=self.auth
        ) as response:
            body = await _json(response)
            if response.status >= 300:
                raise EmulatorError(response.status, body)
            return body

    # --- control --------------------------------------------------------------------------

    async def set_faults(self, **faults: float) -> dict[str, Any]:
        return await self._call("PUT", f"{self.url}/sandbox/control/faults", json=faults)

    async def clear_faults(self) -> None:
        await self.set_faults(
            latency_ms=0,
            rate_429=0,
            rate_500=0,
            rate_lost_response=0,
            drop_webhooks=0,
            duplicate_webhooks=0,
        )

    async def stats(self) -> dict[str, Any]:
        return await self._call("GET", f"{self.url}/sandbox/control/stats")

    async def reset_stats(self) -> None:
        await self._call("DELETE", f"{self.url}/sandbox/control/stats")

    # --- REST -----------------------------------------------------------------------------

    async def post_message(self, sid: str, body: str, author: str = AGENT) -> dict[str, Any]:
        """One create call, webhooks enabled, as Flex's agent UI posts a reply."""
        return await self._call(
            "POST",
            f"{self.api}/Conversations/{sid}/Messages",
            data={"Author": author, "Body": body},
            headers={"X-Twilio-Webhook-Enabled": "true"},
        )

    async def conversation(self, sid_or_unique_name: str) -> dict[str, Any]:
        return await self._call("GET", f"{self.api}/Conversations/{sid_or_unique_name}")

    async def messages(self, sid: str) -> list[dict[str, Any]]:
        return await self._every_page(f"{self.api}/Conversations/{sid}/Messages", "messages")

    async def conversations(self) -> list[dict[str, Any]]:
        return await self._every_page(f"{self.api}/Conversations", "conversations")

    async def _every_page(self, first: str, key: str) -> list[dict[str, Any]]:
        """Every item of a listing, following ``meta.next_page_url``."""
        found: list[dict[str, Any]] = []
        url: str | None = first
        params: dict[str, str] | None = {"PageSize": "100"}  # the most Twilio serves
        while url:
            page = await self._call("GET", url, params=params)
            found.extend(page[key])
            url, params = page["meta"].get("next_page_url"), None
        return found


async def retrying(
    action: Callable[[], Awaitable[T]],
    attempts: int = 60,
    pause: float = 0.05,
    deadline: float | None = None,
) -> T:
    """Run ``action()`` again while the emulator answers 429/5xx or the connection drops."""
    for attempt in range(attempts):
        try:
            return await action()
        except (EmulatorError, aiohttp.ClientError, TimeoutError) as error:
            last = attempt == attempts - 1 or (deadline is not None and time.monotonic() > deadline)
            if last or (isinstance(error, EmulatorError) and not error.retryable):
                raise
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")
