"""run_bounded: many items, a few at a time."""

from __future__ import annotations

import asyncio

import pytest

from bridge.tasks import run_bounded


async def test_at_most_limit_at_once_in_order() -> None:
    running = 0
    most = 0
    started: list[int] = []

    async def work(item: int) -> None:
        nonlocal running, most
        started.append(item)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01 * (item % 3))
        running -= 1

    await run_bounded(range(40), work, limit=4)
    assert most == 4 and started == list(range(40)) and running == 0


async def test_stopping_starts_nothing_new_and_waits_for_the_started() -> None:
    finished: list[int] = []

    async def work(item: int) -> None:
        await asyncio.sleep(0.01)
        finished.append(item)

    await run_bounded(range(100), work, limit=2, stopping=lambda: len(finished) >= 3)
    assert 3 <= len(finished) <= 4 and finished == sorted(finished)


async def test_a_failure_propagates_after_the_rest() -> None:
    finished: list[int] = []

    async def work(item: int) -> None:
        if item == 2:
            raise ValueError(item)
        await asyncio.sleep(0.001)
        finished.append(item)

    with pytest.raises(ValueError):
        await run_bounded(range(10), work, limit=3)
    assert sorted(finished) == [0, 1, 3, 4, 5, 6, 7, 8, 9]
