"""Background tasks: working through many items a few at a time, and stopping tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_bounded(
    items: Iterable[T],
    work: Callable[[T], Awaitable[None]],
    limit: int,
    *,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``work`` on each item, at most ``limit`` at once, in the items' order.

    Starts no new item once ``stopping()`` is true, and returns when every started one
    has finished. An exception from ``work`` propagates once the others are done.
    """
    in_flight: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def collect(done: set[asyncio.Task[None]]) -> None:
        failures.extend(exc for task in done if (exc := task.exception()) is not None)

    try:
        for item in items:
            while len(in_flight) >= limit:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                collect(done)
            if stopping():
                break
            in_flight.add(asyncio.ensure_future(work(item)))
        if in_flight:
            done, _ = await asyncio.wait(in_flight)
            collect(done)
    except asyncio.CancelledError:
        for task in in_flight:
            task.cancel()
        raise
    if failures:
        raise failures[0]


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel each task, then wait until every one has finished."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
