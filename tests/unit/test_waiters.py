"""Waiting for a reply: woken by the webhook, bounded by the wait, answered at shutdown."""

from __future__ import annotations

import asyncio
import json

from bridge.core.inbox import agent_display_name
from bridge.notes import Vocabulary, worded
from tests.unit.conftest import Core, CoreFactory


async def test_a_waiting_call_is_woken_by_the_reply(make_core: CoreFactory) -> None:
    async with make_core(REPLY_WAIT_SECONDS="30") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        sid = core.twilio.only().sid
        await core.webhook_for(sid, 0)
        waiting = asyncio.ensure_future(core.wired.handoff.replies(who, 30))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        core.twilio.agent_says(sid, "here I am")
        await core.webhook_for(sid, 1)
        # Well inside the 30 s wait: it was woken, it did not time out.
        result = await asyncio.wait_for(waiting, 10)
        assert result.outcome == "answered"
        assert [r.body for r in result.replies] == ["here I am"]


async def test_a_wait_with_no_reply_ends_waiting(core: Core) -> None:
    who = core.identity("ann")
    await core.wired.handoff.send(who, "hello", wait_seconds=0)
    result = await core.wired.handoff.replies(who, 0.2)
    assert (result.outcome, result.status, result.replies) == ("waiting", "waiting", [])


async def test_shutdown_answers_every_waiter_at_once(make_core: CoreFactory) -> None:
    async with make_core(REPLY_WAIT_SECONDS="30") as core:
        users = [core.identity(name) for name in ("ann", "bob", "cy")]
        for who in users:
            await core.wired.handoff.send(who, "hello", wait_seconds=0)
        waiting = [asyncio.ensure_future(core.wired.handoff.replies(who, 30)) for who in users]
        await asyncio.sleep(0.1)
        assert not any(task.done() for task in waiting)
        core.wired.handoff.begin_shutdown()
        results = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        assert [r.outcome for r in results] == ["waiting"] * 3


async def test_nobody_has_a_conversation_yet(core: Core) -> None:
    result = await core.wired.handoff.replies(core.identity("nobody"), 0)
    assert (result.outcome, result.status) == ("none_yet", "closed")
    ended = await core.wired.handoff.end(core.identity("nobody"))
    assert ended.outcome == "none_yet"


async def test_a_waiting_call_returns_when_an_agent_takes_the_conversation(
    make_core: CoreFactory,
) -> None:
    async with make_core(REPLY_WAIT_SECONDS="30") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        sid = core.twilio.only().sid
        queued = await core.wired.handoff.replies(who, 0)
        assert queued.handoff.state == "queued" and queued.handoff.agent_name is None
        waiting = asyncio.ensure_future(core.wired.handoff.replies(who, 30))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        accepted = {
            "EventType": "reservation.accepted",
            "TaskAttributes": json.dumps({"conversationSid": sid}),
            "WorkerName": "alex@example.com",
            "WorkerAttributes": json.dumps({"full_name": "  Alex   Doe "}),
        }
        assert await core.wired.handoff.inbox.on_task_event(accepted)
        result = await asyncio.wait_for(waiting, 10)
        assert (result.outcome, result.status, result.replies) == ("agent_joined", "waiting", [])
        assert result.handoff.state == "with_agent"
        assert result.handoff.agent_name == "Alex Doe"
        # The same news twice does not end the next wait early.
        assert await core.wired.handoff.inbox.on_task_event(accepted)
        again = await core.wired.handoff.replies(who, 0.3)
        assert again.outcome == "waiting" and again.handoff.agent_name == "Alex Doe"
        # No longer "no agent has replied yet": the note says who has the conversation.
        said = worded(
            again, Vocabulary(send="sendMessage", replies="getReplies", choose="chooseNextStep")
        )["note"]
        assert isinstance(said, str)
        assert said.startswith("Alex Doe from the support team has the conversation")
        assert "getReplies" in said
        # Without a full_name, the worker's name.
        assert agent_display_name({"WorkerName": "sam", "WorkerAttributes": "{}"}) == "sam"
        assert agent_display_name({"WorkerAttributes": "not json"}) is None
