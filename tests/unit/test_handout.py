"""Replies handed out under a lease: delivered once the answer reached its caller, handed
out again (same id) when it did not; answers that fit; waiting that is bounded."""

from __future__ import annotations

import asyncio
import json

import pytest

from bridge.core.errors import Busy, TooManyWaiting
from bridge.core.handout import MAX_ANSWER_CHARS
from tests.unit.conftest import Core, CoreFactory


async def _opened_with_replies(core: Core, *bodies: str) -> tuple[str, str]:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    sid = core.twilio.only().sid
    await core.webhook_for(sid, 0)
    for body in bodies:
        message = core.twilio.agent_says(sid, body)
        await core.webhook_for(sid, message.index)
    return who, sid


async def test_a_reply_whose_answer_never_arrived_is_handed_out_again(core: Core) -> None:
    who, _ = await _opened_with_replies(core, "the answer")
    lost = await core.wired.handoff.replies(who, 0)
    await core.wired.handoff.release(who, lost)  # the caller went away
    again = await core.wired.handoff.replies(who, 0)
    assert [r.id for r in again.replies] == [r.id for r in lost.replies]
    await core.wired.handoff.confirm(again)
    assert (await core.wired.handoff.replies(who, 0)).replies == []
    delivered = core.wired.metrics.registry.get_sample_value("flexbridge_replies_delivered_total")
    assert delivered == 1


async def test_after_gives_a_caller_everything_past_what_it_saw(core: Core) -> None:
    who, sid = await _opened_with_replies(core, "one", "two")
    first = await core.wired.handoff.replies(who, 0)
    await core.wired.handoff.confirm(first)  # written to a connection that then broke
    seen = first.replies[0].id  # the caller only ever showed "one"
    retry = await core.wired.handoff.replies(who, 0, after=seen)
    assert [r.body for r in retry.replies] == ["two"]
    message = core.twilio.agent_says(sid, "three")
    await core.webhook_for(sid, message.index)
    later = await core.wired.handoff.replies(who, 0, after=retry.replies[-1].id)
    assert [r.body for r in later.replies] == ["three"]


async def test_an_answer_fits_the_assistants_limit_and_says_more_are_waiting(
    core: Core,
) -> None:
    who, _ = await _opened_with_replies(core, *[f"{n:04d}" + "x" * 1596 for n in range(80)])
    got: list[str] = []
    answers = 0
    while True:
        result = await core.wired.handoff.replies(who, 0)
        await core.wired.handoff.confirm(result)
        size = len(
            json.dumps([{"id": r.id, "body": r.body, "sent_at": r.sent_at} for r in result.replies])
        )
        assert size <= MAX_ANSWER_CHARS
        got += [r.body[:4] for r in result.replies]
        answers += 1
        if not result.more:
            break
    assert answers == 2
    assert got == [f"{n:04d}" for n in range(80)]  # all of them, in order, once


async def test_one_user_cannot_hold_many_waits(make_core: CoreFactory) -> None:
    async with make_core(REPLY_WAIT_SECONDS="30", MAX_WAITING_PER_USER="2") as core:
        who, _ = await _opened_with_replies(core)
        waits = [asyncio.ensure_future(core.wired.handoff.replies(who, 30)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(TooManyWaiting):
            await core.wired.handoff.replies(who, 30)
        assert (await core.wired.handoff.replies(who, 0)).outcome == "waiting"  # a look is fine
        other = core.identity("bob")
        await core.wired.handoff.send(other, "hi", wait_seconds=0)
        other_wait = asyncio.ensure_future(core.wired.handoff.replies(other, 30))
        await asyncio.sleep(0.05)
        assert not other_wait.done()  # another user still waits
        core.wired.handoff.begin_shutdown()
        await asyncio.gather(*waits, other_wait)


async def test_when_every_waiting_place_is_taken_calls_look_without_waiting(
    make_core: CoreFactory,
) -> None:
    async with make_core(REPLY_WAIT_SECONDS="30", MAX_WAITING_CALLS="1") as core:
        first, second = core.identity("ann"), core.identity("bob")
        for who in (first, second):
            await core.wired.handoff.send(who, "hi", wait_seconds=0)
        holding = asyncio.ensure_future(core.wired.handoff.replies(first, 30))
        await asyncio.sleep(0.05)
        quick = await asyncio.wait_for(core.wired.handoff.replies(second, 30), 5)
        assert quick.outcome == "waiting"
        core.wired.handoff.begin_shutdown()
        await holding


async def test_new_conversations_are_rate_limited_across_users(make_core: CoreFactory) -> None:
    async with make_core(NEW_CONVERSATIONS_PER_MINUTE="2") as core:
        for name in ("a", "b"):
            await core.wired.handoff.send(core.identity(name), "hi", wait_seconds=0)
        with pytest.raises(Busy) as refused:
            await core.wired.handoff.send(core.identity("c"), "hi", wait_seconds=0)
        assert refused.value.retry_after >= 1
        assert len(core.twilio.conversations) == 2
        # A user with an open conversation is not held up.
        await core.wired.handoff.send(core.identity("a"), "again", wait_seconds=0)
