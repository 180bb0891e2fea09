"""Requests waiting a bounded time for an agent's reply.

While waiting, a request holds one wake-up event and a timer, nothing else: the inbox
wakes it once something for its identity is stored, and it looks at the store again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from bridge import logs
from bridge.coordination import Wakeups
from bridge.core.errors import TooManyWaiting
from bridge.core.handout import Handout
from bridge.core.outcomes import HandoffResult, HandoffStatus, Outcome, closed_outcome
from bridge.core.poller import Poller
from bridge.core.standing import Standing
from bridge.metrics import Metrics
from bridge.store import ConversationRow, Store

log = logging.getLogger(__name__)

#: What a caller refused for waiting too much at once is told to wait.
BUSY_RETRY_SECONDS = 5

#: Hears each new status while a call waits (MCP progress notifications).
Progress = Callable[[HandoffStatus], Awaitable[None]]


class Waiters:
    def __init__(
        self,
        store: Store,
        wakeups: Wakeups,
        handout: Handout,
        metrics: Metrics,
        poller: Poller | None,
        standing: Standing,
        *,
        max_per_user: int = 10,
        max_total: int = 20_000,
    ) -> None:
        """With a ``poller`` (webhooks off), conversations someone waits on are polled.

        At most ``max_per_user`` calls of one user and ``max_total`` in all wait at once:
        one caller must not hold thousands of waits.
        """
        self._store = store
        self._wakeups = wakeups
        self._handout = handout
        self._max_per_user = max_per_user
        self._max_total = max_total
        self._waiting: Counter[tuple[str, str]] = Counter()
        self._waiting_total = 0
        self._metrics = metrics
        self._poller = poller
        self._standing = standing
        self._waited_on: Counter[int] = Counter()
        self._closing = False

    def waited_on(self) -> set[int]:
        """The conversations a request of this process waits on now."""
        return set(self._waited_on)

    def begin_shutdown(self) -> None:
        """Wake every waiter: each answers with what it has, and none waits again."""
        self._closing = True
        self._wakeups.wake_all_here()

    async def collect(
        self,
        identity: str,
        wait: float,
        after: str | None = None,
        *,
        refuse_busy: bool = False,
        progress: Progress | None = None,
    ) -> HandoffResult:
        """Hand out undelivered replies (and, with ``after``, every reply after that one),
        waiting up to ``wait`` seconds for the first; ``progress`` hears the status each
        time it changes meanwhile.

        When the user already has the most calls waiting, ``refuse_busy`` raises
        TooManyWaiting (nothing taken); otherwise, as when every waiting place is taken,
        the call looks once without waiting. Two trips to the store per look.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with self.admitted(identity, wait, refuse_busy=refuse_busy) as wait:
            result = await self._look_and_wait(identity, started + wait, after, progress)
        self._metrics.wait_seconds.labels(result.status).observe(loop.time() - started)
        logs.event(
            log,
            "replies.handed_out",
            status=result.status,
            outcome=result.outcome,
            replies=len(result.replies),
        )
        return result

    @contextlib.asynccontextmanager
    async def admitted(
        self,
        identity: str,
        wait: float,
        *,
        refuse_busy: bool = False,
        kind: str = "replies",
        per_user: int | None = None,
    ) -> AsyncIterator[float]:
        """Count a call that waits up to ``wait`` seconds; enters with the wait it may
        have: 0 when the user already has the most calls of that ``kind`` waiting (or
        TooManyWaiting with ``refuse_busy``), or when every waiting place is taken.

        Each kind has its own allowance per user (``per_user``, MAX_WAITING_PER_USER by
        default), so live chat panes never crowd out the model's calls."""
        key = (kind, identity)
        limit = self._max_per_user if per_user is None else per_user
        if wait > 0 and self._waiting[key] >= limit:
            if refuse_busy:
                raise TooManyWaiting(BUSY_RETRY_SECONDS)
            wait = 0
        if wait > 0 and self._waiting_total >= self._max_total:
            wait = 0
        if wait <= 0:
            yield 0.0
            return
        self._waiting[key] += 1
        self._waiting_total += 1
        try:
            yield wait
        finally:
            self._waiting_total -= 1
            self._waiting[key] -= 1
            if self._waiting[key] <= 0:
                del self._waiting[key]

    @property
    def closing(self) -> bool:
        """Shutting down: nobody waits any more."""
        return self._closing

    async def _look(
        self, identity: str, after: str | None
    ) -> tuple[HandoffResult | None, ConversationRow | None]:
        """An answer, if there is one to give now (replies, or no open conversation), and
        the identity's latest conversation."""
        replies, lease, more = await self._handout.take(identity, after)
        try:
            latest = await self._store.latest_conversation(identity)
        except BaseException:  # cancelled (the caller went away) or failed: not handed out
            await self._handout.release(identity, HandoffResult("waiting", replies, lease))
            raise

        def taken(outcome: Outcome) -> HandoffResult:
            status = self._standing.of(latest)
            return HandoffResult(outcome, replies, lease if replies else None, more, status)

        if latest is None:
            return taken("none_yet"), None
        if latest.sid:
            logs.conversation_sid.set(latest.sid)
        if latest.state == "closed":
            return taken(closed_outcome(latest.closed_by)), latest
        if replies:
            return taken("answered"), latest
        return None, latest

    async def _look_and_wait(
        self, identity: str, deadline: float, after: str | None, progress: Progress | None
    ) -> HandoffResult:
        loop = asyncio.get_running_loop()
        watched: ConversationRow | None = None
        told: HandoffStatus | None = None  # the status last looked at
        try:
            while True:
                woken = self._wakeups.event(identity)
                found, latest = await self._look(identity, after)
                if found is not None:
                    return found
                assert latest is not None
                status = self._standing.of(latest)
                if told is not None and (status.choices and not told.choices):
                    # Nobody accepted in time: the user decides what happens next.
                    return HandoffResult("no_one_accepted", [], handoff=status)
                if (
                    told is not None
                    and status.state == "with_agent"
                    and (told.state, told.agent_name) != (status.state, status.agent_name)
                ):
                    # Worth telling the user before any reply: someone has picked it up.
                    return HandoffResult("agent_joined", [], handoff=status)
                if progress is not None and status != told:
                    await progress(status)
                told = status
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    queued = await self._store.pending_messages(identity)
                    outcome: Outcome = "queued" if queued else "waiting"
                    return HandoffResult(outcome, [], handoff=status)
                if watched is None or (watched.id, watched.sid) != (latest.id, latest.sid):
                    if watched is not None:
                        self.unwatch(watched)
                    watched = latest
                    self.watch(watched)
                await self.sleep(
                    woken, self.nap(latest, status, remaining, queue=progress is not None)
                )
        finally:
            if watched is not None:
                self.unwatch(watched)

    def nap(
        self, latest: ConversationRow, status: HandoffStatus, remaining: float, *, queue: bool
    ) -> float:
        """How long to sleep unless woken: to the deadline, or to when the user is due a
        choice, or (for someone following the queue) to the queue's next figures."""
        nap = remaining
        due = self._standing.choices_due_at(latest, datetime.now(UTC))
        until_due = (due - datetime.now(UTC)).total_seconds() if due is not None else -1.0
        if until_due > 0 and status.waiting_for_agent and not status.choices:
            nap = min(nap, until_due + 0.05)
        watch = self._standing.queue
        if queue and watch is not None and status.waiting_for_agent:
            nap = min(nap, watch.refresh_seconds)
        return nap

    async def sleep(self, woken: asyncio.Event, seconds: float) -> None:
        """Until ``woken`` is set or ``seconds`` pass."""
        with (
            self._metrics.waiting_requests.track_inprogress(),
            contextlib.suppress(TimeoutError),
        ):
            async with asyncio.timeout(seconds):
                await woken.wait()

    def watch(self, row: ConversationRow) -> None:
        """Someone here waits on this conversation: poll it (webhooks off), follow its
        place in the queue. Undone by :meth:`unwatch`."""
        self._waited_on[row.id] += 1
        if self._poller is not None:
            self._poller.watch(row.id)
        if self._standing.queue is not None and row.sid is not None:
            self._standing.queue.watch(row.sid, row.task_sid)

    def unwatch(self, row: ConversationRow) -> None:
        self._waited_on[row.id] -= 1
        if self._waited_on[row.id] <= 0:
            del self._waited_on[row.id]
        if self._poller is not None:
            self._poller.unwatch(row.id)
        if self._standing.queue is not None and row.sid is not None:
            self._standing.queue.unwatch(row.sid)
