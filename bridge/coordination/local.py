"""Coordination within one process: asyncio events and locks, and in-memory counters."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bridge.coordination import Coordination, Posted


class LocalWakeups:
    """One event per identity, replaced each time it fires."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, identity: str) -> asyncio.Event:
        event = self._events.get(identity)
        if event is None:
            event = self._events[identity] = asyncio.Event()
        return event

    @property
    def listening(self) -> bool:
        return True  # every waker is in this process

    async def wake(self, identity: str) -> None:
        self.ring(identity)

    def ring(self, identity: str) -> None:
        """Set the identity's event now (the waiters holding it look again)."""
        event = self._events.pop(identity, None)
        if event is not None:
            event.set()

    def wake_all_here(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()


class LocalLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield


class LocalJobs:
    def __init__(self) -> None:
        self._running: set[str] = set()

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        if name in self._running:
            yield False
            return
        self._running.add(name)
        try:
            yield True
        finally:
            self._running.discard(name)


class LocalBoard:
    def __init__(self) -> None:
        self._posted: dict[str, tuple[str, float]] = {}

    async def post(self, name: str, text: str) -> None:
        self._posted[name] = (text, time.monotonic())

    async def read(self, name: str) -> Posted | None:
        posted = self._posted.get(name)
        return Posted(posted[0], time.monotonic() - posted[1]) if posted else None


@dataclass
class _Bucket:
    tokens: float
    updated: float
    per_minute: int


class LocalRateLimits:
    """A token bucket per key, refilled continuously; at most ``max_tracked`` kept."""

    def __init__(self, max_tracked: int = 100_000) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._max_tracked = max_tracked

    async def take(self, key: str, per_minute: int) -> float:
        now = time.monotonic()
        rate = per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_tracked:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(per_minute), now, per_minute)
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        bucket.per_minute = per_minute
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (a minute unused): they hold no information."""
        for key in [k for k, b in self._buckets.items() if now - b.updated >= 60.0]:
            del self._buckets[key]


def local_coordination() -> Coordination:
    return Coordination(
        wakeups=LocalWakeups(),
        locks=LocalLocks(),
        jobs=LocalJobs(),
        board=LocalBoard(),
        rate_limits=LocalRateLimits(),
    )
