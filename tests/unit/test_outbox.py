"""User messages going out: nothing posted twice, nothing lost, whatever Twilio does."""

from __future__ import annotations

import json

from tests.unit.conftest import Core


async def test_a_post_that_reached_twilio_before_failing_is_not_posted_again(core: Core) -> None:
    who = core.identity("ann")
    core.twilio.fail("post_message", when="after")  # Twilio took it; the answer was lost
    result = await core.wired.handoff.send(who, "hello", wait_seconds=0)
    assert result.outcome == "waiting"
    assert core.twilio.bodies(core.twilio.only().sid) == ["hello"]
    assert core.twilio.calls.count("post_message") == 1
    assert "list_messages" in core.twilio.calls  # the retry looked before posting


async def test_only_the_missing_parts_of_a_long_message_are_posted_again(core: Core) -> None:
    who = core.identity("ann")
    text = "x" * 1600 + "y" * 1600 + "z" * 100
    await core.wired.handoff.send(who, "first", "summary", wait_seconds=0)
    sid = core.twilio.only().sid
    core.twilio.fail("post_message", pass_first=1)  # part 1 goes through, part 2 fails
    await core.wired.handoff.send(who, text, wait_seconds=0)
    messages = core.twilio.conversations[sid].messages
    assert [m.body for m in messages][:2] == ["Context from the assistant: summary", "first"]
    parts = [json.loads(m.attributes)["flex_bridge"]["part"] for m in messages[2:]]
    assert parts == [1, 2, 3]
    assert "".join(m.body for m in messages[2:]) == text


async def test_a_create_that_reached_twilio_is_finished_not_repeated(core: Core) -> None:
    who = core.identity("ann")
    core.twilio.fail("create_conversation", when="after")
    await core.wired.handoff.send(who, "hello", "context", wait_seconds=0)
    conversation = core.twilio.only()
    assert conversation.participants == [who]
    assert sorted(conversation.webhooks) == ["studio", "webhook"]
    assert [m.body for m in conversation.messages] == [
        "Context from the assistant: context",
        "hello",
    ]


async def test_a_closed_conversation_is_replaced_and_the_message_kept(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "first", wait_seconds=0)
    old = core.twilio.only().sid
    core.twilio.close_by_agent(old)  # closed in Flex; no webhook reached the bridge
    result = await core.wired.handoff.send(who, "second", wait_seconds=0)
    assert result.outcome == "waiting"
    new = next(sid for sid in core.twilio.conversations if sid != old)
    assert core.twilio.bodies(new) == ["second"]
    closed = await core.wired.store.conversation_by_sid(old)
    assert closed is not None and (closed.state, closed.closed_by) == ("closed", "agent")


async def test_a_vanished_conversation_is_replaced_and_counted_lost(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "first", wait_seconds=0)
    old = core.twilio.only().sid
    core.twilio.delete(old)
    await core.wired.handoff.send(who, "second", wait_seconds=0)
    assert core.twilio.bodies(core.twilio.only().sid) == ["second"]
    lost = await core.wired.store.conversation_by_sid(old)
    assert lost is not None and lost.closed_by == "lost"


async def test_twilio_down_queues_the_message_and_the_next_send_delivers_both(core: Core) -> None:
    who = core.identity("ann")
    core.twilio.fail("create_conversation", times=1000)
    queued = await core.wired.handoff.send(who, "first", wait_seconds=0)
    assert (queued.outcome, queued.status) == ("queued", "waiting")
    assert [row.body for row in await core.wired.store.pending_messages(who)] == ["first"]
    assert core.twilio.conversations == {}

    core.twilio.heal()
    result = await core.wired.handoff.send(who, "second", wait_seconds=0)
    assert result.outcome == "waiting"
    assert core.twilio.bodies(core.twilio.only().sid) == ["first", "second"]
    assert await core.wired.store.pending_messages(who) == []
