"""The core's checks and outcomes, the same for every front door."""

from __future__ import annotations

import asyncio
import math

import pytest

from bridge.conversations import TwilioUnavailable
from bridge.core.errors import (
    ContextTooLong,
    HandoffError,
    InvalidContext,
    InvalidMessage,
    InvalidWait,
    MessageTooLong,
    RateLimited,
)
from tests.unit.conftest import Core, CoreFactory


@pytest.mark.parametrize(
    ("message", "context", "refusal"),
    [
        ("", None, InvalidMessage),
        ("  \n\t", None, InvalidMessage),
        (None, None, InvalidMessage),
        (42, None, InvalidMessage),
        ("x" * 8001, None, MessageTooLong),
        ("hi", 7, InvalidContext),
        ("hi", "c" * 2001, ContextTooLong),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_kept_or_sent(
    core: Core, message: object, context: object, refusal: type[HandoffError]
) -> None:
    with pytest.raises(refusal):
        await core.wired.handoff.send(core.identity("ann"), message, context)
    assert await core.wired.store.pending_messages() == []
    assert core.twilio.calls == []


async def test_the_longest_message_is_accepted(core: Core) -> None:
    result = await core.wired.handoff.send(core.identity("ann"), "x" * 8000, wait_seconds=0)
    assert result.outcome == "waiting"
    assert len("".join(core.twilio.bodies(core.twilio.only().sid))) == 8000


async def test_the_rate_limit_counts_per_user(make_core: CoreFactory) -> None:
    async with make_core(RATE_LIMIT_PER_MINUTE="2") as core:
        ann, bob = core.identity("ann"), core.identity("bob")
        for _ in range(2):
            await core.wired.handoff.send(ann, "hi", wait_seconds=0)
        with pytest.raises(RateLimited) as refused:
            await core.wired.handoff.send(ann, "hi", wait_seconds=0)
        assert 1 <= refused.value.retry_after <= 30
        await core.wired.handoff.send(bob, "hi", wait_seconds=0)  # another user is not held


@pytest.mark.parametrize("wait", [-1.0, math.nan, math.inf])
async def test_a_wait_must_be_seconds(core: Core, wait: float) -> None:
    with pytest.raises(InvalidWait):
        await core.wired.handoff.replies(core.identity("ann"), wait)


async def test_the_user_ending_it_is_told_as_the_user_ending_it(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    sid = core.twilio.only().sid
    ended = await core.wired.handoff.end(who)
    assert (ended.outcome, ended.status) == ("closed_by_user", "closed")
    assert core.twilio.conversations[sid].state == "closed"
    # The close webhook that Twilio fires for it changes nothing.
    await core.closed_webhook(sid)
    assert (await core.wired.handoff.replies(who, 0)).outcome == "closed_by_user"


async def test_ending_refused_by_twilio_leaves_it_open_and_unattributed(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    sid = core.twilio.only().sid
    core.twilio.fail("close_conversation", error=TwilioUnavailable("close", "busy", 503))
    with pytest.raises(TwilioUnavailable):
        await core.wired.handoff.end(who)
    assert (await core.wired.handoff.replies(who, 0)).outcome == "waiting"
    core.twilio.close_by_agent(sid)
    await core.closed_webhook(sid)
    assert (await core.wired.handoff.replies(who, 0)).outcome == "closed_by_agent"


async def test_ending_what_the_agent_closed_unheard_says_the_agent_closed(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    core.twilio.close_by_agent(core.twilio.only().sid)  # no webhook reached the bridge
    assert (await core.wired.handoff.end(who)).outcome == "closed_by_agent"


async def test_a_close_whose_answer_was_lost_is_still_the_users(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    sid = core.twilio.only().sid
    core.twilio.fail("close_conversation", when="after")  # closed; the answer timed out
    with pytest.raises(TwilioUnavailable):
        await core.wired.handoff.end(who)
    await core.closed_webhook(sid)  # Twilio's webhook for that close
    assert (await core.wired.handoff.replies(who, 0)).outcome == "closed_by_user"


async def test_ending_again_after_a_lost_answer_is_still_the_users(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    core.twilio.fail("close_conversation", when="after")
    with pytest.raises(TwilioUnavailable):
        await core.wired.handoff.end(who)
    assert (await core.wired.handoff.end(who)).outcome == "closed_by_user"  # 50377 now


async def test_a_caller_giving_up_does_not_leave_the_close_half_done(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    sid = core.twilio.only().sid
    gate = core.twilio.hold("close_conversation")
    ending = asyncio.ensure_future(core.wired.handoff.end(who))
    await asyncio.sleep(0.05)
    ending.cancel()  # the HTTP client went away, or the MCP call was cancelled
    gate.set()
    for _ in range(100):
        row = await core.wired.store.conversation_by_sid(sid)
        if row is not None and row.state == "closed":
            break
        await asyncio.sleep(0.01)
    assert core.twilio.conversations[sid].state == "closed"
    assert (await core.wired.handoff.replies(who, 0)).outcome == "closed_by_user"
