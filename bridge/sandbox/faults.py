"""Fault injection and call counting for the emulator, settable while it runs.

``PUT /sandbox/control/faults`` with any of the fields of :class:`Faults` (JSON) changes
them; ``GET`` reads them. ``GET /sandbox/control/stats`` counts REST calls by operation
and webhooks by outcome; ``DELETE`` resets the counts.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Faults:
    latency_ms: float = 0.0  # added to every REST call
    rate_429: float = 0.0  # fraction answered 429 before doing anything
    rate_500: float = 0.0  # fraction answered 500 before doing anything
    rate_lost_response: float = 0.0  # fraction of writes done, then answered 500
    drop_webhooks: float = 0.0  # fraction of webhook deliveries never sent
    duplicate_webhooks: float = 0.0  # fraction of webhook deliveries sent twice
    skip_indexes: float = 0.0  # fraction of new messages whose index skips 1 to 3 numbers
    silent_closes: float = 0.0  # fraction of Flex's conversation closes no webhook announces

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if name != "latency_ms" and not 0 <= value <= 1:
                raise ValueError(f"{name} is a fraction between 0 and 1")
            if name == "latency_ms" and not 0 <= value <= 60_000:
                raise ValueError("latency_ms must be between 0 and 60000")
            setattr(self, name, float(value))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @staticmethod
    def chance(rate: float) -> bool:
        return rate > 0 and random.random() < rate  # noqa: S311 - not crypto

    def index_gap(self) -> int:
        """How many numbers a new message's index skips (Twilio's indexes may skip)."""
        return random.randint(1, 3) if self.chance(self.skip_indexes) else 0  # noqa: S311


@dataclass
class Stats:
    calls: Counter[str]
    webhooks: Counter[str]

    @classmethod
    def empty(cls) -> Stats:
        return cls(Counter(), Counter())

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "webhooks": dict(self.webhooks),
        }

    def reset(self) -> None:
        self.calls.clear()
        self.webhooks.clear()
