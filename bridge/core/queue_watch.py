"""Where waiting users stand in Flex's queues, read from TaskRouter for all of them at once.

One reader for the whole deployment, shared by every waiter: while anyone waits, every
few seconds one process (a one-at-a-time job) lists the workspace's waiting tasks
(pending and offered, in TaskRouter's offer order; one call a page), reads the real-time
statistics of each queue holding an open conversation's task and now and then its
cumulative statistics (the wait history), and posts the figures on the coordination's
board; every other process reads them from there. Twilio calls grow with queues, not
with users or processes. A list of tasks carries no attributes, so a conversation's task
is known by its SID: from the workspace's events, or looked up once by the process its
user waits on, by the conversation's SID, and remembered in the store. Unknown is None:
no position for a conversation whose task is not in the list, no expected wait without
enough history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from bridge import logs
from bridge.conversations import QueueHistory, TwilioError, TwilioFlex, WaitingTask
from bridge.coordination import Board, Jobs

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
    """The middle half of the waits before acceptance (from the threshold counts), kept
    within the shortest and longest seen when TaskRouter gave them; None with fewer than
    MIN_HISTORY accepted tasks."""
    if history.accepted < MIN_HISTORY or not history.accepted_below:
        return None
    splits = sorted(history.accepted_below.items())
    quarter, three_quarters = history.accepted / 4, history.accepted * 3 / 4
    low = max([t for t, below in splits if below <= quarter], default=0)
    high = min([t for t, below in splits if below >= three_quarters], default=None)
    if history.shortest_wait is not None:
        low = max(low, history.shortest_wait)
    if history.longest_wait is not None:
        high = history.longest_wait if high is None else min(high, history.longest_wait)
    if high is None:  # most waited longer than the top threshold, and no longest given
        high = splits[-1][0]
    return (min(low, high), max(low, high))


@dataclass
class _Snapshot:
    at: float = float("-inf")
    #: task SID → (queue SID, position in that queue)
    places: dict[str, tuple[str, int]] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)  # queue SID → agents available
    #: queue SID → (when read, expected wait)
    history: dict[str, tuple[float, tuple[int, int] | None]] = field(default_factory=dict)

    def to_text(self) -> str:
        """For the board: times as ages (another process's clock is another clock)."""
        return json.dumps(
            {
                "places": self.places,
                "available": self.available,
                "history": {q: [self.at - at, wait] for q, (at, wait) in self.history.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_text(cls, text: str, at: float) -> _Snapshot:
        """Figures posted by a process, taken ``at`` on this process's clock."""
        posted = json.loads(text)
        return cls(
            at,
            {task: (queue, position) for task, (queue, position) in posted["places"].items()},
            posted["available"],
            {
                queue: (at - age, (wait[0], wait[1]) if wait else None)
                for queue, (age, wait) in posted["history"].items()
            },
        )


#: Called with (conversation SID, task SID) when a lookup found a conversation's task.
Remember = Callable[[str, str], Awaitable[None]]
#: The tasks of every open conversation, whichever process its user waits on.
OpenTasks = Callable[[], Awaitable[Collection[str]]]
#: The job's name, and where its figures are posted.
JOB = "queue-figures"
#: Conversations whose task is looked up in one refresh at most, and how many at once.
LOOKUPS_PER_REFRESH = 100
LOOKUPS_AT_ONCE = 8


class QueueWatch:
    def __init__(
        self,
        flex: TwilioFlex,
        workspace_sid: str,
        jobs: Jobs,
        board: Board,
        *,
        refresh_seconds: float = 5.0,
        remember: Remember | None = None,
        open_tasks: OpenTasks | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``remember`` keeps a task SID found by a lookup, so it is looked up once;
        ``open_tasks`` says which queues matter to other processes' waiters too."""
        self._flex = flex
        self._workspace = workspace_sid
        self._jobs = jobs
        self._board = board
        self._open_tasks = open_tasks
        self._refresh = refresh_seconds
        self._history_every = refresh_seconds * HISTORY_EVERY_REFRESHES
        self._remember = remember
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._watched: Counter[str] = Counter()
        #: Watched conversations' tasks, and when a lookup last found none.
        self._tasks: dict[str, str] = {}
        self._not_found: dict[str, float] = {}
        self._snapshot = _Snapshot()
        self._runner: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._staffed: tuple[float, bool | None] = (float("-inf"), None)
        self._staffing: asyncio.Task[bool | None] | None = None

    @property
    def refresh_seconds(self) -> float:
        return self._refresh

    # --- who waits --------------------------------------------------------------------

    def watch(self, conversation_sid: str, task_sid: str | None = None) -> None:
        """Someone waits on this conversation (routed by ``task_sid``, when known): keep
        the figures fresh while they do."""
        self._watched[conversation_sid] += 1
        if task_sid is not None:
            self._tasks[conversation_sid] = task_sid
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="queue-watch")

    def unwatch(self, conversation_sid: str) -> None:
        self._watched[conversation_sid] -= 1
        if self._watched[conversation_sid] <= 0:
            del self._watched[conversation_sid]
            self._tasks.pop(conversation_sid, None)
            self._not_found.pop(conversation_sid, None)

    # --- what it knows ----------------------------------------------------------------

    def standing(
        self, conversation_sid: str | None, task_sid: str | None = None
    ) -> QueueStanding | None:
        """The place of the conversation's task, from figures at most a few refreshes old
        (None when there are none, or its task is not known or not waiting)."""
        snap = self._snapshot
        if conversation_sid is None or self._clock() - snap.at > 3 * self._refresh:
            return None
        place = snap.places.get(task_sid or self._tasks.get(conversation_sid, ""))
        if place is None:
            return None
        queue, position = place
        known = snap.history.get(queue)
        return QueueStanding(position, snap.available.get(queue), known[1] if known else None)

    async def any_agent_available(self) -> bool | None:
        """Whether any agent is available now (None: Twilio could not say), asked at
        most once a refresh interval (one call at a time) however many conversations open."""
        at, staffed = self._staffed
        if self._clock() - at < self._refresh:
            return staffed
        if self._staffing is None or self._staffing.done():
            self._staffing = asyncio.create_task(self._ask_staffed())
        return await asyncio.shield(self._staffing)

    async def _ask_staffed(self) -> bool | None:
        try:
            staffed: bool | None = await self._flex.any_agent_available(self._workspace)
        except TwilioError:
            staffed = None
        self._staffed = (self._clock(), staffed)
        return staffed

    async def _refresh_if_stale(self) -> None:
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
                await self._refresh_if_stale()
                failures = 0
            except Exception as error:
                failures += 1
                logs.event(log, "queue_watch.failed", error=type(error).__name__)
            await asyncio.sleep(self._refresh * min(2**failures, 12))

    async def _refresh_once(self) -> None:
        await self._find_tasks()
        if await self._adopt(fresh_only=True):
            return
        async with self._jobs.exclusive(JOB) as mine:
            if not mine:
                # Another process is reading now and posts in a moment; till then, the last.
                await self._adopt(fresh_only=False)
            elif not await self._adopt(fresh_only=True):  # none posted while we asked
                await self._read_figures()
                await self._board.post(JOB, self._snapshot.to_text())

    async def _adopt(self, *, fresh_only: bool) -> bool:
        """Take the figures another process posted (only ones under a refresh interval
        old with ``fresh_only``); True if taken."""
        posted = await self._board.read(JOB)
        if posted is None or (fresh_only and posted.age_seconds >= self._refresh):
            return False
        at = self._clock() - posted.age_seconds
        if at > self._snapshot.at:
            self._snapshot = _Snapshot.from_text(posted.text, at)
        return True

    async def _read_figures(self) -> None:
        tasks = await self._flex.waiting_tasks(self._workspace)
        places = _places(tasks)
        mine = {self._tasks.get(sid, "") for sid in list(self._watched)}
        if self._open_tasks is not None:
            mine.update(await self._open_tasks())
        watched_queues = {places[task][0] for task in mine if task in places}
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

    async def _find_tasks(self) -> None:
        """Watched conversations whose task is not known: looked up by the conversation's
        SID (Twilio's task lists carry no attributes), once each, and remembered; one that
        has none waiting is asked again a minute later."""
        now = self._clock()
        unknown = [
            sid
            for sid in list(self._watched)
            if sid not in self._tasks
            and now - self._not_found.get(sid, float("-inf")) >= self._history_every
        ][:LOOKUPS_PER_REFRESH]
        limit = asyncio.Semaphore(LOOKUPS_AT_ONCE)

        async def find(conversation_sid: str) -> None:
            async with limit:
                found = await self._flex.conversation_tasks(
                    self._workspace, conversation_sid, ("pending", "reserved")
                )
            if not found:
                self._not_found[conversation_sid] = self._clock()
                return
            task_sid = found[-1].sid  # the newest
            if conversation_sid in self._watched:
                self._tasks[conversation_sid] = task_sid
            if self._remember is not None:
                await self._remember(conversation_sid, task_sid)

        await asyncio.gather(*(find(sid) for sid in unknown))

    async def close(self) -> None:
        for task in (self._runner, self._refreshing, self._staffing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TwilioError):
                    await task


def _places(tasks: list[WaitingTask]) -> dict[str, tuple[str, int]]:
    """Each task's queue and position there (tasks come in offer order)."""
    counted: Counter[str] = Counter()
    places: dict[str, tuple[str, int]] = {}
    for task in tasks:
        counted[task.queue_sid] += 1
        places[task.sid] = (task.queue_sid, counted[task.queue_sid])
    return places
