"""User messages going out: stored first, then posted, retried until Twilio takes them.

Each message carries an idempotency key in its Attributes. A retry after an attempt that
may have reached Twilio (a timeout, a crash) first reads the conversation's recent
messages for that key and posts only the parts that are missing, so nothing is posted
twice and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from bridge import logs
from bridge.backoff import backoff
from bridge.conversations import (
    ConversationClosed,
    ConversationNotFound,
    TwilioConversations,
    TwilioError,
    TwilioRejected,
    TwilioUnavailable,
)
from bridge.coordination import Jobs, Locks, Wakeups
from bridge.core.inbox import Inbox
from bridge.core.opening import ConversationOpener
from bridge.message_parts import split_message
from bridge.metrics import Metrics
from bridge.store import ConversationRow, OutboxRow, Store
from bridge.tasks import run_bounded

log = logging.getLogger(__name__)

#: Retries while the caller waits: quick, a few times.
SUBMIT_BACKOFF = (0.25, 60.0)
#: Retries by the worker, per message: from a second up to a minute apart.
RETRY_BACKOFF = (1.0, 60.0)
#: Users whose queued messages the worker posts at the same time.
MAX_DRAINS_IN_FLIGHT = 8


def _key_of(attributes: str) -> tuple[str | None, int | None]:
    try:
        marker = json.loads(attributes).get("flex_bridge", {})
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(marker, dict):
        return None, None
    part = marker.get("part")
    return marker.get("key"), part if isinstance(part, int) else None


class Outbox:
    def __init__(
        self,
        store: Store,
        twilio: TwilioConversations,
        opener: ConversationOpener,
        inbox: Inbox,
        locks: Locks,
        jobs: Jobs,
        metrics: Metrics,
        wakeups: Wakeups,
    ) -> None:
        """``wakeups`` rings the user's waiters when one of their messages is stored,
        posted or refused (the live chat pane shows them)."""
        self._store = store
        self._wakeups = wakeups
        self._metrics = metrics
        self._twilio = twilio
        self._opener = opener
        self._inbox = inbox
        self._locks = locks
        self._jobs = jobs
        self._wake = asyncio.Event()
        self._stopping = False
        self._worker: asyncio.Task[None] | None = None

    # --- the caller's path ----------------------------------------------------------------

    async def submit(
        self,
        identity: str,
        body: str,
        context: str | None,
        budget_seconds: float,
        *,
        profile: str | None = None,
    ) -> OutboxRow:
        """Store the message, then try to post it (and any queued before it) for up to
        ``budget_seconds``. The returned row says whether it was sent or is still queued."""
        row = await self._store.enqueue_message(identity, body, context, profile)
        await self._wakeups.wake(identity)
        self._metrics.user_messages_received.inc()
        logs.event(log, "user_message.stored", outbox_id=row.id, body=body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await self.drain(identity)
            except TwilioUnavailable:
                pass
            except TimeoutError:
                logs.event(log, "user_message.queued", outbox_id=row.id, reason="slow")
            current = await self._store.outbox_row(row.id)
            if current.state == "failed":
                raise TwilioRejected("post_message", current.last_error or "refused")
            if current.state == "sent":
                return current
            pause = backoff(attempt, *SUBMIT_BACKOFF)
            if loop.time() + pause >= deadline or attempt >= 3:
                self._wake.set()  # the worker takes over from here
                return current
            await asyncio.sleep(pause)

    # --- delivery -------------------------------------------------------------------------

    async def drain(self, identity: str) -> None:
        """Post the identity's pending messages, oldest first, stopping at the first that
        Twilio cannot take now (TwilioUnavailable propagates)."""
        async with self._locks.hold(identity):
            for row in await self._store.pending_messages(identity):
                try:
                    await self._deliver(row)
                except TwilioUnavailable as exc:
                    retry = time.time() + backoff(row.attempts + 1, *RETRY_BACKOFF)
                    await self._store.mark_attempt_failed(row.id, retry, str(exc), final=False)
                    raise
                except TwilioRejected as exc:
                    logs.event(
                        log,
                        "user_message.refused",
                        logging.WARNING,
                        outbox_id=row.id,
                        status=exc.status,
                        twilio_error=exc.code,
                    )
                    await self._store.mark_attempt_failed(row.id, 0, str(exc), final=True)
                    await self._wakeups.wake(identity)

    async def _deliver(self, row: OutboxRow) -> None:
        earlier_attempts = await self._store.begin_attempt(row.id)
        conversation, opened = await self._opener.current(row.identity, row.profile, row.context)
        try:
            index = await self._post(
                conversation, row, opened, check=earlier_attempts > 0 and not opened
            )
        except (ConversationClosed, ConversationNotFound) as exc:
            logs.event(log, "conversation.gone", sid=conversation.sid, twilio_error=exc.code)
            closed = isinstance(exc, ConversationClosed)
            await self._inbox.finish(
                conversation, read_last=closed, closed_by="agent" if closed else "lost"
            )
            conversation, opened = await self._opener.current(
                row.identity, row.profile, row.context
            )
            index = await self._post(conversation, row, opened, check=False)
        await self._store.mark_sent(row.id, conversation.id, index)
        await self._wakeups.wake(row.identity)
        self._metrics.user_messages_posted.inc()
        logs.event(
            log,
            "user_message.posted",
            outbox_id=row.id,
            sid=conversation.sid,
            attempt=1 + earlier_attempts,
        )

    async def _post(
        self, conversation: ConversationRow, row: OutboxRow, opened: bool, check: bool
    ) -> int | None:
        """Post the row's parts not posted yet; the index of its first part (None when an
        earlier attempt posted it and it is no longer among the recent messages)."""
        assert conversation.sid is not None
        done: dict[int, int] = {}  # part → index
        first_message = opened
        if check:
            recent = await self._twilio.recent_messages(conversation.sid)
            for message in recent:
                key, part = _key_of(message.attributes)
                if key == row.idempotency_key and part is not None:
                    done[part] = message.index
            first_message = not any(m.author == row.identity for m in recent)
        posted: list[int] = list(done.values())
        if row.context and first_message and 0 not in done:
            context = await self._twilio.post_message(
                conversation.sid,
                row.identity,
                f"Context from the assistant: {row.context}",
                json.dumps(
                    {"flex_bridge": {"kind": "context", "key": row.idempotency_key, "part": 0}}
                ),
            )
            posted.append(context.index)
        parts = split_message(row.body)
        for number, text in enumerate(parts, start=1):
            if number in done:
                continue
            marker: dict[str, object] = {"key": row.idempotency_key, "part": number}
            if len(parts) > 1:
                marker["parts"] = len(parts)
            message = await self._twilio.post_message(
                conversation.sid, row.identity, text, json.dumps({"flex_bridge": marker})
            )
            posted.append(message.index)
        return min(posted) if posted else None

    # --- the worker -----------------------------------------------------------------------

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop after the message being posted (if any) is finished: nothing half-sent."""
        self._stopping = True
        self._wake.set()
        if self._worker is not None:
            try:
                await asyncio.wait_for(self._worker, grace_seconds)
            except TimeoutError:
                log.warning("outbox worker did not stop in %ss", grace_seconds)

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the pass: a wake-up during it (a message queued, or close())
            # makes the next pass start at once instead of a second later.
            self._wake.clear()
            try:
                await self._deliver_due()
            except Exception:
                log.exception("outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _deliver_due(self) -> None:
        async with self._jobs.exclusive("outbox") as mine:
            if not mine:
                return
            now = time.time()
            due: list[str] = []
            for row in await self._store.pending_messages():
                if row.next_attempt_at <= now and row.identity not in due:
                    due.append(row.identity)
            # Several users at once (each user's messages stay in order under their lock),
            # so a backlog after an outage clears in minutes, not one user at a time.
            await run_bounded(
                due, self._drain_quietly, MAX_DRAINS_IN_FLIGHT, stopping=lambda: self._stopping
            )

    async def _drain_quietly(self, identity: str) -> None:
        try:
            await self.drain(identity)
        except TwilioError:
            pass  # still pending; retried at its next attempt time
        except Exception:
            log.exception("outbox delivery failed")
