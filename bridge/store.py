"""SQLite persistence: small typed functions that take a connection and return dataclasses.

The connection runs in autocommit mode; every multi-row change is either one statement or
an explicit transaction. A reply is handed out by one ``UPDATE ... RETURNING`` that marks
it delivered, so two requests never hand out the same reply.

Every statement goes through :func:`fetch`: one trip to aiosqlite's thread, and the
sqlite3 cursor is created and dropped in that thread. A cursor left to die in the event
loop's thread resets its statement there, and SQLite answers "bad parameter or other API
misuse" to whichever query the database thread is running with that statement.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

ConversationState = str  # 'opening' | 'open' | 'closed'


@dataclass(frozen=True)
class ConversationRow:
    id: int
    identity: str
    generation: int
    sid: str | None
    state: ConversationState
    synced_index: int
    created_at: str
    closed_at: str | None


@dataclass(frozen=True)
class AgentMessage:
    message_sid: str
    idx: int
    author: str
    body: str
    sent_at: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def fetch(db: aiosqlite.Connection, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Run one statement and return its rows (``RETURNING`` rows for a change)."""
    return list(await db.execute_fetchall(sql, tuple(args)))


async def fetch_one(
    db: aiosqlite.Connection, sql: str, args: Iterable[Any] = ()
) -> sqlite3.Row | None:
    rows = await fetch(db, sql, args)
    return rows[0] if rows else None


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bridge") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def open_database(path: Path) -> aiosqlite.Connection:
    """Open (creating if needed) the store, in WAL mode, with every migration applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "busy_timeout=5000",
        "synchronous=NORMAL",
    ):
        await fetch(db, f"PRAGMA {pragma}")
    await migrate(db)
    return db


async def migrate(db: aiosqlite.Connection) -> list[int]:
    """Apply numbered, forward-only migrations not yet applied; return their numbers."""
    await fetch(
        db,
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    done = {row[0] for row in await fetch(db, "SELECT version FROM schema_migrations")}
    applied = []
    for version, script in _migrations():
        if version in done:
            continue
        async with db.executescript(
            f"BEGIN IMMEDIATE;\n{script}\n"
            f"INSERT INTO schema_migrations VALUES ({version}, '{_now()}');\nCOMMIT;"
        ):
            pass
        applied.append(version)
    return applied


# --- settings -------------------------------------------------------------------------------


async def get_or_create_setting(db: aiosqlite.Connection, key: str, value: str) -> str:
    """The stored value for ``key``, storing ``value`` first if there is none."""
    await fetch(db, "INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
    row = await fetch_one(db, "SELECT value FROM settings WHERE key = ?", (key,))
    assert row is not None
    return str(row[0])


# --- conversations --------------------------------------------------------------------------


def _conversation(row: sqlite3.Row) -> ConversationRow:
    return ConversationRow(**dict(row))


async def latest_conversation(db: aiosqlite.Connection, identity: str) -> ConversationRow | None:
    """The identity's newest conversation, whatever its state."""
    row = await fetch_one(
        db,
        "SELECT * FROM conversations WHERE identity = ? ORDER BY generation DESC LIMIT 1",
        (identity,),
    )
    return _conversation(row) if row else None


async def conversation_by_id(db: aiosqlite.Connection, conversation_id: int) -> ConversationRow:
    row = await fetch_one(db, "SELECT * FROM conversations WHERE id = ?", (conversation_id,))
    if row is None:
        raise LookupError(conversation_id)
    return _conversation(row)


async def conversation_by_sid(db: aiosqlite.Connection, sid: str) -> ConversationRow | None:
    row = await fetch_one(db, "SELECT * FROM conversations WHERE sid = ?", (sid,))
    return _conversation(row) if row else None


async def claim_conversation(db: aiosqlite.Connection, identity: str) -> ConversationRow:
    """The identity's current (not closed) conversation, claiming a new generation if none.

    A new row starts in state ``opening``; the partial unique index guarantees that of any
    number of simultaneous claims, exactly one inserts and the rest see its row.
    """
    while True:
        with contextlib.suppress(sqlite3.IntegrityError):  # one not closed exists already
            await fetch(
                db,
                "INSERT INTO conversations (identity, generation, state, created_at) "
                "SELECT ?, COALESCE(MAX(generation), 0) + 1, 'opening', ? "
                "FROM conversations WHERE identity = ?",
                (identity, _now(), identity),
            )
        row = await fetch_one(
            db, "SELECT * FROM conversations WHERE identity = ? AND state != 'closed'", (identity,)
        )
        if row is not None:
            return _conversation(row)
        # The one that blocked the insert was closed in between: claim again.


async def mark_open(db: aiosqlite.Connection, conversation_id: int, sid: str) -> None:
    await fetch(
        db,
        "UPDATE conversations SET sid = ?, state = 'open' WHERE id = ? AND state != 'closed'",
        (sid, conversation_id),
    )


async def set_sid(db: aiosqlite.Connection, conversation_id: int, sid: str) -> None:
    await fetch(db, "UPDATE conversations SET sid = ? WHERE id = ?", (sid, conversation_id))


async def mark_closed(db: aiosqlite.Connection, conversation_id: int) -> bool:
    """Close the conversation; True if this call closed it."""
    closed = await fetch(
        db,
        "UPDATE conversations SET state = 'closed', closed_at = ? "
        "WHERE id = ? AND state != 'closed' RETURNING id",
        (_now(), conversation_id),
    )
    return bool(closed)


# --- agent messages -------------------------------------------------------------------------


async def record_agent_messages(
    db: aiosqlite.Connection,
    conversation_id: int,
    messages: list[AgentMessage],
    synced_index: int | None = None,
) -> int:
    """Store agent messages (each once, however often seen); return how many were new.

    With ``synced_index``, the sync mark then moves up to it (never down).
    """
    # One statement for the batch (rows from a JSON array), so it is stored whole or not
    # at all; the sync mark moves only afterwards. INSERT OR IGNORE makes a repeat harmless.
    added = 0
    if messages:
        rows = json.dumps([[m.message_sid, m.idx, m.author, m.body, m.sent_at] for m in messages])
        inserted = await fetch(
            db,
            "INSERT OR IGNORE INTO agent_messages"
            " (message_sid, conversation_id, idx, author, body, sent_at)"
            " SELECT value ->> 0, ?, value ->> 1, value ->> 2, value ->> 3, value ->> 4"
            " FROM json_each(?) RETURNING message_sid",
            (conversation_id, rows),
        )
        added = len(inserted)
    if synced_index is not None:
        await advance_synced_index(db, conversation_id, synced_index)
    return added


async def open_conversations(db: aiosqlite.Connection) -> list[ConversationRow]:
    rows = await fetch(db, "SELECT * FROM conversations WHERE state = 'open' AND sid IS NOT NULL")
    return [_conversation(row) for row in rows]


async def advance_synced_index(db: aiosqlite.Connection, conversation_id: int, index: int) -> None:
    await fetch(
        db,
        "UPDATE conversations SET synced_index = MAX(synced_index, ?) WHERE id = ?",
        (index, conversation_id),
    )


# --- the outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    id: int
    identity: str
    body: str
    context: str | None
    idempotency_key: str
    state: str  # 'pending' | 'sent' | 'failed'
    attempts: int
    next_attempt_at: float
    conversation_id: int | None
    created_at: str
    sent_at: str | None
    last_error: str | None
    profile: str | None


async def enqueue_message(
    db: aiosqlite.Connection,
    identity: str,
    body: str,
    context: str | None,
    profile: str | None = None,
) -> OutboxRow:
    """Store a user message before it is posted."""
    row = await fetch_one(
        db,
        "INSERT INTO outbox (identity, body, context, idempotency_key, state, created_at, profile)"
        " VALUES (?, ?, ?, ?, 'pending', ?, ?) RETURNING *",
        (identity, body, context, secrets.token_hex(12), _now(), profile),
    )
    assert row is not None
    return OutboxRow(**dict(row))


async def outbox_row(db: aiosqlite.Connection, row_id: int) -> OutboxRow:
    row = await fetch_one(db, "SELECT * FROM outbox WHERE id = ?", (row_id,))
    if row is None:
        raise LookupError(row_id)
    return OutboxRow(**dict(row))


async def pending_messages(
    db: aiosqlite.Connection, identity: str | None = None
) -> list[OutboxRow]:
    """Pending user messages, oldest first (of one identity, or of all)."""
    query = (
        "SELECT * FROM outbox WHERE state = 'pending' AND (? IS NULL OR identity = ?) ORDER BY id"
    )
    return [OutboxRow(**dict(row)) for row in await fetch(db, query, (identity, identity))]


async def mark_sent(db: aiosqlite.Connection, row_id: int, conversation_id: int) -> None:
    await fetch(
        db,
        "UPDATE outbox SET state = 'sent', sent_at = ?, conversation_id = ? WHERE id = ?",
        (_now(), conversation_id, row_id),
    )


async def mark_attempt_failed(
    db: aiosqlite.Connection, row_id: int, next_attempt_at: float, error: str, *, final: bool
) -> None:
    await fetch(
        db,
        "UPDATE outbox SET next_attempt_at = ?, last_error = ?, "
        "state = CASE WHEN ? THEN 'failed' ELSE state END WHERE id = ?",
        (next_attempt_at, error, final, row_id),
    )


@dataclass(frozen=True)
class OperationalCounts:
    open_conversations: int
    outbox_depth: int


async def operational_counts(db: aiosqlite.Connection) -> OperationalCounts:
    """What /metrics reports from the store: conversations open, user messages queued."""
    row = await fetch_one(
        db,
        "SELECT (SELECT COUNT(*) FROM conversations WHERE state = 'open'),"
        " (SELECT COUNT(*) FROM outbox WHERE state = 'pending')",
    )
    assert row is not None
    return OperationalCounts(int(row[0]), int(row[1]))


async def advance_synced_index_from(
    db: aiosqlite.Connection, conversation_id: int, expected: int, index: int
) -> bool:
    """Move the sync mark from ``expected`` to ``index``; False if it was not at ``expected``."""
    moved = await fetch(
        db,
        "UPDATE conversations SET synced_index = ? WHERE id = ? AND synced_index = ? RETURNING id",
        (index, conversation_id, expected),
    )
    return bool(moved)


async def conversations_with_gaps(db: aiosqlite.Connection) -> list[int]:
    """Conversations holding agent messages above the sync mark: some message below them
    has not been seen yet, so they cannot be handed out until a reconcile fills the gap."""
    rows = await fetch(
        db,
        "SELECT DISTINCT c.id FROM conversations c JOIN agent_messages m"
        " ON m.conversation_id = c.id WHERE m.idx > c.synced_index",
    )
    return [int(row[0]) for row in rows]


async def take_undelivered_for(db: aiosqlite.Connection, identity: str) -> list[AgentMessage]:
    """Every agent message not handed out to ``identity`` yet, across its conversations
    (an older, closed conversation's last replies first), marking them delivered.

    One statement, so of any number of concurrent callers exactly one gets each message.
    Only messages up to their conversation's sync mark qualify: every message below the
    mark is known, so no earlier reply can turn up after a later one was handed out.
    """
    rows = await fetch(
        db,
        "UPDATE agent_messages SET delivered_at = ?"
        " WHERE delivered_at IS NULL"
        " AND conversation_id IN (SELECT id FROM conversations WHERE identity = ?)"
        " AND idx <= (SELECT c.synced_index FROM conversations c"
        "             WHERE c.id = agent_messages.conversation_id)"
        " RETURNING conversation_id, message_sid, idx, author, body, sent_at",
        (_now(), identity),
    )
    # Conversation ids grow with each new conversation, and RETURNING has no order.
    rows.sort(key=lambda row: (row["conversation_id"], row["idx"]))
    return [
        AgentMessage(row["message_sid"], row["idx"], row["author"], row["body"], row["sent_at"])
        for row in rows
    ]


async def begin_attempt(db: aiosqlite.Connection, row_id: int) -> int:
    """Count a delivery attempt before it starts; return how many came before it."""
    row = await fetch_one(
        db, "UPDATE outbox SET attempts = attempts + 1 WHERE id = ? RETURNING attempts", (row_id,)
    )
    if row is None:
        raise LookupError(row_id)
    return int(row[0]) - 1
