"""Waking waiters: per-conversation notifications and the shared poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable

from bridge.conversations import TwilioUnavailable

log = logging.getLogger(__name__)


class Notifier:
    """One event per identity, replaced each time it fires.

    A waiter takes the event *before* checking the store, so a notification that lands
    between the check and the wait is never missed.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, identity: str) -> asyncio.Event:
        event = self._events.get(identity)
        if event is None:
            event = self._events[identity] = asyncio.Event()
        return event

    def notify(self, identity: str) -> None:
        event = self._events.pop(identity, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()


class IdentityLocks:
    """One lock per identity, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, identity: str) -> asyncio.Lock:
        lock = self._locks.get(identity)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[identity] = lock
        return lock


class Poller:
    """Polls Twilio for conversations that have someone waiting: one task per conversation,
    shared by every request waiting on it, with exponential backoff while Twilio is
    unavailable. (``sync`` caps the Twilio calls in flight.)"""

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
        delay = self._interval
        try:
            while self._watchers.get(conversation_id, 0) > 0:
                try:
                    await self._sync(conversation_id)
                    delay = self._interval
                except TwilioUnavailable:
                    delay = min(delay * 2, self._max_backoff)
                except Exception:
                    log.exception("poll of conversation %s failed", conversation_id)
                    delay = min(delay * 2, self._max_backoff)
                await asyncio.sleep(delay)
        finally:
            self._tasks.pop(conversation_id, None)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
