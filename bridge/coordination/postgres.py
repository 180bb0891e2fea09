"""Coordination shared by every bridge process on one PostgreSQL database.

- Wake-ups: the database rings. A change a waiter must see (a reply made deliverable,
  an agent joining, a close, replies handed back) NOTIFYs one channel from the very
  transaction that makes it (triggers, migration 0003), so the ring goes out exactly when
  the change commits, whichever process (or operator) made it. Each process LISTENs on a
  connection of its own (outside the pool) and rings its local events; its own changes it
  rang at once already. The store stays the truth: a ring only says "look again", so one
  missed while the listener reconnects delays an answer, and after any reconnect every
  waiter of the process looks again.
- Locks and one-at-a-time jobs: session advisory locks, held on a pool connection for as
  long as the holder runs (the database frees them if the process dies).
- A job's latest result: a row per name, its age on the database's clock.
- Rate limits: a token bucket per key in a table, taken in one statement on the
  database's clock (the processes' clocks may differ).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool

from bridge import logs
from bridge.coordination import Coordination, Posted
from bridge.coordination.local import LocalLocks, LocalWakeups

log = logging.getLogger(__name__)

CHANNEL = "bridge_wake"
#: How long the listener waits before connecting again, at most.
MAX_RECONNECT_SECONDS = 5.0
#: Advisory lock namespaces (hashtextextended's seed), so a lock and a job never collide.
LOCKS, JOBS = 1, 2


class SharedWakeups:
    """Local events, rung by this process's changes at once and by every other's through
    the database's doorbell."""

    def __init__(
        self, url: str, name: str, observe_lag: Callable[[float], None] | None = None
    ) -> None:
        """``name``: the application_name of this process's store connections (its own
        rings are not news); ``observe_lag`` hears how late each other ring came (s)."""
        self._url = url
        self._me = name
        self._observe_lag = observe_lag
        self._local = LocalWakeups()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        #: Seconds from a NOTIFY to its arrival here, the last one seen (delivery lag).
        self.last_lag_seconds: float | None = None

    @property
    def listening(self) -> bool:
        """Whether this process hears other processes' wake-ups now."""
        return self._listening.is_set()

    async def start(self) -> None:
        """Start listening (waiting up to 10 s for it: the bridge may start without)."""
        self._listener = asyncio.create_task(self._listen(), name="wake-listener")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self._listening.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    def event(self, identity: str) -> asyncio.Event:
        return self._local.event(identity)

    async def wake(self, identity: str) -> None:
        # Other processes heard it from the transaction that stored the change.
        self._local.ring(identity)

    def wake_all_here(self) -> None:
        self._local.wake_all_here()

    async def _listen(self) -> None:
        pause = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, application_name=self._me
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    pause = 0.1
                    # Whatever was rung while nobody listened: every waiter looks again.
                    self._local.wake_all_here()
                    async for note in conn.notifies():
                        self._heard(note.payload)
            except (psycopg.Error, OSError) as error:
                logs.event(log, "coordination.listener_lost", error=type(error).__name__)
            self._listening.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RECONNECT_SECONDS)

    def _heard(self, payload: str) -> None:
        sender, sent, identity = [*payload.split(" ", 2), "", ""][:3]
        if sender == self._me or not identity:
            return
        self._local.ring(identity)
        with contextlib.suppress(ValueError):
            self.last_lag_seconds = max(0.0, time.time() - float(sent))
            if self._observe_lag is not None:
                self._observe_lag(self.last_lag_seconds)


class SharedLocks:
    """An advisory lock per key, held on a pool connection; a local lock first, so one
    process queues its own holders without taking a connection each."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._local = LocalLocks()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._local.hold(key), self._pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, %s))", (key, LOCKS))
            try:
                yield
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(%s, %s))", (key, LOCKS)
                )


class SharedJobs:
    """A job runs where its advisory lock was free; elsewhere it is skipped."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, %s))", (name, JOBS)
            )
            row = await cursor.fetchone()
            got = bool(row and row[0])
            try:
                yield got
            finally:
                if got:
                    await conn.execute(
                        "SELECT pg_advisory_unlock(hashtextextended(%s, %s))", (name, JOBS)
                    )


class SharedBoard:
    """The ``board`` table: a row per name."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def post(self, name: str, text: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO board (name, text, posted)"
                " VALUES (%s, %s, EXTRACT(EPOCH FROM clock_timestamp()))"
                " ON CONFLICT (name) DO UPDATE SET text = EXCLUDED.text, posted = EXCLUDED.posted",
                (name, text),
            )

    async def read(self, name: str) -> Posted | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT text, EXTRACT(EPOCH FROM clock_timestamp()) - posted"
                " FROM board WHERE name = %s",
                (name,),
            )
            row = await cursor.fetchone()
        return Posted(row[0], max(0.0, float(row[1]))) if row is not None else None


#: Refill the key's bucket to now, on the database's clock, and take one if there is one.
_TAKE = """
INSERT INTO rate_limits AS b (key, tokens, updated, allowed)
VALUES (%(key)s, %(full)s - 1, EXTRACT(EPOCH FROM clock_timestamp()), TRUE)
ON CONFLICT (key) DO UPDATE SET
    allowed = LEAST(%(full)s, b.tokens + GREATEST(0, EXCLUDED.updated - b.updated) * %(rate)s)
              >= 1,
    tokens = LEAST(%(full)s, b.tokens + GREATEST(0, EXCLUDED.updated - b.updated) * %(rate)s)
             - CASE WHEN LEAST(%(full)s, b.tokens
                               + GREATEST(0, EXCLUDED.updated - b.updated) * %(rate)s) >= 1
               THEN 1 ELSE 0 END,
    updated = GREATEST(b.updated, EXCLUDED.updated)
RETURNING allowed, tokens
"""


class SharedRateLimits:
    """A token bucket per key in the ``rate_limits`` table, refilled continuously, taken
    in one statement (concurrent takers queue on the row). Buckets unused for two minutes
    are full again, hold nothing, and are removed now and then."""

    def __init__(self, pool: AsyncConnectionPool, *, sweep_every: int = 1000) -> None:
        self._pool = pool
        self._sweep_every = sweep_every
        self._taken = 0

    async def take(self, key: str, per_minute: int) -> float:
        rate = per_minute / 60.0
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                _TAKE, {"key": key, "full": float(per_minute), "rate": rate}
            )
            row = await cursor.fetchone()
            self._taken += 1
            if self._taken % self._sweep_every == 0:
                await conn.execute(
                    "DELETE FROM rate_limits"
                    " WHERE updated < EXTRACT(EPOCH FROM clock_timestamp()) - 120"
                )
        assert row is not None
        allowed, tokens = bool(row[0]), float(row[1])
        return 0.0 if allowed else (1 - tokens) / rate


@asynccontextmanager
async def postgres_coordination(
    url: str,
    *,
    name: str,
    pool_size: int = 20,
    observe_lag: Callable[[float], None] | None = None,
) -> AsyncIterator[Coordination]:
    """Coordination on the database at ``url`` (migrated by the store first): a pool of
    its own for locks and jobs, and the wake-up listener's connection. ``name``: the
    application_name this process's store connections carry (process_name)."""
    pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=pool_size,
        kwargs={"autocommit": True, "application_name": name},
        check=AsyncConnectionPool.check_connection,  # survive a server restart
        open=False,
        name="coordination",
    )
    await pool.open(wait=True, timeout=10)
    wakeups = SharedWakeups(url, name, observe_lag)
    try:
        await wakeups.start()
        yield Coordination(
            wakeups=wakeups,
            locks=SharedLocks(pool),
            jobs=SharedJobs(pool),
            board=SharedBoard(pool),
            rate_limits=SharedRateLimits(pool),
        )
    finally:
        await wakeups.close()
        await pool.close()
