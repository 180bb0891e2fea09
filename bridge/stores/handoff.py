"""The hand-off's tables: settings, conversations, agent messages, the outbox (the SQL
both backends speak)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from bridge.store import (
    NOTHING_SEEN,
    PROGRESS_ORDER,
    AgentMessage,
    ClosedBy,
    ConversationRow,
    LeasedReply,
    OperationalCounts,
    OutboxRow,
    Progress,
    WaitingChoice,
)
from bridge.stores.base import Database, Row, fields, now_text, placeholders


def _conversation(row: Row) -> ConversationRow:
    return ConversationRow(**fields(row))


#: The user's messages of a conversation (its id, identity, created_at): posted to it,
#: still pending (bound for it), or refused since it began.
_OF_CONVERSATION = (
    "(conversation_id = ? OR (identity = ? AND conversation_id IS NULL"
    " AND (state = 'pending' OR created_at >= ?)))"
)


def _agent_message(row: Row) -> AgentMessage:
    return AgentMessage(row["message_sid"], row["idx"], row["author"], row["body"], row["sent_at"])


def _outbox(row: Row) -> OutboxRow:
    return OutboxRow(**fields(row))


class HandoffTables(Database):
    # --- settings -----------------------------------------------------------------------

    async def get_or_create_setting(self, key: str, value: str) -> str:
        await self.fetch(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, value)
        )
        row = await self.fetch_one("SELECT value FROM settings WHERE key = ?", (key,))
        assert row is not None
        return str(row[0])

    async def operational_counts(self) -> OperationalCounts:
        row = await self.fetch_one(
            "SELECT (SELECT COUNT(*) FROM conversations WHERE state = 'open'),"
            " (SELECT COUNT(*) FROM outbox WHERE state = 'pending')"
        )
        assert row is not None
        return OperationalCounts(int(row[0]), int(row[1]))

    # --- conversations ------------------------------------------------------------------

    async def latest_conversation(self, identity: str) -> ConversationRow | None:
        row = await self.fetch_one(
            "SELECT * FROM conversations WHERE identity = ? ORDER BY generation DESC LIMIT 1",
            (identity,),
        )
        return _conversation(row) if row else None

    async def conversation_by_id(self, conversation_id: int) -> ConversationRow:
        row = await self.fetch_one("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if row is None:
            raise LookupError(conversation_id)
        return _conversation(row)

    async def conversation_by_sid(self, sid: str) -> ConversationRow | None:
        row = await self.fetch_one("SELECT * FROM conversations WHERE sid = ?", (sid,))
        return _conversation(row) if row else None

    async def claim_conversation(self, identity: str) -> ConversationRow:
        # The partial unique index (one not closed per identity) lets exactly one of any
        # number of simultaneous inserts through; the others read its row.
        while True:
            await self.fetch(
                "INSERT INTO conversations (identity, generation, state, created_at) "
                "SELECT ?, COALESCE(MAX(generation), 0) + 1, 'opening', ? "
                "FROM conversations WHERE identity = ? ON CONFLICT DO NOTHING",
                (identity, now_text(), identity),
            )
            row = await self.fetch_one(
                "SELECT * FROM conversations WHERE identity = ? AND state != 'closed'",
                (identity,),
            )
            if row is not None:
                return _conversation(row)
            # The one that blocked the insert was closed in between: claim again.

    async def set_sid(self, conversation_id: int, sid: str) -> None:
        await self.fetch("UPDATE conversations SET sid = ? WHERE id = ?", (sid, conversation_id))

    async def mark_open(self, conversation_id: int, sid: str) -> None:
        await self.fetch(
            "UPDATE conversations SET sid = ?, state = 'open',"
            " progress = COALESCE(progress, 'queued') WHERE id = ? AND state != 'closed'",
            (sid, conversation_id),
        )

    async def mark_closing(self, conversation_id: int, by: ClosedBy | None) -> None:
        await self.fetch(
            "UPDATE conversations SET closed_by = ? WHERE id = ? AND state != 'closed'",
            (by, conversation_id),
        )

    async def mark_closed(self, conversation_id: int, by: ClosedBy) -> bool:
        closed = await self.fetch(
            "UPDATE conversations SET state = 'closed', closed_at = ?,"
            " closed_by = COALESCE(closed_by, ?)"
            " WHERE id = ? AND state != 'closed' RETURNING id",
            (now_text(), by, conversation_id),
        )
        return bool(closed)

    async def set_progress(
        self, conversation_id: int, progress: Progress, agent_name: str | None = None
    ) -> bool:
        while True:  # compare and set: the rule (forward only) is decided here, once
            row = await self.conversation_by_id(conversation_id)
            if row.state == "closed":
                return False
            now = PROGRESS_ORDER[row.progress] if row.progress else 0
            forward = PROGRESS_ORDER[progress] > now
            renamed = progress == row.progress and agent_name not in (None, row.agent_name)
            if not (forward or renamed):
                return False
            changed = await self.fetch(
                "UPDATE conversations SET progress = ?, agent_name = COALESCE(?, agent_name)"
                " WHERE id = ? AND state != 'closed' AND progress IS NOT DISTINCT FROM ?"
                " AND agent_name IS NOT DISTINCT FROM ?"
                " RETURNING id",
                (progress, agent_name, conversation_id, row.progress, row.agent_name),
            )
            if changed:
                return True

    async def set_task_sid(self, sid: str, task_sid: str) -> None:
        await self.fetch("UPDATE conversations SET task_sid = ? WHERE sid = ?", (task_sid, sid))

    async def set_choice(self, conversation_id: int, choice: WaitingChoice) -> bool:
        chosen = await self.fetch(
            "UPDATE conversations SET choice = ?, choice_at = ?"
            " WHERE id = ? AND state != 'closed' RETURNING id",
            (choice, now_text(), conversation_id),
        )
        return bool(chosen)

    async def open_conversations(self) -> list[ConversationRow]:
        rows = await self.fetch(
            "SELECT * FROM conversations WHERE state = 'open' AND sid IS NOT NULL"
        )
        return [_conversation(row) for row in rows]

    async def open_task_sids(self) -> list[str]:
        rows = await self.fetch(
            "SELECT task_sid FROM conversations WHERE state = 'open' AND task_sid IS NOT NULL"
        )
        return [row[0] for row in rows]

    async def conversations_with_gaps(self) -> list[int]:
        rows = await self.fetch(
            "SELECT DISTINCT c.id FROM conversations c JOIN agent_messages m"
            " ON m.conversation_id = c.id WHERE m.idx > c.synced_index"
        )
        return [int(row[0]) for row in rows]

    # --- agent messages -----------------------------------------------------------------

    async def record_agent_messages(
        self, conversation_id: int, messages: list[AgentMessage], synced_index: int | None = None
    ) -> int:
        # One statement for the batch, so it is stored whole or not at all; the sync mark
        # moves only afterwards. ON CONFLICT makes a repeat harmless.
        added = 0
        if messages:
            values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(messages))
            inserted = await self.fetch(
                "INSERT INTO agent_messages"  # noqa: S608 - only placeholders are formatted in
                " (message_sid, conversation_id, idx, author, body, sent_at)"
                f" VALUES {values} ON CONFLICT DO NOTHING RETURNING message_sid",
                [
                    value
                    for m in messages
                    for value in (
                        m.message_sid,
                        conversation_id,
                        m.idx,
                        m.author,
                        m.body,
                        m.sent_at,
                    )
                ],
            )
            added = len(inserted)
        if synced_index is not None:
            await self.fetch(
                "UPDATE conversations SET synced_index = ? WHERE id = ? AND synced_index < ?",
                (synced_index, conversation_id, synced_index),
            )
        return added

    async def advance_synced_index_from(
        self, conversation_id: int, expected: int, index: int
    ) -> bool:
        moved = await self.fetch(
            "UPDATE conversations SET synced_index = ? WHERE id = ? AND synced_index = ?"
            " RETURNING id",
            (index, conversation_id, expected),
        )
        return bool(moved)

    async def take_replies(
        self, identity: str, lease: str, until: float, after: str | None = None
    ) -> list[LeasedReply]:
        now = time.time()
        seen = await self._position(identity, after) if after is not None else None
        if seen is not None and after != NOTHING_SEEN:
            # The caller saw that reply: it, and every one before it, reached them.
            await self.fetch(
                "UPDATE agent_messages SET delivered_at = ?, lease = NULL, leased_until = NULL"
                " WHERE delivered_at IS NULL AND (conversation_id, idx) <= (?, ?)"
                " AND conversation_id IN (SELECT id FROM conversations WHERE identity = ?)",
                (now_text(), *seen, identity),
            )
        # One statement, so of any number of concurrent callers exactly one leases each.
        taken = await self.fetch(
            "UPDATE agent_messages SET lease = ?, leased_until = ?"
            " WHERE delivered_at IS NULL AND (lease IS NULL OR leased_until < ?)"
            " AND conversation_id IN (SELECT id FROM conversations WHERE identity = ?)"
            " AND idx <= (SELECT c.synced_index FROM conversations c"
            "             WHERE c.id = agent_messages.conversation_id)"
            " RETURNING conversation_id, message_sid, idx, author, body, sent_at, shown_at",
            (lease, until, now, identity),
        )
        found = {row["message_sid"]: (row, True) for row in taken}
        if seen is not None:
            # Everything after what the caller last saw, in whatever state.
            for row in await self.fetch(
                "SELECT m.conversation_id, m.message_sid, m.idx, m.author, m.body, m.sent_at,"
                " m.shown_at FROM agent_messages m JOIN conversations c"
                " ON c.id = m.conversation_id"
                " WHERE c.identity = ? AND m.idx <= c.synced_index"
                " AND (m.conversation_id, m.idx) > (?, ?)",
                (identity, *seen),
            ):
                found.setdefault(row["message_sid"], (row, False))
        # Conversation ids grow with each new conversation, and RETURNING has no order.
        ordered = sorted(found.values(), key=lambda item: (item[0][0], item[0]["idx"]))
        return [
            LeasedReply(_agent_message(row), leased, row["shown_at"] is not None)
            for row, leased in ordered
        ]

    async def conversation_replies(self, conversation_id: int, newest: int) -> list[AgentMessage]:
        rows = await self.fetch(
            "SELECT m.* FROM agent_messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.id = ? AND m.idx <= c.synced_index ORDER BY m.idx DESC LIMIT ?",
            (conversation_id, newest),
        )
        return [_agent_message(row) for row in reversed(rows)]

    async def mark_shown(self, conversation_id: int, message_sid: str) -> bool:
        through = await self.fetch_one(
            "SELECT m.idx FROM agent_messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.id = ? AND m.message_sid = ? AND m.idx <= c.synced_index",
            (conversation_id, message_sid),
        )
        if through is None:
            return False
        await self.fetch(
            "UPDATE agent_messages SET shown_at = ?"
            " WHERE conversation_id = ? AND idx <= ? AND shown_at IS NULL",
            (now_text(), conversation_id, through[0]),
        )
        return True

    async def _position(self, identity: str, after: str) -> tuple[int, int] | None:
        """Where ``after`` stands among the identity's replies: (conversation, index);
        NOTHING_SEEN is just before the latest conversation; None when not theirs."""
        if after == NOTHING_SEEN:
            row = await self.fetch_one(
                "SELECT MAX(id), -1 FROM conversations WHERE identity = ?", (identity,)
            )
        else:
            row = await self.fetch_one(
                "SELECT m.conversation_id, m.idx FROM agent_messages m"
                " JOIN conversations c ON c.id = m.conversation_id"
                " WHERE m.message_sid = ? AND c.identity = ?",
                (after, identity),
            )
        return (int(row[0]), int(row[1])) if row is not None and row[0] is not None else None

    async def confirm_replies(self, lease: str) -> int:
        confirmed = await self.fetch(
            "UPDATE agent_messages SET delivered_at = ?, lease = NULL, leased_until = NULL"
            " WHERE lease = ? AND delivered_at IS NULL RETURNING message_sid",
            (now_text(), lease),
        )
        return len(confirmed)

    async def release_replies(self, lease: str, message_sids: Sequence[str] | None = None) -> None:
        release = "UPDATE agent_messages SET lease = NULL, leased_until = NULL WHERE lease = ?"
        if message_sids is None:
            await self.fetch(release, (lease,))
        elif message_sids:
            await self.fetch(
                f"{release} AND message_sid IN ({placeholders(len(message_sids))})",
                (lease, *message_sids),
            )

    # --- the outbox ---------------------------------------------------------------------

    async def enqueue_message(
        self, identity: str, body: str, context: str | None, profile: str | None = None
    ) -> OutboxRow:
        row = await self.fetch_one(
            "INSERT INTO outbox"
            " (identity, body, context, idempotency_key, state, created_at, profile)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?) RETURNING *",
            (identity, body, context, secrets.token_hex(12), now_text(), profile),
        )
        assert row is not None
        return _outbox(row)

    async def outbox_row(self, row_id: int) -> OutboxRow:
        row = await self.fetch_one("SELECT * FROM outbox WHERE id = ?", (row_id,))
        if row is None:
            raise LookupError(row_id)
        return _outbox(row)

    async def conversation_messages(
        self, conversation: ConversationRow, newest: int
    ) -> list[OutboxRow]:
        rows = await self.fetch(
            f"SELECT * FROM outbox WHERE {_OF_CONVERSATION} ORDER BY id DESC LIMIT ?",  # noqa: S608
            (conversation.id, conversation.identity, conversation.created_at, newest),
        )
        return [_outbox(row) for row in reversed(rows)]

    async def conversation_size(self, conversation: ConversationRow) -> int:
        row = await self.fetch_one(
            f"SELECT (SELECT COUNT(*) FROM outbox WHERE {_OF_CONVERSATION})"  # noqa: S608
            " + (SELECT COUNT(*) FROM agent_messages m JOIN conversations c"
            "    ON c.id = m.conversation_id WHERE c.id = ? AND m.idx <= c.synced_index)",
            (conversation.id, conversation.identity, conversation.created_at, conversation.id),
        )
        return int(row[0]) if row is not None else 0

    async def pending_messages(self, identity: str | None = None) -> list[OutboxRow]:
        if identity is None:
            rows = await self.fetch("SELECT * FROM outbox WHERE state = 'pending' ORDER BY id")
        else:
            rows = await self.fetch(
                "SELECT * FROM outbox WHERE state = 'pending' AND identity = ? ORDER BY id",
                (identity,),
            )
        return [_outbox(row) for row in rows]

    async def begin_attempt(self, row_id: int) -> int:
        row = await self.fetch_one(
            "UPDATE outbox SET attempts = attempts + 1 WHERE id = ? RETURNING attempts",
            (row_id,),
        )
        if row is None:
            raise LookupError(row_id)
        return int(row[0]) - 1

    async def mark_sent(
        self, row_id: int, conversation_id: int, posted_index: int | None = None
    ) -> None:
        await self.fetch(
            "UPDATE outbox SET state = 'sent', sent_at = ?, conversation_id = ?,"
            " posted_index = ? WHERE id = ?",
            (now_text(), conversation_id, posted_index, row_id),
        )

    async def mark_attempt_failed(
        self, row_id: int, next_attempt_at: float, error: str, *, final: bool
    ) -> None:
        await self.fetch(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, "
            "state = CASE WHEN ? THEN 'failed' ELSE state END WHERE id = ?",
            (next_attempt_at, error, final, row_id),
        )
