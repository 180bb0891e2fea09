"""The hand-off: find or open a user's conversation, post, and wait a bounded time for replies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from bridge import store
from bridge.conversations import (
    ConversationClosed,
    ConversationNotFound,
    ConversationsClient,
    ParticipantExists,
    TwilioUnavailable,
    UniqueNameTaken,
)
from bridge.message_parts import split_message
from bridge.waiting import Notifier, Poller

log = logging.getLogger(__name__)

Status = Literal["answered", "waiting", "closed"]

NOTES: dict[str, str] = {
    "answered": "A human agent replied: show the replies to the user as they are. Send the "
    "user's next message with sendMessage.",
    "waiting": "The message reached the support team but no agent has replied yet. Tell the user "
    "a human will answer, then call getReplies for this user to fetch the answer.",
    "closed": "The agent ended this conversation; show any replies. If the user writes again, "
    "sendMessage starts a new conversation.",
    "none": "There is no conversation with a human for this user yet; call sendMessage when the "
    "user asks for one.",
}


@dataclass(frozen=True)
class Reply:
    id: str
    body: str
    sent_at: str


@dataclass(frozen=True)
class HandoffResult:
    status: Status
    replies: list[Reply]
    note: str

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "replies": [{"id": r.id, "body": r.body, "sent_at": r.sent_at} for r in self.replies],
            "note": self.note,
        }


def _replies(messages: list[store.AgentMessage]) -> list[Reply]:
    return [Reply(id=m.message_sid, body=m.body, sent_at=m.sent_at) for m in messages]


def unique_name(identity: str, generation: int) -> str:
    """Deterministic per attempt, so a retried create cannot make a second conversation."""
    return f"flexbridge-{identity}-{generation}"


class HandoffService:
    def __init__(
        self,
        db: aiosqlite.Connection,
        twilio: ConversationsClient,
        *,
        flow_sid: str,
        reply_wait_seconds: float,
        poll_interval_seconds: float,
    ) -> None:
        self._db = db
        self._twilio = twilio
        self._flow_sid = flow_sid
        self.reply_wait_seconds = reply_wait_seconds
        self._notifier = Notifier()
        self._poller = Poller(self.sync, poll_interval_seconds)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._closing = asyncio.Event()

    async def close(self) -> None:
        """Wake every waiter (they answer ``waiting``) and stop polling."""
        self._closing.set()
        await self._poller.close()

    def _lock(self, identity: str) -> asyncio.Lock:
        lock = self._locks.get(identity)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[identity] = lock
        return lock

    # --- the three operations -------------------------------------------------------------

    async def send(self, identity: str, text: str, context: str | None = None) -> HandoffResult:
        """Post the user's message (opening a conversation if needed) and wait for replies."""
        earlier: list[Reply] = []
        async with self._lock(identity):
            row, opened = await self._current_conversation(identity)
            try:
                await self._post(row, identity, text, context if opened else None)
            except (ConversationClosed, ConversationNotFound) as exc:
                log.info("conversation %s is gone (%s); opening a new one", row.sid, exc.code)
                earlier = await self._finish(row, sync=isinstance(exc, ConversationClosed))
                row, opened = await self._current_conversation(identity)
                await self._post(row, identity, text, context if opened else None)
        result = await self._collect(row, self.reply_wait_seconds)
        if earlier:
            status: Status = "answered" if result.status == "waiting" else result.status
            return HandoffResult(status, earlier + result.replies, NOTES[status])
        return result

    async def replies(self, identity: str, wait: float) -> HandoffResult:
        row = await store.latest_conversation(self._db, identity)
        if row is None or row.sid is None:
            return HandoffResult("closed", [], NOTES["none"])
        if row.state == "open":
            # Look now rather than at the poller's next tick, so wait=0 still sees replies.
            with contextlib.suppress(TwilioUnavailable):
                await self.sync(row.id)
        return await self._collect(row, min(wait, self.reply_wait_seconds))

    async def end(self, identity: str) -> HandoffResult:
        """Close the user's conversation in Twilio (Flex sees it) and hand out last replies."""
        async with self._lock(identity):
            row = await store.latest_conversation(self._db, identity)
            if row is None or row.sid is None:
                return HandoffResult("closed", [], NOTES["none"])
            if row.state != "closed":
                with contextlib.suppress(ConversationClosed, ConversationNotFound):
                    await self._twilio.close_conversation(row.sid)
            replies = await self._finish(row, sync=True)
        return HandoffResult("closed", replies, NOTES["closed"])

    # --- conversations --------------------------------------------------------------------

    async def _current_conversation(self, identity: str) -> tuple[store.ConversationRow, bool]:
        """The open conversation for ``identity``; True if it was opened by this call."""
        while True:
            row = await store.claim_conversation(self._db, identity)
            if row.state == "open":
                return row, False
            name = unique_name(identity, row.generation)
            try:
                info = await self._twilio.create_conversation(
                    unique_name=name,
                    friendly_name=f"Assistant user {identity[:8]}",
                    attributes=json.dumps({"source": "flex-bridge", "user": identity[:12]}),
                )
                fresh = True
            except UniqueNameTaken:
                # An earlier attempt created it and then failed: finish what it started.
                info = await self._twilio.fetch_conversation(name)
                fresh = False
            await store.set_sid(self._db, row.id, info.sid)
            if info.state == "closed":
                await store.mark_closed(self._db, row.id)
                continue
            await self._attach(info.sid, identity, fresh)
            await store.mark_open(self._db, row.id, info.sid)
            return await store.conversation_by_id(self._db, row.id), True

    async def _attach(self, sid: str, identity: str, fresh: bool) -> None:
        """Add the user as participant and the Studio webhook (skipping what exists)."""
        if fresh or identity not in await self._twilio.participant_identities(sid):
            with contextlib.suppress(ParticipantExists):
                await self._twilio.add_participant(sid, identity)
        if fresh or "studio" not in await self._twilio.webhook_targets(sid):
            await self._twilio.add_studio_webhook(sid, self._flow_sid)

    async def _post(
        self, row: store.ConversationRow, identity: str, text: str, context: str | None
    ) -> None:
        assert row.sid is not None
        if context:
            await self._twilio.post_message(
                row.sid,
                identity,
                f"Context from the assistant: {context}",
                json.dumps({"flex_bridge": {"kind": "context"}}),
            )
        parts = split_message(text)
        for number, part in enumerate(parts, start=1):
            attributes = (
                {"flex_bridge": {"part": number, "parts": len(parts)}} if len(parts) > 1 else {}
            )
            await self._twilio.post_message(row.sid, identity, part, json.dumps(attributes))

    async def _finish(self, row: store.ConversationRow, *, sync: bool) -> list[Reply]:
        """Mark a conversation closed, reading its last messages first when possible."""
        if sync and row.sid:
            with contextlib.suppress(ConversationNotFound):
                await self._store_new_messages(row)
        await store.mark_closed(self._db, row.id)
        self._notifier.notify(row.id)
        return _replies(await store.take_undelivered(self._db, row.id))

    # --- replies --------------------------------------------------------------------------

    async def sync(self, conversation_id: int) -> None:
        """Read new messages and the state of one conversation from Twilio (the poll)."""
        row = await store.conversation_by_id(self._db, conversation_id)
        if row.sid is None or row.state == "closed":
            return
        try:
            added = await self._store_new_messages(row)
            info = await self._twilio.fetch_conversation(row.sid)
        except ConversationNotFound:
            await self._finish(row, sync=False)
            return
        if info.state == "closed":
            await store.mark_closed(self._db, row.id)
            added = True
        if added:
            self._notifier.notify(row.id)

    async def _store_new_messages(self, row: store.ConversationRow) -> bool:
        assert row.sid is not None
        messages = await self._twilio.messages_after(row.sid, row.synced_index)
        if not messages:
            return False
        agent = [
            store.AgentMessage(m.sid, m.index, m.author, m.body, m.date_created)
            for m in messages
            if m.author not in (row.identity, "system")
        ]
        added = await store.record_agent_messages(self._db, row.id, agent, messages[-1].index)
        return added > 0

    async def _collect(self, row: store.ConversationRow, wait: float) -> HandoffResult:
        """Hand out undelivered replies, waiting up to ``wait`` seconds for the first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with self._poller.watching(row.id):
            while True:
                woken = self._notifier.event(row.id)
                replies = _replies(await store.take_undelivered(self._db, row.id))
                current = await store.conversation_by_id(self._db, row.id)
                if current.state == "closed":
                    return HandoffResult("closed", replies, NOTES["closed"])
                if replies:
                    return HandoffResult("answered", replies, NOTES["answered"])
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing.is_set():
                    return HandoffResult("waiting", [], NOTES["waiting"])
                closing = asyncio.ensure_future(self._closing.wait())
                waking = asyncio.ensure_future(woken.wait())
                try:
                    await asyncio.wait(
                        {closing, waking}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    closing.cancel()
                    waking.cancel()
