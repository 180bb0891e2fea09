"""Catching up with Twilio by reading it: at start-up for every open conversation, then
now and then for the conversations somebody waits on, in case a webhook went missing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bridge.backoff import backoff
from bridge.conversations import TwilioUnavailable
from bridge.coordination import Jobs
from bridge.core.inbox import Inbox
from bridge.store import Store
from bridge.tasks import cancel_and_wait, run_bounded

#: Conversations read at once at start-up (the inbox caps the Twilio reads in flight).
START_UP_READS = 16
START_UP_ATTEMPTS = 30


class Reconciler:
    def __init__(
        self,
        store: Store,
        inbox: Inbox,
        jobs: Jobs,
        *,
        waited_on: Callable[[], set[int]],
        interval_seconds: float,
        periodic: bool,
    ) -> None:
        """``periodic``: also read now and then (with webhooks; without them the poller
        reads what is waited on)."""
        self._store = store
        self._inbox = inbox
        self._jobs = jobs
        self._waited_on = waited_on
        self._interval = interval_seconds
        self._periodic = periodic
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._at_start()))
        if self._periodic:
            self._tasks.append(loop.create_task(self._periodically()))

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)

    async def _at_start(self) -> None:
        """Catch up on whatever arrived while the bridge was down."""
        for attempt in range(1, START_UP_ATTEMPTS + 1):
            try:
                async with self._jobs.exclusive("reconcile-at-start") as mine:
                    if mine:
                        rows = await self._store.open_conversations()
                        await run_bounded(
                            [row.id for row in rows], self._inbox.reconcile, START_UP_READS
                        )
                return
            except TwilioUnavailable:
                # Also the normal case for the embedded sandbox, which starts listening
                # only after start-up completes.
                await asyncio.sleep(backoff(attempt, 2.0, 10.0))

    async def _periodically(self) -> None:
        """Read the conversations someone waits on (messages and state: a close announced
        to nobody is learnt here), and any holding replies behind a gap (messages)."""
        while True:
            await asyncio.sleep(self._interval)
            waited_on = self._waited_on()
            for conversation_id in waited_on:
                self._inbox.schedule_reconcile(conversation_id, state=True)
            for conversation_id in set(await self._store.conversations_with_gaps()) - waited_on:
                self._inbox.schedule_reconcile(conversation_id)
