"""The hand-off: send the user's message, wait a bounded time, hand out agent replies once.

The three operations check their input and limits here, for every front door, and answer
an outcome kind (:mod:`bridge.core.outcomes`); the front doors word it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass

from bridge.conversations import (
    ConversationClosed,
    ConversationNotFound,
    TwilioConversations,
    TwilioError,
    TwilioUnavailable,
)
from bridge.coordination import Coordination
from bridge.core.checks import checked_choice, checked_context, checked_message, checked_wait
from bridge.core.errors import Busy, NothingToChoose, RateLimited
from bridge.core.handout import Handout
from bridge.core.inbox import Inbox
from bridge.core.live_chat import LiveChat
from bridge.core.outbox import Outbox
from bridge.core.outcomes import HandoffResult, HandoffStatus, closed_outcome
from bridge.core.poller import Poller
from bridge.core.reconciler import Reconciler
from bridge.core.standing import Standing
from bridge.core.waiters import Progress, Waiters
from bridge.routing import Router
from bridge.store import ClosedBy, ConversationRow, Store

#: However short the reply wait, posting the message to Twilio may take this long.
MIN_POST_SECONDS = 2.0
#: The assistant's summary shown to the agent is short: a few sentences.
MAX_CONTEXT_CHARS = 2000


@dataclass(frozen=True)
class Limits:
    max_message_chars: int = 8000
    max_context_chars: int = MAX_CONTEXT_CHARS
    #: The longest wait inside one call (REPLY_WAIT_SECONDS).
    reply_wait_seconds: float = 30.0
    #: Messages one user may send per minute (RATE_LIMIT_PER_MINUTE).
    messages_per_minute: int = 30
    #: Conversations all users together may open per minute (NEW_CONVERSATIONS_PER_MINUTE).
    new_conversations_per_minute: int = 600


class HandoffService:
    """The core's three operations, over the parts the builder wires."""

    def __init__(
        self,
        store: Store,
        twilio: TwilioConversations,
        coordination: Coordination,
        *,
        inbox: Inbox,
        outbox: Outbox,
        handout: Handout,
        waiters: Waiters,
        reconciler: Reconciler,
        poller: Poller | None,
        standing: Standing,
        live_chat: LiveChat,
        router: Router,
        limits: Limits,
    ) -> None:
        self._store = store
        self._twilio = twilio
        self._coordination = coordination
        self.inbox = inbox
        self.outbox = outbox
        self._handout = handout
        self._waiters = waiters
        self._reconciler = reconciler
        self._poller = poller
        self._standing = standing
        #: The live chat pane's view of a conversation (MCP Apps).
        self.live_chat = live_chat
        self._router = router
        self.limits = limits

    @property
    def push(self) -> bool:
        """True when webhooks bring agent messages; False when they are polled for."""
        return self._poller is None

    async def start(self) -> None:
        self.outbox.start()
        self._reconciler.start()

    def begin_shutdown(self) -> None:
        """Wake every waiter (they answer ``waiting``), so the server can drain."""
        self._waiters.begin_shutdown()

    async def close(self) -> None:
        """Answer the waiters, finish the post in progress, stop the background work."""
        self.begin_shutdown()
        await self.outbox.close()
        await self._reconciler.close()
        if self._poller is not None:
            await self._poller.close()
        if self._standing.queue is not None:
            await self._standing.queue.close()
        await self.inbox.close()

    # --- the three operations -------------------------------------------------------------

    async def send(
        self,
        identity: str,
        message: object,
        context: object = None,
        *,
        profile: str | None = None,
        budget_seconds: float = 10.0,
        wait_seconds: float | None = None,
        progress: Progress | None = None,
    ) -> HandoffResult:
        """Check, store and post the user's message (opening a conversation if needed),
        then wait for the agent's reply.

        Raises RateLimited, InvalidMessage, MessageTooLong, InvalidContext, ContextTooLong
        or Busy (too many new conversations at once), having stored nothing. ``profile``
        (verified name and email, JSON) is shown to the agent when the message opens a
        conversation. The whole call,
        posting included, takes about REPLY_WAIT_SECONDS (or ``wait_seconds`` when that
        is shorter); posting gets at least MIN_POST_SECONDS of it, however short the
        wait, so a healthy Twilio is not mistaken for a slow one.
        """
        text, summary, declined = await self._accept(identity, message, context)
        if declined is not None:
            # Closed, or nobody there, and told not to take messages: nothing sent.
            replies, lease, more = await self._handout.take(identity)
            return HandoffResult("unavailable", replies, lease if replies else None, more, declined)
        loop = asyncio.get_running_loop()
        started = loop.time()
        wait = self.limits.reply_wait_seconds
        if wait_seconds is not None:
            wait = min(wait_seconds, wait)
        budget = max(MIN_POST_SECONDS, min(budget_seconds, wait))
        row = await self.outbox.submit(identity, text, summary, budget, profile=profile)
        if row.state == "pending":
            replies, lease, more = await self._handout.take(identity)
            status = self._standing.of(await self._store.latest_conversation(identity))
            return HandoffResult("queued", replies, lease if replies else None, more, status)
        return await self._waiters.collect(
            identity, max(0.0, wait - (loop.time() - started)), progress=progress
        )

    async def post(
        self, identity: str, message: object, *, profile: str | None = None
    ) -> HandoffStatus | None:
        """The user's own message, written in the live chat pane: checked, stored and
        posted as :meth:`send` does (the same limits), without waiting or handing out
        replies (the pane shows the whole conversation). Returns the status when the
        message was declined (nothing sent), else None."""
        text, _summary, declined = await self._accept(identity, message, None)
        if declined is None:
            await self.outbox.submit(identity, text, None, MIN_POST_SECONDS, profile=profile)
        return declined

    async def _accept(
        self, identity: str, message: object, context: object
    ) -> tuple[str, str | None, HandoffStatus | None]:
        """The checks every message passes before it is stored: the user's rate limit,
        the message and context, and, for one that would open a conversation, the
        policy when nobody is there (a status: declined) and the limit on new ones."""
        retry_in = await self._coordination.rate_limits.take(
            f"send:{identity}", self.limits.messages_per_minute
        )
        if retry_in:
            raise RateLimited(max(1, math.ceil(retry_in)))
        text = checked_message(message, self.limits.max_message_chars)
        summary = checked_context(context, self.limits.max_context_chars)
        latest = await self._store.latest_conversation(identity)
        if latest is None or latest.state == "closed":
            # Asked only to decline: a message taken anyway hears of it from the queue.
            nobody = await self._standing.before_opening() if self._standing.declines else None
            if nobody is not None:
                return text, summary, nobody
            # A new conversation: new identities (path names, MCP sessions) are free to
            # make, so their conversations are counted across all users.
            retry_in = await self._coordination.rate_limits.take(
                "new-conversations", self.limits.new_conversations_per_minute
            )
            if retry_in:
                raise Busy(max(1, math.ceil(retry_in)))
        return text, summary, None

    async def replies(
        self,
        identity: str,
        wait: float,
        after: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> HandoffResult:
        """Replies not handed out yet, waiting up to ``wait`` seconds (capped at
        REPLY_WAIT_SECONDS) for one; with ``after`` (the id of the last reply the caller
        saw), every reply after that one, including any whose answer never arrived.

        Raises InvalidWait, or TooManyWaiting when the user already waits too often."""
        wait = min(checked_wait(wait), self.limits.reply_wait_seconds)
        if self._poller is not None:
            latest = await self._store.latest_conversation(identity)
            if latest is not None and latest.state == "open":
                # Look now rather than at the poller's next tick, so wait=0 sees replies.
                with contextlib.suppress(TwilioUnavailable):
                    await self._poller.read_now(latest.id)
        return await self._waiters.collect(
            identity, wait, after, refuse_busy=True, progress=progress
        )

    async def confirm(self, result: HandoffResult) -> None:
        """The answer carrying ``result`` reached its caller: its replies are delivered."""
        await self._handout.confirm(result)

    async def release(self, identity: str, result: HandoffResult) -> None:
        """The answer carrying ``result`` did not reach its caller: its replies go again."""
        await self._handout.release(identity, result)

    async def end(self, identity: str) -> HandoffResult:
        """Close the user's conversation in Twilio (Flex sees it) and hand out last replies."""
        async with self._coordination.locks.hold(identity):
            latest = await self._store.latest_conversation(identity)
            if latest is None:
                return HandoffResult("none_yet", [])
            if latest.state != "closed" and latest.sid is not None:
                # Shielded: a caller who gives up must not leave the close half done (a
                # close that reached Twilio but was never put down to the user).
                await asyncio.shield(self._close_for_user(latest))
            elif latest.state != "closed":
                await self._store.mark_closed(latest.id, "user")
            closed = await self._store.conversation_by_id(latest.id)
        replies, lease, more = await self._handout.take(identity)
        return HandoffResult(
            closed_outcome(closed.closed_by),
            replies,
            lease if replies else None,
            more,
            self._standing.of(closed),
        )

    async def choose(self, identity: str, choice: object) -> HandoffResult:
        """What the user wants while no agent has accepted: keep waiting (asked again
        after another timeout), leave a message (the task stays; the reply is handed out
        whenever they come back), or continue with the assistant (Flex's task is canceled
        and the conversation closed). Raises InvalidChoice, or NothingToChoose when no
        conversation waits for an agent."""
        chosen = checked_choice(choice)
        async with self._coordination.locks.hold(identity):
            latest = await self._store.latest_conversation(identity)
            if latest is None or not self._standing.of(latest).waiting_for_agent:
                raise NothingToChoose("no conversation is waiting for an agent")
            if chosen != "continue_with_assistant":
                await self._store.set_choice(latest.id, chosen)
        if chosen != "continue_with_assistant":
            return await self._waiters.collect(identity, 0)
        # Shielded: a caller who gives up must not leave the task canceled and the
        # conversation open (or the reverse).
        await asyncio.shield(self._withdraw(latest))
        return await self.end(identity)

    async def _withdraw(self, latest: ConversationRow) -> None:
        """Cancel the conversation's unaccepted task, put down to the user; NothingToChoose
        when an agent accepted it meanwhile."""
        assert latest.sid is not None  # waiting for an agent: routed, so it has one
        # Said first: the cancel's event may close the conversation before we do.
        await self._store.mark_closing(latest.id, "user")
        try:
            withdrawn = await self._router.withdraw(latest.sid)
        except BaseException:
            await self._store.mark_closing(latest.id, None)
            raise
        if not withdrawn:
            await self._store.mark_closing(latest.id, None)
            raise NothingToChoose("an agent accepted the conversation meanwhile")
        await self._store.set_choice(latest.id, "continue_with_assistant")

    async def _close_for_user(self, latest: ConversationRow) -> None:
        """Close it in Twilio and mark it closed by the user, or say why not."""
        assert latest.sid is not None
        # A marker left by an earlier /end that never learnt whether Twilio closed it.
        tried_before = latest.closed_by == "user"
        # Said first: the close webhook may overtake the call below.
        await self._store.mark_closing(latest.id, "user")
        closed_by: ClosedBy = "user"
        try:
            await self._twilio.close_conversation(latest.sid)
        except ConversationClosed:
            if not tried_before:  # the agent closed it and no webhook told us
                closed_by = "agent"
                await self._store.mark_closing(latest.id, None)
        except ConversationNotFound:
            closed_by = "lost"
            await self._store.mark_closing(latest.id, None)
        except TwilioError as error:
            # Twilio answered and did nothing: nobody is closing it. A timeout may have
            # closed it, though: the marker stays, and the close is the user's if so.
            if error.status is not None:
                await self._store.mark_closing(latest.id, None)
            raise
        await self.inbox.finish(latest, read_last=True, closed_by=closed_by)
