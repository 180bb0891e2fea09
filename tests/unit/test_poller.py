"""The poller's pace with webhooks off: fast after activity, slower while quiet, the state
read seldom, and every read taken from one allowance per account. Reads are counted with
the real Poller and the real in-memory rate limits; only Twilio is replaced."""

from __future__ import annotations

import asyncio
import itertools
import time

from bridge.coordination.local import LocalRateLimits
from bridge.core.poller import Poller, PollPace


class Reads:
    """Stands in for the inbox's reads: records when each happened."""

    def __init__(self) -> None:
        self.messages: list[float] = []
        self.states: list[float] = []
        self.new_at: set[int] = set()  # the message reads (by number) that find something

    async def read_messages(self, conversation_id: int) -> int:
        self.messages.append(time.monotonic())
        return 1 if len(self.messages) in self.new_at else 0

    async def read_state(self, conversation_id: int) -> None:
        self.states.append(time.monotonic())


def test_the_interval_grows_with_quiet_within_bounds() -> None:
    pace = PollPace(fastest=2.0, slowest=10.0)
    assert pace.interval(0) == 2.0
    assert pace.interval(8) == 2.0
    assert pace.interval(20) == 5.0
    assert pace.interval(600) == 10.0


async def test_a_quiet_conversation_is_read_less_and_less_often() -> None:
    reads = Reads()
    pace = PollPace(fastest=0.02, slowest=0.12, state_every=0.3, calls_per_minute=100_000)
    poller = Poller(reads.read_messages, reads.read_state, LocalRateLimits(), pace)
    poller.watch(1)
    await asyncio.sleep(1.2)
    poller.unwatch(1)
    await poller.close()
    gaps = [b - a for a, b in zip(reads.messages, reads.messages[1:], strict=False)]
    assert gaps[0] < 0.06  # fast at first
    assert min(gaps[-3:]) >= 0.1  # then at the slowest pace
    # Every 0.02 s for 1.2 s would be 60 reads.
    assert len(reads.messages) < 25
    # The state: at the first poll, then every 0.3 s.
    assert 3 <= len(reads.states) <= 6


async def test_a_new_message_brings_the_fast_pace_back() -> None:
    reads = Reads()
    pace = PollPace(fastest=0.02, slowest=0.2, state_every=10, calls_per_minute=100_000)
    poller = Poller(reads.read_messages, reads.read_state, LocalRateLimits(), pace)
    poller.watch(1)
    await asyncio.sleep(1.0)  # quiet: at the slowest pace by now
    before = len(reads.messages)
    reads.new_at = {before + 1}  # the next read finds a message
    await asyncio.sleep(0.3)
    poller.unwatch(1)
    await poller.close()
    after = reads.messages[before:]
    assert after[1] - after[0] < 0.06, "the read after a new message is not fast again"


async def test_every_conversation_shares_one_allowance() -> None:
    reads = Reads()
    # 6 reads per minute, so a bucket of 6: after it, one read every 10 s.
    pace = PollPace(fastest=0.01, slowest=0.01, state_every=0.01, calls_per_minute=6)
    poller = Poller(reads.read_messages, reads.read_state, LocalRateLimits(), pace)
    for conversation in range(5):
        poller.watch(conversation)
    await asyncio.sleep(0.5)
    for conversation in range(5):
        poller.unwatch(conversation)
    await poller.close()
    assert len(reads.messages) + len(reads.states) == 6


async def test_read_now_skips_a_read_made_within_the_fastest_interval() -> None:
    reads = Reads()
    pace = PollPace(fastest=5.0, slowest=10.0, calls_per_minute=100_000)
    poller = Poller(reads.read_messages, reads.read_state, LocalRateLimits(), pace)
    await poller.read_now(1)
    await poller.read_now(1)
    assert len(reads.messages) == 1
    poller.watch(1)  # the poll waits for its turn instead of reading at once again
    await asyncio.sleep(0.1)
    poller.unwatch(1)
    await poller.close()
    assert len(reads.messages) == 1


async def test_back_to_back_short_waits_still_read_the_state() -> None:
    """Calls that each end before the next poll (wait=0.2, say) must still see a close."""
    reads = Reads()
    pace = PollPace(fastest=0.05, slowest=1.0, state_every=0.2, calls_per_minute=100_000)
    poller = Poller(reads.read_messages, reads.read_state, LocalRateLimits(), pace)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        await poller.read_now(1)
        await asyncio.sleep(0.06)
    await poller.close()
    assert 4 <= len(reads.states) <= 7


async def test_each_read_comes_a_quarter_of_the_quiet_time_after_the_last() -> None:
    reads = Reads()
    pace = PollPace(fastest=0.02, slowest=5.0, state_every=100, calls_per_minute=100_000)
    poller = Poller(reads.read_messages, reads.read_state, LocalRateLimits(), pace)
    started = time.monotonic()
    poller.watch(1)
    await asyncio.sleep(2.0)
    poller.unwatch(1)
    await poller.close()
    quiet_reads = [t for t in reads.messages if t - started > 0.3]
    for last, following in itertools.pairwise(quiet_reads):
        expected = (last - started) / 4
        assert expected - 0.02 <= following - last <= expected + 0.06, last - started
