"""The hand-off: send the user's message, wait a bounded time, hand out agent replies once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from bridge import logs, store
from bridge.bounded import run_bounded
from bridge.conversations import (
    ConversationClosed,
    ConversationNotFound,
    ConversationsClient,
    TwilioUnavailable,
)
from bridge.inbox import Inbox
from bridge.metrics import Metrics
from bridge.outbox import Outbox
from bridge.waiting import IdentityLocks, Notifier, Poller

log = logging.getLogger(__name__)

Status = Literal["answered", "waiting", "closed"]

#: However short the reply wait, posting the message to Twilio may take this long.
MIN_POST_SECONDS = 2.0

NOTES: dict[str, str] = {
    "answered": "A human agent replied: show the replies to the user as they are. Send the "
    "user's next message with sendMessage.",
    "waiting": "The message reached the support team but no agent has replied yet. Tell the user "
    "a human will answer, then call getReplies for this user to fetch the answer.",
    "queued": "The message is saved and will be delivered to the support team as soon as the "
    "messaging service recovers; do not send it again. Call getReplies later for the answer.",
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


class HandoffService:
    """Wires the outbox (user → Twilio), the inbox (Twilio → store) and the waiters."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        twilio: ConversationsClient,
        *,
        flow_sid: str,
        reply_wait_seconds: float,
        webhook_url: str | None,
        poll_interval_seconds: float,
        reconcile_interval_seconds: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics or Metrics()
        self._twilio = twilio
        self.reply_wait_seconds = reply_wait_seconds
        self._notifier = Notifier()
        self._locks = IdentityLocks()
        self.inbox = Inbox(db, twilio, self._notifier, self._metrics)
        self.outbox = Outbox(
            db,
            twilio,
            self.inbox,
            self._locks,
            flow_sid=flow_sid,
            webhook_url=webhook_url,
            metrics=self._metrics,
        )
        # Without webhooks, conversations someone waits on are polled; with them, only
        # reconciled now and then in case a webhook went missing.
        self._poller = None if webhook_url else Poller(self.inbox.sync, poll_interval_seconds)
        self._reconcile_interval = reconcile_interval_seconds
        self._waited_on: Counter[int] = Counter()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def push(self) -> bool:
        return self._poller is None

    async def start(self) -> None:
        self.outbox.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._reconcile_at_start()))
        if self.push:
            self._tasks.append(loop.create_task(self._reconcile_periodically()))

    def begin_shutdown(self) -> None:
        """Wake every waiter: each answers ``waiting`` with what it has."""
        self._closing = True
        self._notifier.notify_all()

    async def close(self) -> None:
        """Wake every waiter (they answer ``waiting``), finish the post in progress, stop."""
        self.begin_shutdown()
        await self.outbox.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._poller is not None:
            await self._poller.close()
        await self.inbox.close()

    # --- the three operations -------------------------------------------------------------

    async def send(
        self,
        identity: str,
        text: str,
        context: str | None,
        *,
        profile: str | None = None,
        budget_seconds: float = 10.0,
        wait_seconds: float | None = None,
    ) -> HandoffResult:
        """Store and post the user's message (opening a conversation if needed), then wait.

        ``profile`` (verified name and email, JSON) is shown to the agent when the
        message opens a conversation. The whole call, posting included, takes about
        REPLY_WAIT_SECONDS (or ``wait_seconds`` when that is shorter); posting gets at least
        MIN_POST_SECONDS of it, however short the wait, so a healthy Twilio is not
        mistaken for a slow one.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        wait = self.reply_wait_seconds
        if wait_seconds is not None:
            wait = min(wait_seconds, wait)
        budget = max(MIN_POST_SECONDS, min(budget_seconds, wait))
        row = await self.outbox.submit(identity, text, context, budget, profile=profile)
        if row.state == "pending":
            replies = _replies(await store.take_undelivered_for(self._db, identity))
            return HandoffResult("answered" if replies else "waiting", replies, NOTES["queued"])
        return await self._collect(identity, max(0.0, wait - (loop.time() - started)))

    async def replies(self, identity: str, wait: float) -> HandoffResult:
        if not self.push:
            latest = await store.latest_conversation(self._db, identity)
            if latest is not None and latest.state == "open":
                # Look now rather than at the poller's next tick, so wait=0 sees replies.
                with contextlib.suppress(TwilioUnavailable):
                    await self.inbox.sync(latest.id)
        return await self._collect(identity, min(wait, self.reply_wait_seconds))

    async def end(self, identity: str) -> HandoffResult:
        """Close the user's conversation in Twilio (Flex sees it) and hand out last replies."""
        async with self._locks(identity):
            latest = await store.latest_conversation(self._db, identity)
            if latest is None:
                return HandoffResult("closed", [], NOTES["none"])
            if latest.state != "closed" and latest.sid is not None:
                with contextlib.suppress(ConversationClosed, ConversationNotFound):
                    await self._twilio.close_conversation(latest.sid)
                await self.inbox.finish(latest, read_last=True)
            elif latest.state != "closed":
                await store.mark_closed(self._db, latest.id)
        replies = _replies(await store.take_undelivered_for(self._db, identity))
        return HandoffResult("closed", replies, NOTES["closed"])

    # --- waiting --------------------------------------------------------------------------

    async def _collect(self, identity: str, wait: float) -> HandoffResult:
        """Hand out undelivered replies, waiting up to ``wait`` seconds for the first.

        Two trips to the database per look (take the replies, read the conversation's
        state); while waiting, nothing but one event per identity and a timer.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await self._look_and_wait(identity, started + wait)
        self._metrics.wait_seconds.labels(result.status).observe(loop.time() - started)
        if result.replies:
            self._metrics.replies_delivered.inc(len(result.replies))
        logs.event(log, "replies.handed_out", status=result.status, replies=len(result.replies))
        return result

    async def _look_and_wait(self, identity: str, deadline: float) -> HandoffResult:
        loop = asyncio.get_running_loop()
        watched: int | None = None
        try:
            while True:
                woken = self._notifier.event(identity)
                replies = _replies(await store.take_undelivered_for(self._db, identity))
                latest = await store.latest_conversation(self._db, identity)
                if latest is None:
                    return HandoffResult("closed", replies, NOTES["none"])
                if latest.sid:
                    logs.conversation_sid.set(latest.sid)
                if latest.state == "closed":
                    return HandoffResult("closed", replies, NOTES["closed"])
                if replies:
                    return HandoffResult("answered", replies, NOTES["answered"])
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    queued = await store.pending_messages(self._db, identity)
                    return HandoffResult("waiting", [], NOTES["queued" if queued else "waiting"])
                if watched != latest.id:
                    if watched is not None:
                        self._unwatch(watched)
                    watched = latest.id
                    self._watch(watched)
                with (
                    self._metrics.waiting_requests.track_inprogress(),
                    contextlib.suppress(TimeoutError),
                ):
                    async with asyncio.timeout(remaining):
                        await woken.wait()
        finally:
            if watched is not None:
                self._unwatch(watched)

    def _watch(self, conversation_id: int) -> None:
        self._waited_on[conversation_id] += 1
        if self._poller is not None:
            self._poller.watch(conversation_id)

    def _unwatch(self, conversation_id: int) -> None:
        self._waited_on[conversation_id] -= 1
        if self._waited_on[conversation_id] <= 0:
            del self._waited_on[conversation_id]
        if self._poller is not None:
            self._poller.unwatch(conversation_id)

    # --- reconciling ----------------------------------------------------------------------

    async def _reconcile_at_start(self) -> None:
        """Catch up on whatever arrived while the bridge was down."""
        for attempt in range(1, 31):
            try:
                # Several at once: the inbox caps the Twilio reads in flight.
                rows = await store.open_conversations(self._db)
                await run_bounded([row.id for row in rows], self.inbox.reconcile, limit=16)
                return
            except TwilioUnavailable:
                # Also the normal case for the embedded sandbox, which starts listening
                # only after start-up completes.
                await asyncio.sleep(min(2.0 * attempt, 10.0))

    async def _reconcile_periodically(self) -> None:
        """Now and then, read the conversations someone waits on (in case a webhook went
        missing) and any holding replies behind a gap."""
        while True:
            await asyncio.sleep(self._reconcile_interval)
            gaps = await store.conversations_with_gaps(self._db)
            for conversation_id in {*self._waited_on, *gaps}:
                self.inbox.schedule_reconcile(conversation_id)
