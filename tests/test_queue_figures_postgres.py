"""Queue figures read once for the whole deployment: two bridges (stand-ins for two
processes: their own coordination, one PostgreSQL, one fake Twilio) whose users wait at
the same time make one reader's worth of TaskRouter calls, and each user gets their own
place from the figures, whichever bridge they wait on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bridge.config import load_settings
from bridge.identity import for_username
from bridge.services import Services, build_services
from tests.fakes import FakeTwilio
from tests.unit.conftest import core_settings

REFRESH = 0.1


@pytest.fixture
async def two_bridges(
    tmp_path: Path, postgres_url: str
) -> AsyncIterator[tuple[Services, Services, FakeTwilio]]:
    twilio = FakeTwilio()
    settings = load_settings(
        {
            **core_settings(tmp_path),
            "DATABASE_URL": postgres_url,
            "ROUTING": "interactions",
            "QUEUE_REFRESH_SECONDS": str(REFRESH),
        }
    )
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(build_services(settings, twilio=twilio))
        two = await stack.enter_async_context(build_services(settings, twilio=twilio))
        yield one, two, twilio


async def test_one_reader_serves_the_waiters_of_every_process(
    two_bridges: tuple[Services, Services, FakeTwilio],
) -> None:
    one, two, twilio = two_bridges
    twilio.agents_available = 3
    users = [for_username(one.secret, name) for name in ("ann", "bob", "cy", "di")]
    for who in users:
        await one.handoff.send(who, "hello", wait_seconds=0)
    twilio.calls.clear()
    started = time.perf_counter()
    # ann and cy wait on one process, bob and di on the other, all at once.
    results = await asyncio.gather(
        *((one if n % 2 == 0 else two).handoff.replies(who, 2.0) for n, who in enumerate(users))
    )
    elapsed = time.perf_counter() - started
    places = [r.handoff.queue.position if r.handoff.queue else None for r in results]
    assert places == [1, 2, 3, 4]
    assert all(r.handoff.queue and r.handoff.queue.agents_available == 3 for r in results)
    lists = twilio.calls.count("list_waiting_tasks")
    # One reader for both: at most one list a refresh interval (two would make twice that).
    assert 0 < lists <= elapsed / REFRESH + 2
    assert twilio.calls.count("queue_real_time_statistics") <= lists + 1
