"""Routing through Interactions, and what a task's end does to a conversation."""

from __future__ import annotations

import asyncio
import json

from bridge.config import SANDBOX_WORKSPACE_SID
from bridge.routing import TaskDetails
from bridge.routing.interactions import MAX_ATTRIBUTES_BYTES, task_attributes
from tests.unit.conftest import Core, CoreFactory

PROFILE = json.dumps({"name": "Ann Example", "email": "ann@example.com"})


def task_event(sid: str, event: str) -> dict[str, str]:
    return {
        "EventType": event,
        "WorkspaceSid": SANDBOX_WORKSPACE_SID,
        "TaskSid": "WT" + "1" * 32,
        "TaskAttributes": json.dumps({"conversationSid": sid}),
    }


async def settled(core: Core, who: str, outcome: str) -> str:
    """The outcome of /replies once the background read has run (or the last seen)."""
    seen = ""
    for _ in range(100):
        seen = (await core.wired.handoff.replies(who, 0)).outcome
        if seen == outcome:
            break
        await asyncio.sleep(0.02)
    return seen


# --- the Interaction ----------------------------------------------------------------------


async def test_interactions_routing_makes_one_task_with_the_context(make_core: CoreFactory) -> None:
    async with make_core(ROUTING="interactions") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", context="Wants a refund", wait_seconds=0)
        conversation = core.twilio.only()
        assert "studio" not in conversation.webhooks
        (task,) = core.twilio.tasks
        assert task.conversation_sid == conversation.sid
        assert task.attributes["flexBridge"] == {"user": who[:12], "context": "Wants a refund"}
        assert task.attributes["name"] == f"Assistant user {who[:8]}"
        assert "customers" not in task.attributes  # no profile without consent


async def test_a_lost_answer_to_the_interaction_does_not_route_twice(
    make_core: CoreFactory,
) -> None:
    async with make_core(ROUTING="interactions") as core:
        core.twilio.fail("create_interaction", when="after")  # made, but the answer lost
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        for _ in range(200):
            if core.twilio.conversations and core.twilio.only().messages:
                break
            await asyncio.sleep(0.05)
        assert [m.body for m in core.twilio.only().messages] == ["hello"]
        assert len(core.twilio.tasks) == 1
        assert core.twilio.calls.count("create_interaction") == 1


def test_task_attributes_share_the_profile_only_when_agreed() -> None:
    details = TaskDetails("a" * 64, PROFILE, None)
    shared = task_attributes(details, share_profile=True)
    assert shared["name"] == "Ann Example"
    assert shared["customers"] == {"name": "Ann Example", "email": "ann@example.com"}
    private = task_attributes(details, share_profile=False)
    assert "Ann" not in json.dumps(private)
    assert "example.com" not in json.dumps(private)


def test_task_attributes_stay_within_taskrouter_limits() -> None:
    context = "é" * 20_000  # two bytes each: far beyond TaskRouter's 16 KiB
    attributes = task_attributes(TaskDetails("a" * 64, None, context), share_profile=False)
    size = len(json.dumps(attributes).encode())
    assert MAX_ATTRIBUTES_BYTES - 8 <= size <= MAX_ATTRIBUTES_BYTES
    kept = attributes["flexBridge"]["context"]
    assert kept.endswith("…")
    assert context.startswith(kept[:-1])


# --- a task's end ---------------------------------------------------------------------------


async def test_a_completed_task_closes_a_conversation_flex_left_open(
    make_core: CoreFactory,
) -> None:
    async with make_core(ROUTING="interactions") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        sid = core.twilio.only().sid
        core.twilio.agent_says(sid, "Hi, Alex here")
        core.twilio.set_task(sid, "completed")  # through TaskRouter: the conversation stays
        assert await core.wired.handoff.inbox.on_task_event(task_event(sid, "task.completed"))
        assert await settled(core, who, "closed_by_agent") == "closed_by_agent"
        assert core.twilio.conversations[sid].state == "closed"  # the bridge closed it


async def test_a_canceled_task_is_put_down_to_the_system(make_core: CoreFactory) -> None:
    async with make_core(ROUTING="interactions") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        sid = core.twilio.only().sid
        core.twilio.set_task(sid, "canceled")  # no agent took it in time
        await core.wired.handoff.inbox.on_task_event(task_event(sid, "task.canceled"))
        assert await settled(core, who, "closed_by_system") == "closed_by_system"


async def test_another_live_task_or_a_parked_conversation_stays_open(
    make_core: CoreFactory,
) -> None:
    async with make_core(ROUTING="interactions") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        sid = core.twilio.only().sid
        core.twilio.set_task(sid, "completed")
        # A transfer: Flex made a second task for the same conversation.
        await core.twilio.create_interaction(
            sid, workspace_sid="WS", workflow_sid="WW", task_channel="chat", attributes={}
        )
        await core.wired.handoff.inbox.on_task_event(task_event(sid, "task.completed"))
        await asyncio.sleep(0.2)
        assert core.twilio.conversations[sid].state == "active"
        assert (await core.wired.handoff.replies(who, 0)).outcome == "waiting"
        # Parked (Leave): the conversation is inactive, its task completed.
        core.twilio.set_task(sid, "completed")
        core.twilio.conversations[sid].state = "inactive"
        await core.wired.handoff.inbox.on_task_event(task_event(sid, "task.completed"))
        await asyncio.sleep(0.2)
        assert core.twilio.conversations[sid].state == "inactive"
        assert (await core.wired.handoff.replies(who, 0)).outcome == "waiting"


async def test_a_task_end_while_twilio_is_down_is_retried(make_core: CoreFactory) -> None:
    async with make_core(ROUTING="interactions") as core:
        who = core.identity("ann")
        await core.wired.handoff.send(who, "hello", wait_seconds=0)
        sid = core.twilio.only().sid
        core.twilio.set_task(sid, "completed")
        core.twilio.fail("list_tasks", times=2)
        await core.wired.handoff.inbox.on_task_event(task_event(sid, "task.completed"))
        for _ in range(200):
            if core.twilio.conversations[sid].state == "closed":
                break
            await asyncio.sleep(0.05)
        assert await settled(core, who, "closed_by_agent") == "closed_by_agent"


async def test_task_events_for_others_are_not_ours(core: Core) -> None:
    inbox = core.wired.handoff.inbox
    assert not await inbox.on_task_event(task_event("CH" + "9" * 32, "task.completed"))
    assert not await inbox.on_task_event({"EventType": "task.completed", "TaskAttributes": "{"})
    assert not await inbox.on_task_event({"EventType": "worker.activity.update"})
