"""Reading Twilio for conversations somebody waits on, when webhooks are off."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from bridge.backoff import backoff
from bridge.conversations import TwilioUnavailable
from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Poller:
    """One task per conversation, shared by every request waiting on it, backing off
    while Twilio is unavailable. (``sync`` caps the Twilio calls in flight.)"""

    def __init__(
        self,
        sync: Callable[[int], Awaitable[None]],
        interval: float,
        max_backoff: float = 15.0,
    ) -> None:
        self._sync = sync
        self._interval = interval
        self._max_backoff = max_backoff
        self._watchers: Counter[int] = Counter()
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def watch(self, conversation_id: int) -> None:
        """Someone waits on the conversation: poll it until every watcher has gone."""
        self._watchers[conversation_id] += 1
        if conversation_id not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._run(conversation_id))
            self._tasks[conversation_id] = task

    def unwatch(self, conversation_id: int) -> None:
        self._watchers[conversation_id] -= 1
        if self._watchers[conversation_id] <= 0:
            del self._watchers[conversation_id]

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def _run(self, conversation_id: int) -> None:
        failures = 0
        try:
            while self._watchers.get(conversation_id, 0) > 0:
                try:
                    await self._sync(conversation_id)
                    failures = 0
                except TwilioUnavailable:
                    failures += 1
                except Exception:
                    log.exception("poll of conversation %s failed", conversation_id)
                    failures += 1
                delay = self._interval
                if failures:
                    delay = backoff(failures + 1, self._interval, self._max_backoff)
                await asyncio.sleep(delay)
        finally:
            self._tasks.pop(conversation_id, None)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks.values())
