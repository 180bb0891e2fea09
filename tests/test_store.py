"""The store on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
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
    assert [m.idx for m in await store.take_undelivered_for(db, "who")] == [1, 3]
    assert await store.take_undelivered_for(db, "who") == []
    await store.record_agent_messages(db, conv.id, [message(5)], 6)
    assert [m.body for m in await store.take_undelivered_for(db, "who")] == ["reply 5"]
    assert (await store.conversation_by_id(db, conv.id)).synced_index == 6
    assert await store.take_undelivered_for(db, "someone else") == []


async def test_concurrent_takes_never_share_a_message(db: aiosqlite.Connection) -> None:
    conv = await store.claim_conversation(db, "who")
    await store.record_agent_messages(db, conv.id, [message(n) for n in range(50)], 49)
    results = await asyncio.gather(*[store.take_undelivered_for(db, "who") for _ in range(10)])
    handed = [m.idx for batch in results for m in batch]
    assert sorted(handed) == list(range(50))


async def test_an_older_conversations_replies_come_first(db: aiosqlite.Connection) -> None:
    first = await store.claim_conversation(db, "who")
    await store.mark_open(db, first.id, "CH1")
    await store.record_agent_messages(db, first.id, [message(7)], 7)
    await store.mark_closed(db, first.id)
    second = await store.claim_conversation(db, "who")
    await store.record_agent_messages(db, second.id, [message(2), message(1)], 2)
    assert [m.idx for m in await store.take_undelivered_for(db, "who")] == [7, 1, 2]


async def test_migration_keeps_what_the_delivery_cursor_had_handed_out(tmp_path: Path) -> None:
    """A database from before 0005 (a cursor per conversation) keeps its hand-outs."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for script in sorted((Path(store.__file__).parent / "migrations").glob("000[1-4]_*.sql")):
            old.executescript(script.read_text())
        old.executemany(
            "INSERT INTO schema_migrations VALUES (?, 'then')", [(1,), (2,), (3,), (4,)]
        )
        old.execute(
            "INSERT INTO conversations (id, identity, generation, state, delivered_index,"
            " synced_index, created_at) VALUES (1, 'who', 1, 'open', 1, 3, 'then')"
        )
        old.executemany(
            "INSERT INTO agent_messages VALUES (?, 1, ?, 'agent', ?, 'then')",
            [(f"IM{n}", n, f"reply {n}") for n in (0, 1, 3)],
        )
    db = await store.open_database(path)
    try:
        assert [m.idx for m in await store.take_undelivered_for(db, "who")] == [3]
    finally:
        await db.close()


async def test_generated_setting_is_kept(db: aiosqlite.Connection) -> None:
    assert await store.get_or_create_setting(db, "k", "first") == "first"
    assert await store.get_or_create_setting(db, "k", "second") == "first"


async def test_replies_behind_a_gap_wait_for_it(db: aiosqlite.Connection) -> None:
    """A reply seen before an earlier one (a webhook lost or late) is held back until the
    gap is filled, so the cursor never moves past a reply that was not handed out."""
    conv = await store.claim_conversation(db, "who")
    await store.record_agent_messages(db, conv.id, [message(0)], 0)
    await store.record_agent_messages(db, conv.id, [message(3)])  # 1 and 2 unseen
    assert [m.idx for m in await store.take_undelivered_for(db, "who")] == [0]
    assert await store.conversations_with_gaps(db) == [conv.id]
    await store.record_agent_messages(db, conv.id, [message(1)], 3)  # 2 was the user's
    assert [m.idx for m in await store.take_undelivered_for(db, "who")] == [1, 3]
    assert await store.conversations_with_gaps(db) == []
