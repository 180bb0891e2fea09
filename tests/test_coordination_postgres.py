"""Coordination shared through PostgreSQL: two coordinations on one database stand for
two bridge processes. A change stored by one rings the other's waiters (the database's
doorbell, from the transaction that makes it); locks, one-at-a-time jobs and rate limits
hold across both; a killed listener comes back by itself and every waiter looks again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import psycopg
import pytest

from bridge.coordination import Coordination
from bridge.coordination.postgres import SharedWakeups, postgres_coordination
from bridge.store import AgentMessage
from bridge.stores.postgres import PostgresStore, open_postgres_store

ONE, TWO = "flex-bridge/test/one", "flex-bridge/test/two"


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """Process one's store (its connections named as its coordination's)."""
    opened = await open_postgres_store(postgres_url, name=ONE)
    yield opened
    await opened.close()


@pytest.fixture
async def pair(
    postgres_url: str, store: PostgresStore
) -> AsyncIterator[tuple[Coordination, Coordination]]:
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(postgres_coordination(postgres_url, name=ONE))
        two = await stack.enter_async_context(postgres_coordination(postgres_url, name=TWO))
        yield one, two


async def _rung(event: asyncio.Event, seconds: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def test_a_change_stored_by_one_process_rings_a_waiter_in_another(
    pair: tuple[Coordination, Coordination], store: PostgresStore
) -> None:
    one, two = pair
    assert one.wakeups.listening and two.wakeups.listening
    ann = await store.claim_conversation("ann")
    opened = two.wakeups.event("ann")
    await store.mark_open(ann.id, "CHann")
    assert await _rung(opened)
    lags = []
    for index in range(20):
        waiting, bystander = two.wakeups.event("ann"), two.wakeups.event("bob")
        started = time.perf_counter()
        message = AgentMessage(f"IM{index:032d}", index, "agent", "hello", "2026-12-02T00:00:00Z")
        await store.record_agent_messages(ann.id, [message], index)  # a reply, deliverable
        assert await _rung(waiting)
        lags.append(time.perf_counter() - started)
        assert not bystander.is_set()  # only the identity rung
    assert sorted(lags)[len(lags) // 2] < 0.05  # a doorbell, not a poll
    assert isinstance(two.wakeups, SharedWakeups) and two.wakeups.last_lag_seconds is not None

    # A mark moving past none of the agent's replies (the user's own message) is no news.
    quiet = two.wakeups.event("ann")
    assert await store.advance_synced_index_from(ann.id, 19, 20)
    assert not await _rung(quiet, 0.3)
    # An agent joining is, and so are replies handed back after a lost answer, and a close.
    assert await store.set_progress(ann.id, "with_agent", "Alex")
    assert await _rung(quiet)
    taken = await store.take_replies("ann", "lease-1", time.time() + 60)
    assert len(taken) == 20
    handed_back = two.wakeups.event("ann")
    await store.release_replies("lease-1")
    assert await _rung(handed_back)
    closing = two.wakeups.event("ann")
    assert await store.mark_closed(ann.id, "agent")
    assert await _rung(closing)


async def test_a_process_is_not_rung_twice_by_its_own_changes(
    pair: tuple[Coordination, Coordination], store: PostgresStore, postgres_url: str
) -> None:
    one, _two = pair
    ann = await store.claim_conversation("ann")
    await store.mark_open(ann.id, "CHann")
    mine = one.wakeups.event("ann")
    assert await store.set_progress(ann.id, "with_agent")
    assert not await _rung(mine, 0.3)  # its own change: it rang its waiters itself
    # A change made by anyone else, an operator's SQL too, rings it.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("UPDATE conversations SET state = 'closed' WHERE id = %s", (ann.id,))
    assert await _rung(mine)


async def test_a_change_rolled_back_rings_nobody(
    pair: tuple[Coordination, Coordination], store: PostgresStore, postgres_url: str
) -> None:
    _one, two = pair
    ann = await store.claim_conversation("ann")
    waiting = two.wakeups.event("ann")
    with psycopg.connect(postgres_url) as admin:
        admin.execute("UPDATE conversations SET state = 'closed' WHERE id = %s", (ann.id,))
        assert not await _rung(waiting, 0.3)  # not before it commits
        admin.rollback()
    assert not await _rung(waiting, 0.3)


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
    pair: tuple[Coordination, Coordination], store: PostgresStore, postgres_url: str
) -> None:
    _one, two = pair
    ann = await store.claim_conversation("ann")
    waiting = two.wakeups.event("ann")
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%%' AND pid != pg_backend_pid()"
        )
    # A ring sent while nobody listened is lost, but the reconnect rings every waiter.
    assert await _rung(waiting, 10)
    for _ in range(100):
        if two.wakeups.listening:
            break
        await asyncio.sleep(0.05)
    assert two.wakeups.listening
    again = two.wakeups.event("ann")
    assert await store.set_progress(ann.id, "with_agent")
    assert await _rung(again)


async def test_what_one_process_posts_the_other_reads_with_its_age(
    pair: tuple[Coordination, Coordination],
) -> None:
    one, two = pair
    assert await two.board.read("queue-figures") is None
    await one.board.post("queue-figures", '{"places": {}}')
    await asyncio.sleep(0.2)
    posted = await two.board.read("queue-figures")
    assert posted is not None and posted.text == '{"places": {}}'
    assert 0.2 <= posted.age_seconds < 2
    await two.board.post("queue-figures", "newer")
    again = await one.board.read("queue-figures")
    assert again is not None and again.text == "newer" and again.age_seconds < 0.2
