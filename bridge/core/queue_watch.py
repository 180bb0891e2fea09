"""Where waiting users stand in Flex's queues, read from TaskRouter for all of them at once.

One reader per process, shared by every waiter: while anyone waits, every few seconds
it lists the workspace's waiting tasks (pending and offered, in TaskRouter's offer order;
one call a page) and reads the real-time statistics of each queue that holds a waited-on
conversation, and now and then its cumulative statistics (the wait history). Twilio calls
grow with queues, not with users. Unknown is None: no position for a conversation whose
task is not in the list, no expected wait without enough history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge import logs
from bridge.conversations import QueueHistory, TwilioError, TwilioFlex, WaitingTask

log = logging.getLogger(__name__)

#: Seconds waited that the history is split at (TaskRouter's SplitByWaitTime).
WAIT_THRESHOLDS = (30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600)
#: How far back the wait history looks, and how many accepted tasks make it worth quoting.
HISTORY_MINUTES = 60
MIN_HISTORY = 5
#: The history changes slowly: read once every this many refreshes (a minute by default).
HISTORY_EVERY_REFRESHES = 12


@dataclass(frozen=True)
class QueueStanding:
    """One waiting user's place: position in line (1: next), agents available now, and
    how long the queue's accepted tasks usually waited (seconds, low to high)."""

    position: int | None = None
    agents_available: int | None = None
    expected_wait: tuple[int, int] | None = None

    def to_json(self) -> dict[str, object]:
        wait = self.expected_wait
        return {
            "position": self.position,
            "agents_available": self.agents_available,
            "expected_wait_seconds": {"low": wait[0], "high": wait[1]} if wait else None,
        }


def expected_wait(history: QueueHistory) -> tuple[int, int] | None:
    """The middle half of the waits before acceptance (from the threshold counts), within
    the shortest and longest seen; None with fewer than MIN_HISTORY accepted tasks."""
    if history.accepted < MIN_HISTORY or not history.accepted_below:
        return None
    splits = sorted(history.accepted_below.items())
    quarter, three_quarters = history.accepted / 4, history.accepted * 3 / 4
    low = max([t for t, below in splits if below <= quarter], default=0)
    high = min([t for t, below in splits if below >= three_quarters], default=None)
    low = max(low, history.shortest_wait)
    high = history.longest_wait if high is None else min(high, history.longest_wait)
    return (min(low, high), max(low, high))


@dataclass
class _Snapshot:
    at: float = float("-inf")
    #: conversation SID → (queue SID, position in that queue)
    places: dict[str, tuple[str, int]] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)  # queue SID → agents available
    history: dict[str, tuple[float, tuple[int, int] | None]] = field(default_factory=dict)


class QueueWatch:
    def __init__(
        self,
        flex: TwilioFlex,
        workspace_sid: str,
        *,
        refresh_seconds: float = 5.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._flex = flex
        self._workspace = workspace_sid
        self._refresh = refresh_seconds
        self._history_every = refresh_seconds * HISTORY_EVERY_REFRESHES
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._watched: Counter[str] = Counter()
        self._snapshot = _Snapshot()
        self._runner: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._staffed: tuple[float, bool | None] = (float("-inf"), None)
        self.changed = asyncio.Event()

    @property
    def refresh_seconds(self) -> float:
        return self._refresh

    # --- who waits --------------------------------------------------------------------

    def watch(self, conversation_sid: str) -> None:
        """Someone waits on this conversation: keep the figures fresh while they do."""
        self._watched[conversation_sid] += 1
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="queue-watch")

    def unwatch(self, conversation_sid: str) -> None:
        self._watched[conversation_sid] -= 1
        if self._watched[conversation_sid] <= 0:
            del self._watched[conversation_sid]

    # --- what it knows ----------------------------------------------------------------

    def standing(self, conversation_sid: str | None) -> QueueStanding | None:
        """The conversation's place, from figures at most a few refreshes old (None when
        there are none, or its task is not waiting)."""
        snap = self._snapshot
        if conversation_sid is None or self._clock() - snap.at > 3 * self._refresh:
            return None
        place = snap.places.get(conversation_sid)
        if place is None:
            return None
        queue, position = place
        known = snap.history.get(queue)
        return QueueStanding(position, snap.available.get(queue), known[1] if known else None)

    async def any_agent_available(self) -> bool | None:
        """Whether any agent is available now (None: Twilio could not say), asked at
        most once a refresh interval however many conversations open."""
        at, staffed = self._staffed
        if self._clock() - at < self._refresh:
            return staffed
        try:
            staffed = await self._flex.any_agent_available(self._workspace)
        except TwilioError:
            staffed = None
        self._staffed = (self._clock(), staffed)
        return staffed

    async def refresh_now(self) -> None:
        """Read the figures now unless they are fresh (one read at a time)."""
        if self._clock() - self._snapshot.at < self._refresh:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh_once())
        await asyncio.shield(self._refreshing)

    # --- reading ----------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while self._watched:
            try:
                await self.refresh_now()
                failures = 0
            except TwilioError as error:
                failures += 1
                logs.event(log, "queue_watch.failed", error=type(error).__name__)
            await asyncio.sleep(self._refresh * min(2**failures, 12))

    async def _refresh_once(self) -> None:
        tasks = await self._flex.waiting_tasks(self._workspace)
        places = _places(tasks)
        watched_queues = {places[sid][0] for sid in self._watched if sid in places}
        available: dict[str, int] = {}
        for queue in sorted(watched_queues):
            available[queue] = (
                await self._flex.queue_now(self._workspace, queue)
            ).available_workers
        history = dict(self._snapshot.history)
        for queue in sorted(watched_queues):
            known = history.get(queue)
            if known is None or self._clock() - known[0] >= self._history_every:
                past = await self._flex.queue_history(
                    self._workspace, queue, HISTORY_MINUTES, WAIT_THRESHOLDS
                )
                history[queue] = (self._clock(), expected_wait(past))
        self._snapshot = _Snapshot(self._clock(), places, available, history)
        self.changed.set()
        self.changed = asyncio.Event()

    async def close(self) -> None:
        for task in (self._runner, self._refreshing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TwilioError):
                    await task


def _places(tasks: list[WaitingTask]) -> dict[str, tuple[str, int]]:
    """Each conversation's queue and position there (tasks come in offer order)."""
    counted: Counter[str] = Counter()
    places: dict[str, tuple[str, int]] = {}
    for task in tasks:
        counted[task.queue_sid] += 1
        if task.conversation_sid is not None and task.conversation_sid not in places:
            places[task.conversation_sid] = (task.queue_sid, counted[task.queue_sid])
    return places
