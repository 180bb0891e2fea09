"""Requests waiting a bounded time for an agent's reply.

While waiting, a request holds one wake-up event and a timer, nothing else: the inbox
wakes it once something for its identity is stored, and it looks at the store again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from bridge import logs
from bridge.coordination import Wakeups
from bridge.core.outcomes import HandoffResult, closed_outcome, replies_of
from bridge.core.poller import Poller
from bridge.metrics import Metrics
from bridge.store import Store

log = logging.getLogger(__name__)


class Waiters:
    def __init__(
        self, store: Store, wakeups: Wakeups, metrics: Metrics, poller: Poller | None
    ) -> None:
        """With a ``poller`` (webhooks off), conversations someone waits on are polled."""
        self._store = store
        self._wakeups = wakeups
        self._metrics = metrics
        self._poller = poller
        self._waited_on: Counter[int] = Counter()
        self._closing = False

    def waited_on(self) -> set[int]:
        """The conversations a request of this process waits on now."""
        return set(self._waited_on)

    def begin_shutdown(self) -> None:
        """Wake every waiter: each answers with what it has, and none waits again."""
        self._closing = True
        self._wakeups.wake_all_here()

    async def collect(self, identity: str, wait: float) -> HandoffResult:
        """Hand out undelivered replies, waiting up to ``wait`` seconds for the first.

        Two trips to the store per look (take the replies, read the conversation's state).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await self._look_and_wait(identity, started + wait)
        self._metrics.wait_seconds.labels(result.status).observe(loop.time() - started)
        if result.replies:
            self._metrics.replies_delivered.inc(len(result.replies))
        logs.event(
            log,
            "replies.handed_out",
            status=result.status,
            outcome=result.outcome,
            replies=len(result.replies),
        )
        return result

    async def _look_and_wait(self, identity: str, deadline: float) -> HandoffResult:
        loop = asyncio.get_running_loop()
        watched: int | None = None
        try:
            while True:
                woken = self._wakeups.event(identity)
                replies = replies_of(await self._store.take_undelivered_for(identity))
                latest = await self._store.latest_conversation(identity)
                if latest is None:
                    return HandoffResult("none_yet", replies)
                if latest.sid:
                    logs.conversation_sid.set(latest.sid)
                if latest.state == "closed":
                    return HandoffResult(closed_outcome(latest.closed_by), replies)
                if replies:
                    return HandoffResult("answered", replies)
                remaining = deadline - loop.time()
                if remaining <= 0 or self._closing:
                    queued = await self._store.pending_messages(identity)
                    return HandoffResult("queued" if queued else "waiting", [])
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
