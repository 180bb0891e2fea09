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
import random
import time

import aiosqlite

from bridge import logs, store
from bridge.bounded import run_bounded
from bridge.conversations import (
    ConversationClosed,
    ConversationNotFound,
    ConversationsClient,
    ParticipantExists,
    TwilioError,
    TwilioRejected,
    TwilioUnavailable,
    UniqueNameTaken,
)
from bridge.inbox import Inbox
from bridge.message_parts import split_message
from bridge.metrics import Metrics
from bridge.waiting import IdentityLocks

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


def unique_name(identity: str, generation: int) -> str:
    """Deterministic per attempt, so a retried create cannot make a second conversation."""
    return f"flexbridge-{identity}-{generation}"


def backoff(attempt: int, base: float = 0.25, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Exponential backoff with full jitter for the ``attempt``-th retry (1-based)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))  # noqa: S311 - not crypto


def _key_of(attributes: str) -> tuple[str | None, int | None]:
    try:
        marker = json.loads(attributes).get("flex_bridge", {})
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(marker, dict):
        return None, None
    part = marker.get("part")
    return marker.get("key"), part if isinstance(part, int) else None


def _presentation(identity: str, profile: str | None) -> tuple[str, str]:
    """The conversation's friendly name and attributes, as the agent will see them."""
    attributes: dict[str, object] = {"source": "flex-bridge", "user": identity[:12]}
    name = f"Assistant user {identity[:8]}"
    if profile:
        shared = json.loads(profile)
        attributes.update({"name": shared.get("name"), "email": shared.get("email")})
        name = " ".join(p for p in (shared.get("name"), f"<{shared.get('email')}>") if p)
    return name[:256], json.dumps(attributes)


#: Users whose queued messages the worker posts at the same time.
MAX_DRAINS_IN_FLIGHT = 8


class Outbox:
    def __init__(
        self,
        db: aiosqlite.Connection,
        twilio: ConversationsClient,
        inbox: Inbox,
        locks: IdentityLocks,
        *,
        flow_sid: str,
        webhook_url: str | None,
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._twilio = twilio
        self._inbox = inbox
        self._locks = locks
        self._flow_sid = flow_sid
        self._webhook_url = webhook_url
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
    ) -> store.OutboxRow:
        """Store the message, then try to post it (and any queued before it) for up to
        ``budget_seconds``. The returned row says whether it was sent or is still queued."""
        row = await store.enqueue_message(self._db, identity, body, context, profile)
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
            current = await store.outbox_row(self._db, row.id)
            if current.state == "failed":
                raise TwilioRejected("post_message", current.last_error or "refused")
            if current.state == "sent":
                return current
            pause = backoff(attempt)
            if loop.time() + pause >= deadline or attempt >= 3:
                self._wake.set()  # the worker takes over from here
                return current
            await asyncio.sleep(pause)

    # --- delivery -------------------------------------------------------------------------

    async def drain(self, identity: str) -> None:
        """Post the identity's pending messages, oldest first, stopping at the first that
        Twilio cannot take now (TwilioUnavailable propagates)."""
        async with self._locks(identity):
            for row in await store.pending_messages(self._db, identity):
                try:
                    await self._deliver(row)
                except TwilioUnavailable as exc:
                    retry = time.time() + backoff(row.attempts + 1, base=1.0)
                    await store.mark_attempt_failed(self._db, row.id, retry, str(exc), final=False)
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
                    await store.mark_attempt_failed(self._db, row.id, 0, str(exc), final=True)

    async def _deliver(self, row: store.OutboxRow) -> None:
        earlier_attempts = await store.begin_attempt(self._db, row.id)
        conversation, opened = await self.current_conversation(row.identity, row.profile)
        try:
            await self._post(conversation, row, opened, check=earlier_attempts > 0 and not opened)
        except (ConversationClosed, ConversationNotFound) as exc:
            logs.event(log, "conversation.gone", sid=conversation.sid, twilio_error=exc.code)
            await self._inbox.finish(conversation, read_last=isinstance(exc, ConversationClosed))
            conversation, opened = await self.current_conversation(row.identity, row.profile)
            await self._post(conversation, row, opened, check=False)
        await store.mark_sent(self._db, row.id, conversation.id)
        self._metrics.user_messages_posted.inc()
        logs.event(
            log,
            "user_message.posted",
            outbox_id=row.id,
            sid=conversation.sid,
            attempt=1 + earlier_attempts,
        )

    async def _post(
        self, conversation: store.ConversationRow, row: store.OutboxRow, opened: bool, check: bool
    ) -> None:
        assert conversation.sid is not None
        done: set[int] = set()
        first_message = opened
        if check:
            recent = await self._twilio.recent_messages(conversation.sid)
            for message in recent:
                key, part = _key_of(message.attributes)
                if key == row.idempotency_key and part is not None:
                    done.add(part)
            first_message = not any(m.author == row.identity for m in recent)
        if row.context and first_message and 0 not in done:
            await self._twilio.post_message(
                conversation.sid,
                row.identity,
                f"Context from the assistant: {row.context}",
                json.dumps(
                    {"flex_bridge": {"kind": "context", "key": row.idempotency_key, "part": 0}}
                ),
            )
        parts = split_message(row.body)
        for number, text in enumerate(parts, start=1):
            if number in done:
                continue
            marker: dict[str, object] = {"key": row.idempotency_key, "part": number}
            if len(parts) > 1:
                marker["parts"] = len(parts)
            await self._twilio.post_message(
                conversation.sid, row.identity, text, json.dumps({"flex_bridge": marker})
            )

    # --- conversations --------------------------------------------------------------------

    async def current_conversation(
        self, identity: str, profile: str | None = None
    ) -> tuple[store.ConversationRow, bool]:
        """The identity's open conversation; True if it was opened by this call.

        A conversation opened with a ``profile`` shows the user's verified name and email
        to the agent; otherwise Twilio sees only the hash. Call with the identity's lock held.
        """
        while True:
            row = await store.claim_conversation(self._db, identity)
            if row.state == "open":
                return row, False
            name = unique_name(identity, row.generation)
            try:
                friendly_name, attributes = _presentation(identity, profile)
                info = await self._twilio.create_conversation_with_participant(
                    unique_name=name,
                    friendly_name=friendly_name,
                    attributes=attributes,
                    identity=identity,
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
            self._metrics.handoffs_started.inc()
            logs.event(log, "conversation.opened", sid=info.sid, generation=row.generation)
            return await store.conversation_by_id(self._db, row.id), True

    async def _attach(self, sid: str, identity: str, fresh: bool) -> None:
        """Participant, Studio webhook and event webhook, skipping whatever exists."""
        if not fresh and identity not in await self._twilio.participant_identities(sid):
            with contextlib.suppress(ParticipantExists):
                await self._twilio.add_participant(sid, identity)
        targets = [] if fresh else await self._twilio.webhook_targets(sid)
        if "studio" not in targets:
            await self._twilio.add_studio_webhook(sid, self._flow_sid)
        if self._webhook_url and "webhook" not in targets:
            await self._twilio.add_event_webhook(sid, self._webhook_url)

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
            try:
                await self._deliver_due()
            except Exception:
                log.exception("outbox pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _deliver_due(self) -> None:
        now = time.time()
        due: list[str] = []
        for row in await store.pending_messages(self._db):
            if row.next_attempt_at <= now and row.identity not in due:
                due.append(row.identity)
        # Several users at once (each user's messages stay in order under their lock), so
        # a backlog after an outage clears in minutes, not one user at a time.
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
