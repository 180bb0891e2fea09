"""Coordination shared through PostgreSQL: two coordinations on one database stand for
two bridge processes. A wake on one reaches the other's waiters; locks, one-at-a-time
jobs and rate limits hold across both; a killed listener comes back by itself and every
waiter looks again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import psycopg
import pytest

from bridge.coordination import Coordination
from bridge.coordination.postgres import SharedWakeups, postgres_coordination
from bridge.stores.postgres import open_postgres_store


@pytest.fixture
async def pair(postgres_url: str) -> AsyncIterator[tuple[Coordination, Coordination]]:
    store = await open_postgres_store(postgres_url)  # migrates: the rate limits' table
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(postgres_coordination(postgres_url))
        two = await stack.enter_async_context(postgres_coordination(postgres_url))
        yield one, two
    await store.close()


async def test_a_wake_in_one_process_reaches_a_waiter_in_another(
    pair: tuple[Coordination, Coordination],
) -> None:
    one, two = pair
    assert one.wakeups.listening and two.wakeups.listening
    lags = []
    for _ in range(20):
        waiting = two.wakeups.event("ann")
        started = time.perf_counter()
        await one.wakeups.wake("ann")
        async with asyncio.timeout(2):
            await waiting.wait()
        lags.append(time.perf_counter() - started)
    other = two.wakeups.event("bob")
    await one.wakeups.wake("ann")
    await asyncio.sleep(0.2)
    assert not other.is_set()  # only the identity rung
    assert sorted(lags)[len(lags) // 2] < 0.05  # a doorbell, not a poll
    assert isinstance(two.wakeups, SharedWakeups) and two.wakeups.last_lag_seconds is not None


async def test_a_lock_held_in_one_process_holds_the_other_off(
    pair: tuple[Coordination, Coordination],
) -> None:
    one, two = pair
    order: list[str] = []
    async with one.locks.hold("identity-x"):
        second = asyncio.ensure_future(_hold(two, "identity-x", order))
        await asyncio.sleep(0.3)
        assert order == []  # still waiting
        order.append("first released")
    await asyncio.wait_for(second, 5)
    assert order == ["first released", "second held"]
    async with one.locks.hold("identity-y"), two.locks.hold("identity-z"):
        pass  # different keys do not wait on each other


async def _hold(coordination: Coordination, key: str, order: list[str]) -> None:
    async with coordination.locks.hold(key):
        order.append("second held")


async def test_a_job_runs_in_one_process_at_a_time(
    pair: tuple[Coordination, Coordination],
) -> None:
    one, two = pair
    async with (
        one.jobs.exclusive("outbox-drain") as mine,
        two.jobs.exclusive("outbox-drain") as theirs,
    ):
        assert (mine, theirs) == (True, False)
    async with two.jobs.exclusive("outbox-drain") as later:
        assert later  # free once the first finished


async def test_a_rate_limit_is_shared(pair: tuple[Coordination, Coordination]) -> None:
    one, two = pair
    waits = [await (one if n % 2 else two).rate_limits.take("send:ann", 4) for n in range(6)]
    assert waits[:4] == [0.0, 0.0, 0.0, 0.0]  # four a minute, whichever process takes
    assert 0 < waits[4] <= 15.5 and 0 < waits[5] <= 15.5
    assert await one.rate_limits.take("send:bob", 4) == 0.0  # per key


async def test_a_killed_listener_comes_back_and_waiters_look_again(
    pair: tuple[Coordination, Coordination], postgres_url: str
) -> None:
    one, two = pair
    waiting = two.wakeups.event("ann")
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%%' AND pid != pg_backend_pid()"
        )
    # A wake sent while nobody listened is lost, but the reconnect rings every waiter.
    async with asyncio.timeout(10):
        await waiting.wait()
    for _ in range(100):
        if two.wakeups.listening:
            break
        await asyncio.sleep(0.05)
    assert two.wakeups.listening
    again = two.wakeups.event("ann")
    await one.wakeups.wake("ann")
    async with asyncio.timeout(2):
        await again.wait()
