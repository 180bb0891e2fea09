"""Reading Twilio for conversations somebody waits on, when webhooks are off.

Paced to spend what Twilio would tolerate: a conversation's message list is read often
just after something happened in it and less and less often while it stays quiet (from
``fastest`` up to ``slowest``); its state, which only a close changes, every
``state_every`` seconds; and every read, of every conversation, takes from one allowance
per account (``calls_per_minute``), so many waiting users slow each other down instead of
running into Twilio's limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.backoff import backoff
from bridge.conversations import TwilioUnavailable
from bridge.coordination import RateLimits
from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: The allowance every poll read takes from (one per Twilio account).
READS_KEY = "twilio-poll-reads"
#: How long a conversation's pace is remembered after its last waiter left, so back-to-back
#: waits keep slowing down instead of starting fast again.
REMEMBER_SECONDS = 3600.0
MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class PollPace:
    fastest: float = 2.0
    slowest: float = 10.0
    state_every: float = 30.0
    calls_per_minute: int = 600
    max_backoff: float = 15.0

    def interval(self, quiet_for: float) -> float:
        """The wait before the next read of a conversation quiet for ``quiet_for`` s: a
        quarter of that, within [fastest, slowest]."""
        return min(self.slowest, max(self.fastest, quiet_for / 4))


@dataclass
class _Seen:
    """What the poller knows of one conversation (monotonic times)."""

    active_at: float  # when it last had a new message (or began to be watched)
    state_read_at: float | None = None
    messages_read_at: float | None = None


class Poller:
    """One task per conversation, shared by every request waiting on it."""

    def __init__(
        self,
        read_messages: Callable[[int], Awaitable[int]],
        read_state: Callable[[int], Awaitable[None]],
        limits: RateLimits,
        pace: PollPace,
    ) -> None:
        self._read_messages = read_messages
        self._read_state = read_state
        self._limits = limits
        self._pace = pace
        self._watchers: Counter[int] = Counter()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._seen: dict[int, _Seen] = {}

    def watch(self, conversation_id: int) -> None:
        """Someone waits on the conversation: poll it until every watcher has gone."""
        self._watchers[conversation_id] += 1
        if conversation_id not in self._tasks:
            self._remember(conversation_id)
            task = asyncio.get_running_loop().create_task(self._run(conversation_id))
            self._tasks[conversation_id] = task

    def unwatch(self, conversation_id: int) -> None:
        self._watchers[conversation_id] -= 1
        if self._watchers[conversation_id] <= 0:
            del self._watchers[conversation_id]

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def read_now(self, conversation_id: int) -> None:
        """A caller is about to wait (or asks with wait=0): read the messages now, unless
        they were read within the fastest interval or the allowance is spent."""
        seen = self._remember(conversation_id)
        now = time.monotonic()
        if seen.messages_read_at is not None and now - seen.messages_read_at < self._pace.fastest:
            return
        if await self._limits.take(READS_KEY, self._pace.calls_per_minute):
            return
        await self._messages(conversation_id, seen)
        await self._state_if_due(conversation_id, seen, waiting=True, patient=False)

    async def _run(self, conversation_id: int) -> None:
        seen = self._remember(conversation_id)
        failures = 0
        try:
            while self._watchers.get(conversation_id, 0) > 0:
                if failures:  # Twilio struggles: back off, then read whatever is due
                    await asyncio.sleep(
                        backoff(failures + 1, self._pace.fastest, self._pace.max_backoff)
                    )
                    if self._watchers.get(conversation_id, 0) <= 0:
                        break
                elif (delay := self._due_in(seen)) > 0:
                    await asyncio.sleep(delay)
                    continue  # the pace may have changed meanwhile (a read_now)
                try:
                    await self._poll(conversation_id, seen)
                    failures = 0
                except TwilioUnavailable:
                    failures += 1
                except Exception:
                    log.exception("poll of conversation %s failed", conversation_id)
                    failures += 1
        finally:
            self._tasks.pop(conversation_id, None)

    def _due_in(self, seen: _Seen) -> float:
        """Seconds until the conversation's next read (0: now)."""
        if seen.messages_read_at is None:
            return 0.0
        # A quarter of the quiet time as it was at the last read, so each read is placed
        # once (measured from now, the wait would keep stretching while it is waited).
        interval = self._pace.interval(seen.messages_read_at - seen.active_at)
        return max(0.0, seen.messages_read_at + interval - time.monotonic())

    async def _poll(self, conversation_id: int, seen: _Seen) -> None:
        await self._allowance()
        await self._messages(conversation_id, seen)
        waiting = self._watchers.get(conversation_id, 0) > 0
        await self._state_if_due(conversation_id, seen, waiting=waiting, patient=True)

    async def _state_if_due(
        self, conversation_id: int, seen: _Seen, *, waiting: bool, patient: bool
    ) -> None:
        """Read the state when it has not been read for ``state_every`` (and someone still
        waits to hear of a close); ``patient`` waits for the allowance, else skips."""
        due = seen.state_read_at is None or (
            time.monotonic() - seen.state_read_at >= self._pace.state_every
        )
        if not (due and waiting):
            return
        if patient:
            await self._allowance()
        elif await self._limits.take(READS_KEY, self._pace.calls_per_minute):
            return
        seen.state_read_at = time.monotonic()
        await self._read_state(conversation_id)

    async def _messages(self, conversation_id: int, seen: _Seen) -> None:
        seen.messages_read_at = time.monotonic()
        if await self._read_messages(conversation_id):
            seen.active_at = time.monotonic()

    async def _allowance(self) -> None:
        """Wait for the account's allowance to have a read to spare."""
        while True:
            wait = await self._limits.take(READS_KEY, self._pace.calls_per_minute)
            if not wait:
                return
            await asyncio.sleep(wait)

    def _remember(self, conversation_id: int) -> _Seen:
        seen = self._seen.get(conversation_id)
        if seen is None:
            if len(self._seen) >= MAX_REMEMBERED:
                self._forget_old()
            seen = self._seen[conversation_id] = _Seen(active_at=time.monotonic())
        return seen

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - REMEMBER_SECONDS
        for conversation_id, seen in list(self._seen.items()):
            last = max(seen.active_at, seen.messages_read_at or 0.0)
            if conversation_id not in self._tasks and last < cutoff:
                del self._seen[conversation_id]

    async def close(self) -> None:
        await cancel_and_wait(self._tasks.values())
