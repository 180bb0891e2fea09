"""The store on a real SQLite file and on a real PostgreSQL server: the same tests for
both backends, and the SQLite file's own (WAL, migrations of old files)."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store import AgentMessage, StoreUnavailable
from bridge.stores.postgres import PostgresStore, open_postgres_store
from bridge.stores.sqlite import SqliteStore, open_sqlite_store

AnyStore = SqliteStore | PostgresStore

MIGRATIONS = Path(__file__).parents[1] / "bridge" / "stores" / "sqlite" / "migrations"
PG_MIGRATIONS = MIGRATIONS.parents[1] / "postgres" / "migrations"


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "nested" / "bridge.db")
    yield opened
    await opened.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AnyStore]:
    """The store, on each backend in turn."""
    opened: AnyStore
    if request.param == "sqlite":
        opened = await open_sqlite_store(tmp_path / "nested" / "bridge.db")
    else:
        opened = await open_postgres_store(request.getfixturevalue("postgres_url"))
    yield opened
    await opened.close()


async def take(db: AnyStore, identity: str) -> list[AgentMessage]:
    """Take and confirm at once: what one answer that reached its caller hands out."""
    lease = secrets.token_hex(8)
    taken = await db.take_replies(identity, lease, time.time() + 60)
    await db.confirm_replies(lease)
    return [item.message for item in taken]


def message(n: int) -> AgentMessage:
    return AgentMessage(f"IM{n:032d}", n, "agent", f"reply {n}", "2026-11-22T10:00:00Z")


async def test_wal_mode_and_migrations_apply_once(sqlite_db: SqliteStore, tmp_path: Path) -> None:
    db = sqlite_db
    assert (await db.fetch("PRAGMA journal_mode"))[0][0] == "wal"
    assert await db.migrate() == []
    again = await open_sqlite_store(tmp_path / "nested" / "bridge.db")
    assert await again.migrate() == []
    await again.close()


async def test_simultaneous_claims_make_one_conversation(db: AnyStore) -> None:
    rows = await asyncio.gather(*[db.claim_conversation("who") for _ in range(20)])
    assert {row.id for row in rows} == {rows[0].id}
    assert rows[0].generation == 1 and rows[0].state == "opening"


async def test_closing_lets_the_next_claim_open_a_new_generation(db: AnyStore) -> None:
    first = await db.claim_conversation("who")
    await db.mark_open(first.id, "CH1")
    assert await db.mark_closed(first.id, "agent")
    assert not await db.mark_closed(first.id, "user")
    second = await db.claim_conversation("who")
    assert (second.generation, second.state) == (2, "opening")
    latest = await db.latest_conversation("who")
    assert latest is not None and latest.id == second.id


async def test_agent_messages_are_stored_once_and_handed_out_once(db: AnyStore) -> None:
    conv = await db.claim_conversation("who")
    assert await db.record_agent_messages(conv.id, [message(1), message(3)], 3) == 2
    assert await db.record_agent_messages(conv.id, [message(1), message(3)], 3) == 0
    assert [m.idx for m in await take(db, "who")] == [1, 3]
    assert await take(db, "who") == []
    await db.record_agent_messages(conv.id, [message(5)], 6)
    assert [m.body for m in await take(db, "who")] == ["reply 5"]
    assert (await db.conversation_by_id(conv.id)).synced_index == 6
    assert await take(db, "someone else") == []


async def test_concurrent_takes_never_share_a_message(db: AnyStore) -> None:
    conv = await db.claim_conversation("who")
    await db.record_agent_messages(conv.id, [message(n) for n in range(50)], 49)
    results = await asyncio.gather(*[take(db, "who") for _ in range(10)])
    handed = [m.idx for batch in results for m in batch]
    assert sorted(handed) == list(range(50))


async def test_an_older_conversations_replies_come_first(db: AnyStore) -> None:
    first = await db.claim_conversation("who")
    await db.mark_open(first.id, "CH1")
    await db.record_agent_messages(first.id, [message(7)], 7)
    await db.mark_closed(first.id, "agent")
    second = await db.claim_conversation("who")
    await db.record_agent_messages(second.id, [message(2), message(1)], 2)
    assert [m.idx for m in await take(db, "who")] == [7, 1, 2]


async def test_migration_keeps_what_the_delivery_cursor_had_handed_out(tmp_path: Path) -> None:
    """A database from before 0005 (a cursor per conversation) keeps its hand-outs."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for script in sorted((MIGRATIONS).glob("000[1-4]_*.sql")):
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
    db = await open_sqlite_store(path)
    try:
        assert [m.idx for m in await take(db, "who")] == [3]
    finally:
        await db.close()


async def test_generated_setting_is_kept(db: AnyStore) -> None:
    assert await db.get_or_create_setting("k", "first") == "first"
    assert await db.get_or_create_setting("k", "second") == "first"


async def test_replies_behind_a_gap_wait_for_it(db: AnyStore) -> None:
    """A reply seen before an earlier one (a webhook lost or late) is held back until the
    gap is filled, so the cursor never moves past a reply that was not handed out."""
    conv = await db.claim_conversation("who")
    await db.record_agent_messages(conv.id, [message(0)], 0)
    await db.record_agent_messages(conv.id, [message(3)])  # 1 and 2 unseen
    assert [m.idx for m in await take(db, "who")] == [0]
    assert await db.conversations_with_gaps() == [conv.id]
    await db.record_agent_messages(conv.id, [message(1)], 3)  # 2 was the user's
    assert [m.idx for m in await take(db, "who")] == [1, 3]
    assert await db.conversations_with_gaps() == []


async def test_who_closed_is_kept_and_the_first_closer_named_wins(db: AnyStore) -> None:
    conv = await db.claim_conversation("who")
    await db.mark_open(conv.id, "CH1")
    await db.mark_closing(conv.id, "user")  # the user's /end is on its way to Twilio
    assert await db.mark_closed(conv.id, "agent")  # ...and its close webhook lands first
    closed = await db.conversation_by_id(conv.id)
    assert (closed.state, closed.closed_by) == ("closed", "user")
    await db.mark_closing(conv.id, "lost")  # closed already: nothing changes
    assert (await db.conversation_by_id(conv.id)).closed_by == "user"

    other = await db.claim_conversation("who")
    await db.mark_closing(other.id, "user")
    await db.mark_closing(other.id, None)  # the user's close failed: nobody is closing it
    assert await db.mark_closed(other.id, "agent")
    assert (await db.conversation_by_id(other.id)).closed_by == "agent"


async def test_health_checks_leave_nothing_behind(db: AnyStore) -> None:
    await db.ping()
    assert "writable" in await db.check_writable()
    assert await db.fetch("SELECT * FROM settings WHERE key = 'doctor_write_probe'") == []


async def test_a_leased_reply_is_delivered_once_confirmed_and_again_once_released(
    db: AnyStore,
) -> None:
    conv = await db.claim_conversation("who")
    await db.record_agent_messages(conv.id, [message(0), message(1)], 1)
    first = await db.take_replies("who", "lease-1", time.time() + 60)
    assert [item.message.idx for item in first] == [0, 1] and all(i.leased for i in first)
    assert await db.take_replies("who", "lease-2", time.time() + 60) == []  # in flight
    await db.release_replies("lease-1", [first[1].message.message_sid])
    again = await db.take_replies("who", "lease-3", time.time() + 60)
    assert [item.message.idx for item in again] == [1]
    assert await db.confirm_replies("lease-1") == 1
    assert await db.confirm_replies("lease-3") == 1
    assert await db.take_replies("who", "lease-4", time.time() + 60) == []


async def test_a_lease_that_ran_out_hands_the_reply_out_again(db: AnyStore) -> None:
    conv = await db.claim_conversation("who")
    await db.record_agent_messages(conv.id, [message(0)], 0)
    await db.take_replies("who", "lost", time.time() - 1)  # the caller's process died
    again = await db.take_replies("who", "next", time.time() + 60)
    assert [item.message.idx for item in again] == [0]
    assert await db.confirm_replies("lost") == 0  # too late: it belongs to "next" now


async def test_after_returns_everything_following_a_reply_in_any_state(db: AnyStore) -> None:
    first = await db.claim_conversation("who")
    await db.mark_open(first.id, "CH1")
    await db.record_agent_messages(first.id, [message(0), message(1)], 1)
    await db.mark_closed(first.id, "agent")
    second = await db.claim_conversation("who")
    await db.record_agent_messages(second.id, [message(2), message(3)], 3)
    assert len(await take(db, "who")) == 4  # all delivered
    repeated = await db.take_replies("who", "l", time.time() + 60, after=message(1).message_sid)
    assert [(item.message.idx, item.leased) for item in repeated] == [(2, False), (3, False)]
    # Another user's reply id is not a position in this user's replies.
    other = await db.claim_conversation("other")
    await db.record_agent_messages(other.id, [message(9)], 9)
    assert await db.take_replies("who", "m", time.time() + 60, after=message(9).message_sid) == []


async def test_who_closed_survives_the_column_rebuild(tmp_path: Path) -> None:
    """Migration 0009 rebuilds closed_by to allow 'timeout'; what was there stays."""
    path = tmp_path / "before-0009.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for script in sorted(MIGRATIONS.glob("000[1-8]_*.sql")):
            old.executescript(script.read_text())
        old.executemany(
            "INSERT INTO schema_migrations VALUES (?, 'then')", [(n,) for n in range(1, 9)]
        )
        old.execute(
            "INSERT INTO conversations (id, identity, generation, state, synced_index, created_at,"
            " closed_by) VALUES (1, 'who', 1, 'closed', 0, 'then', 'user')"
        )
    db = await open_sqlite_store(path)
    try:
        assert (await db.conversation_by_id(1)).closed_by == "user"
        second = await db.claim_conversation("who")
        assert await db.mark_closed(second.id, "timeout")
        assert (await db.conversation_by_id(second.id)).closed_by == "timeout"
    finally:
        await db.close()


async def test_progress_only_moves_forward_and_an_agent_can_be_renamed(db: AnyStore) -> None:
    row = await db.claim_conversation("ida")
    assert row.progress is None  # not routed yet
    await db.mark_open(row.id, "CH" + "5" * 32)
    assert (await db.conversation_by_id(row.id)).progress == "queued"
    assert await db.set_progress(row.id, "with_agent", "Alex")
    assert not await db.set_progress(row.id, "queued")  # a late, earlier step
    assert not await db.set_progress(row.id, "with_agent")  # nothing new
    assert not await db.set_progress(row.id, "with_agent", "Alex")
    assert await db.set_progress(row.id, "with_agent", "Sam")  # a transfer
    assert await db.set_progress(row.id, "wrapping_up")
    now = await db.conversation_by_id(row.id)
    assert (now.progress, now.agent_name) == ("wrapping_up", "Sam")
    await db.mark_closed(row.id, "agent")
    assert not await db.set_progress(row.id, "with_agent", "Kim")  # closed stays closed
    assert (await db.conversation_by_id(row.id)).agent_name == "Sam"


async def test_postgres_processes_starting_together_migrate_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(open_postgres_store(postgres_url) for _ in range(4)))
    try:
        rows = await stores[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        numbers = sorted(int(p.name.split("_")[0]) for p in PG_MIGRATIONS.glob("*.sql"))
        assert [row[0] for row in rows] == numbers  # each applied once
        assert await stores[1].migrate() == []
    finally:
        for store in stores:
            await store.close()


async def test_postgres_unreachable_says_where_without_the_password() -> None:
    url = "postgresql://bridge:s3cret-pass@127.0.0.1:9/bridge"
    with pytest.raises(StoreUnavailable) as raised:
        await open_postgres_store(url, connect_seconds=1)
    said = f"{raised.value.detail} {raised.value.hint}"
    assert "127.0.0.1:9/bridge" in said
    assert "s3cret-pass" not in said
