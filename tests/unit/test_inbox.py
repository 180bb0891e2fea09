"""Agent messages coming in: a gap is read, a repeat is harmless, a close is heard."""

from __future__ import annotations

import asyncio

from tests.unit.conftest import Core, CoreFactory


async def _opened(core: Core, username: str = "ann") -> tuple[str, str]:
    who = core.identity(username)
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    sid = core.twilio.only().sid
    assert await core.webhook_for(sid, 0)  # the user's own message moves the sync mark
    return who, sid


async def test_a_missed_webhook_is_read_from_twilio(core: Core) -> None:
    who, sid = await _opened(core)
    core.twilio.agent_says(sid, "one")
    core.twilio.agent_says(sid, "two")
    core.twilio.calls.clear()
    await core.webhook_for(sid, 2)  # the webhook for index 1 never came
    result = await core.wired.handoff.replies(who, 2)
    assert [r.body for r in result.replies] == ["one", "two"]
    assert "list_messages" in core.twilio.calls


async def test_a_reply_behind_a_gap_is_not_handed_out_before_the_gap_is_read(core: Core) -> None:
    who, sid = await _opened(core)
    core.twilio.agent_says(sid, "one")
    core.twilio.agent_says(sid, "two")
    core.twilio.fail("list_messages", times=1000)  # the read cannot happen yet
    await core.webhook_for(sid, 2)
    held = await core.wired.handoff.replies(who, 0)
    assert held.replies == []  # "two" is stored, but "one" is unknown: nothing yet
    core.twilio.heal()  # the reconcile that failed is retried, and reads the gap
    got: list[str] = []
    for _ in range(200):
        got += [r.body for r in (await core.wired.handoff.replies(who, 0)).replies]
        if len(got) == 2:
            break
        await asyncio.sleep(0.05)
    assert got == ["one", "two"]


async def test_a_webhook_delivered_twice_stores_and_hands_out_once(core: Core) -> None:
    who, sid = await _opened(core)
    core.twilio.agent_says(sid, "only once")
    assert await core.webhook_for(sid, 1)
    assert await core.webhook_for(sid, 1)
    first = await core.wired.handoff.replies(who, 0)
    again = await core.wired.handoff.replies(who, 0)
    assert [r.body for r in first.replies] == ["only once"]
    assert again.replies == []
    stored = core.wired.metrics.registry.get_sample_value(
        "flexbridge_agent_messages_received_total", {"source": "webhook"}
    )
    assert stored == 1


async def test_a_webhook_about_another_conversation_changes_nothing(core: Core) -> None:
    await _opened(core)
    assert not await core.closed_webhook("CH" + "f" * 32)


async def test_a_close_webhook_reads_the_last_replies_and_says_the_agent_closed(
    core: Core,
) -> None:
    who, sid = await _opened(core)
    core.twilio.agent_says(sid, "bye now")  # its webhook is lost
    core.twilio.close_by_agent(sid)
    assert await core.closed_webhook(sid)
    result = await core.wired.handoff.replies(who, 0)
    assert (result.outcome, result.status) == ("closed_by_agent", "closed")
    assert [r.body for r in result.replies] == ["bye now"]


async def test_a_conversation_gone_from_twilio_is_lost(core: Core) -> None:
    who, sid = await _opened(core)
    core.twilio.delete(sid)
    row = await core.wired.store.conversation_by_sid(sid)
    assert row is not None
    await core.wired.handoff.inbox.reconcile(row.id)
    result = await core.wired.handoff.replies(who, 0)
    assert result.outcome == "conversation_lost"


async def test_a_close_announced_to_nobody_is_learnt_by_the_reconcile(
    make_core: CoreFactory,
) -> None:
    """Twilio sends no conversation webhook for a REST close nobody asked it to announce
    (Flex closing through the Interaction): a waiting call must not wait forever."""
    async with make_core(REPLY_WAIT_SECONDS="30", RECONCILE_INTERVAL_SECONDS="0.2") as core:
        who, sid = await _opened(core)
        waiting = asyncio.ensure_future(core.wired.handoff.replies(who, 30))
        await asyncio.sleep(0.1)
        core.twilio.close_by_agent(sid)  # and no webhook at all
        result = await asyncio.wait_for(waiting, 10)
        assert (result.outcome, result.status) == ("closed_by_agent", "closed")
        assert "fetch_conversation" in core.twilio.calls


async def test_a_timer_close_is_put_down_to_the_timer(core: Core) -> None:
    who, sid = await _opened(core)
    core.twilio.close_by_agent(sid)
    await core.wired.handoff.inbox.on_event(
        {
            "EventType": "onConversationStateUpdated",
            "ConversationSid": sid,
            "StateFrom": "inactive",
            "StateTo": "closed",
            "Reason": "TIMER",
        }
    )
    assert (await core.wired.handoff.replies(who, 0)).outcome == "closed_by_timeout"


async def test_an_index_no_message_can_have_is_not_stored(core: Core) -> None:
    who, sid = await _opened(core)
    for index in ("9223372036854775808", "-1", str(2**31)):
        assert await core.wired.handoff.inbox.on_event(
            {
                "EventType": "onMessageAdded",
                "ConversationSid": sid,
                "MessageSid": "IM" + "0" * 32,
                "Index": index,
                "Author": "agent.alex",
                "Body": "forged",
            }
        )
    result = await core.wired.handoff.replies(who, 0.2)
    assert result.replies == []
