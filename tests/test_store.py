"""The store on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from bridge import store


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await store.open_database(tmp_path / "nested" / "bridge.db")
    yield connection
    await connection.close()


def message(n: int) -> store.AgentMessage:
    return store.AgentMessage(f"IM{n:032d}", n, "agent", f"reply {n}", "2026-11-22T10:00:00Z")


async def test_wal_mode_and_migrations_apply_once(db: aiosqlite.Connection, tmp_path: Path) -> None:
    async with db.execute("PRAGMA journal_mode") as cursor:
        assert (await cursor.fetchone())[0] == "wal"  # type: ignore[index]
    assert await store.migrate(db) == []
    again = await store.open_database(tmp_path / "nested" / "bridge.db")
    assert await store.migrate(again) == []
    await again.close()


async def test_simultaneous_claims_make_one_conversation(db: aiosqlite.Connection) -> None:
    rows = await asyncio.gather(*[store.claim_conversation(db, "who") for _ in range(20)])
    assert {row.id for row in rows} == {rows[0].id}
    assert rows[0].generation == 1 and rows[0].state == "opening"


async def test_closing_lets_the_next_claim_open_a_new_generation(db: aiosqlite.Connection) -> None:
    first = await store.claim_conversation(db, "who")
    await store.mark_open(db, first.id, "CH1")
    assert await store.mark_closed(db, first.id)
    assert not await store.mark_closed(db, first.id)
    second = await store.claim_conversation(db, "who")
    assert (second.generation, second.state) == (2, "opening")
    latest = await store.latest_conversation(db, "who")
    assert latest is not None and latest.id == second.id


async def test_agent_messages_are_stored_once_and_handed_out_once(db: aiosqlite.Connection) -> None:
    conv = await store.claim_conversation(db, "who")
    assert await store.record_agent_messages(db, conv.id, [message(1), message(3)], 3) == 2
    assert await store.record_agent_messages(db, conv.id, [message(1), message(3)], 3) == 0
    assert [m.idx for m in await store.take_undelivered(db, conv.id)] == [1, 3]
    assert await store.take_undelivered(db, conv.id) == []
    await store.record_agent_messages(db, conv.id, [message(5)], 6)
    assert [m.body for m in await store.take_undelivered(db, conv.id)] == ["reply 5"]
    row = await store.conversation_by_id(db, conv.id)
    assert (row.delivered_index, row.synced_index) == (5, 6)


async def test_concurrent_takes_never_share_a_message(db: aiosqlite.Connection) -> None:
    conv = await store.claim_conversation(db, "who")
    await store.record_agent_messages(db, conv.id, [message(n) for n in range(50)], 49)
    results = await asyncio.gather(*[store.take_undelivered(db, conv.id) for _ in range(10)])
    handed = [m.idx for batch in results for m in batch]
    assert sorted(handed) == list(range(50))


async def test_generated_setting_is_kept(db: aiosqlite.Connection) -> None:
    assert await store.get_or_create_setting(db, "k", "first") == "first"
    assert await store.get_or_create_setting(db, "k", "second") == "first"


async def test_replies_behind_a_gap_wait_for_it(db: aiosqlite.Connection) -> None:
    """A reply seen before an earlier one (a webhook lost or late) is held back until the
    gap is filled, so the cursor never moves past a reply that was not handed out."""
    conv = await store.claim_conversation(db, "who")
    await store.record_agent_messages(db, conv.id, [message(0)], 0)
    await store.record_agent_messages(db, conv.id, [message(3)], -1)  # 1 and 2 unseen
    assert [m.idx for m in await store.take_undelivered(db, conv.id)] == [0]
    assert await store.conversations_with_gaps(db) == [conv.id]
    await store.record_agent_messages(db, conv.id, [message(1)], 3)  # 2 was the user's
    assert [m.idx for m in await store.take_undelivered(db, conv.id)] == [1, 3]
    assert await store.conversations_with_gaps(db) == []
