"""Coordination between requests and background work, behind small protocols.

The core wakes waiters, takes per-identity locks, runs one-at-a-time jobs, shares their
latest results and counts rate limits only through these.
:mod:`bridge.coordination.local` implements them in this process's memory (one bridge
process); :mod:`bridge.coordination.postgres` shares them between every process on one
PostgreSQL database.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


class Wakeups(Protocol):
    """Waking the requests that wait for an identity's replies.

    A waiter takes its event *before* looking at the store, so a wake-up that lands
    between the look and the wait is never missed.
    """

    def event(self, identity: str) -> asyncio.Event:
        """The event the next :meth:`wake` for ``identity`` sets."""

    async def wake(self, identity: str) -> None:
        """Something changed for ``identity`` (stored first): its waiters look again."""

    def wake_all_here(self) -> None:
        """Wake every waiter of this process (at shutdown: each answers with what it has)."""

    @property
    def listening(self) -> bool:
        """Whether wake-ups from every process reach this one now."""


class Locks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold the lock named ``key`` (waiting for it), e.g. one identity's."""


class Jobs(Protocol):
    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Run the job ``name`` only if nobody else is running it: enters with True when
        this caller runs it, False (at once) when another does."""


@dataclass(frozen=True)
class Posted:
    text: str
    age_seconds: float  # since it was posted


class Board(Protocol):
    """A one-at-a-time job's latest result, for every process to read (so one process
    does the work and the others use what it found)."""

    async def post(self, name: str, text: str) -> None:
        """Replace what ``name`` says."""

    async def read(self, name: str) -> Posted | None:
        """What ``name`` says, and how long ago it was posted; None if never."""


class RateLimits(Protocol):
    async def take(self, key: str, per_minute: int) -> float:
        """Take one request from ``key``'s allowance of ``per_minute`` (a bucket that deep,
        refilled continuously): 0 if allowed, else the seconds until one will be."""


@dataclass(frozen=True)
class Coordination:
    wakeups: Wakeups
    locks: Locks
    jobs: Jobs
    board: Board
    rate_limits: RateLimits
