"""Per-identity rate limit on /send: a token bucket refilled continuously."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int, max_tracked: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._capacity = float(per_minute)
        self._buckets: dict[str, _Bucket] = {}
        self._max_tracked = max_tracked

    def check(self, key: str) -> float:
        """Take one request; 0 if allowed, else the seconds until one will be."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_tracked:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self._capacity, now)
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold no information."""
        refill = self._capacity / self._rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= refill]:
            del self._buckets[key]


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))
