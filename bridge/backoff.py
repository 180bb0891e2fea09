"""The one retry policy: exponential backoff with a cap, and jitter so that many retries
after one outage do not arrive together."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before the ``attempt``-th retry (1-based): ``base`` doubled per
    attempt up to ``cap``, then between half of that and all of it."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - not crypto
