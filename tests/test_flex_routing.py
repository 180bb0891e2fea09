"""Both routes to Flex, end to end, driven only through Twilio's public APIs with the real
``twilio`` library, as a Flex agent's desktop drives them: the worker goes Available, is
offered the conversation's task, accepts it, replies, and completes the task. The user's
``/replies`` goes answered, then closed, put down to the agent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from twilio.rest import Client

from tests.conftest import Agent, ServerFactory, twilio_client, wait_for_conversation


def workspace(twilio: Client) -> Any:
    (found,) = twilio.taskrouter.v1.workspaces.list()
    return twilio.taskrouter.v1.workspaces(found.sid)


def the_task(twilio: Client, conversation_sid: str) -> Any:
    (task,) = workspace(twilio).tasks.list(
        evaluate_task_attributes=f'conversationSid == "{conversation_sid}"'
    )
    return task


def go_available(twilio: Client, name: str) -> str:
    ws = workspace(twilio)
    available = ws.activities.list(friendly_name="Available")[0].sid
    return str(ws.workers.create(friendly_name=name, activity_sid=available).sid)


def accept_offer(twilio: Client, task_sid: str, worker_sid: str) -> None:
    ws = workspace(twilio)
    (offer,) = ws.workers(worker_sid).reservations.list(reservation_status="pending")
    assert offer.task_sid == task_sid
    ws.workers(worker_sid).reservations(offer.sid).update(reservation_status="accepted")


async def wait_for_task(twilio: Client, sid: str) -> Any:
    for _ in range(100):
        tasks = await asyncio.to_thread(
            lambda: workspace(twilio).tasks.list(
                evaluate_task_attributes=f'conversationSid == "{sid}"'
            )
        )
        if tasks:
            # Fetched: a list leaves the attributes out, as Twilio's does.
            return await asyncio.to_thread(workspace(twilio).tasks(tasks[0].sid).fetch)
        await asyncio.sleep(0.05)
    raise AssertionError("Flex made no task for the conversation")


@pytest.mark.parametrize("routing", ["studio", "interactions"])
async def test_an_agent_answers_and_completes_the_task(
    make_server: ServerFactory, routing: str
) -> None:
    server = make_server(ROUTING=routing, REPLY_WAIT_SECONDS="5")
    twilio = twilio_client(server)
    agent = Agent(twilio, "agent.alex")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        sent = await http.post(
            "/send/flexuser", json={"msg": "I need a human", "context": "Billing question"}
        )
        assert sent.json()["status"] == "waiting"
        sid = await wait_for_conversation(agent)
        task = await wait_for_task(twilio, sid)
        attributes = json.loads(task.attributes)
        assert attributes["flexInteractionSid"].startswith("KD")
        if routing == "interactions":
            assert attributes["flexBridge"]["context"] == "Billing question"
        worker = await asyncio.to_thread(go_available, twilio, agent.name)
        await asyncio.to_thread(accept_offer, twilio, task.sid, worker)
        # Flex joined the agent to the conversation on accept.
        participants = await asyncio.to_thread(
            lambda: [p.identity for p in agent.conversations(sid).participants.list()]
        )
        assert agent.name in participants
        for _ in range(100):  # the bridge has heard of the accept (else a wait ends on it)
            seen = (await http.get("/replies/flexuser")).json()
            if seen["handoff"]["state"] == "with_agent":
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(agent.reply, sid, "Alex here, how can I help?")
        answered = (await http.get("/replies/flexuser", params={"wait": "5"})).json()
        assert answered["status"] == "answered" and "closed_by" not in answered
        assert [r["body"] for r in answered["replies"]] == ["Alex here, how can I help?"]
        waiting = asyncio.ensure_future(http.get("/replies/flexuser", params={"wait": "5"}))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(
            lambda: workspace(twilio).tasks(task.sid).update(assignment_status="completed")
        )
        closed = (await waiting).json()
        assert closed["status"] == "closed" and closed["closed_by"] == "agent"
        assert closed["note"].startswith("The agent ended this conversation")
        state = await asyncio.to_thread(lambda: agent.conversations(sid).fetch().state)
        assert state == "closed"
        # The next message starts a new conversation, and a new task.
        again = await http.post("/send/flexuser", json={"msg": "One more thing"})
        assert again.json()["status"] == "waiting"
        active = await asyncio.to_thread(agent.open_conversations)
        assert len(active) == 1 and active[0] != sid
        await wait_for_task(twilio, active[0])


async def test_a_task_nobody_took_closes_as_the_system(make_server: ServerFactory) -> None:
    server = make_server(ROUTING="interactions", REPLY_WAIT_SECONDS="5")
    twilio = twilio_client(server)
    agent = Agent(twilio)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await http.post("/send/flexuser", json={"msg": "Anyone there?"})
        sid = await wait_for_conversation(agent)
        task = await wait_for_task(twilio, sid)
        waiting = asyncio.ensure_future(http.get("/replies/flexuser", params={"wait": "5"}))
        await asyncio.sleep(0.2)
        # What the workflow's timeout does when no worker accepts in time.
        await asyncio.to_thread(
            lambda: (
                workspace(twilio)
                .tasks(task.sid)
                .update(assignment_status="canceled", reason="no agents")
            )
        )
        closed = (await waiting).json()
    assert closed["status"] == "closed" and closed["closed_by"] == "system"
    assert "before an agent could take it" in closed["note"]


@pytest.mark.parametrize("routing", ["studio", "interactions"])
async def test_a_waiting_user_hears_at_once_that_an_agent_took_the_conversation(
    make_server: ServerFactory, routing: str
) -> None:
    server = make_server(ROUTING=routing, REPLY_WAIT_SECONDS="20")
    twilio = twilio_client(server)
    agent = Agent(twilio, "agent.alex")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        # The /send itself waits (up to 20 s) and is the call that hears of the agent.
        waiting = asyncio.ensure_future(http.post("/send/flexuser", json={"msg": "A human?"}))
        sid = await wait_for_conversation(agent)
        task = await wait_for_task(twilio, sid)
        for _ in range(100):  # the queue's figures are read while the /send waits
            queued = (await http.get("/replies/flexuser")).json()
            if queued["handoff"]["queue"] is not None:
                break
            await asyncio.sleep(0.05)
        assert queued["status"] == "waiting"
        assert queued["handoff"]["state"] == "no_agents"  # nobody has signed in yet
        assert queued["handoff"]["agent"] is None
        assert queued["handoff"]["queue"]["position"] == 1
        assert queued["handoff"]["queue"]["agents_available"] == 0
        ws = workspace(twilio)
        available = ws.activities.list(friendly_name="Available")[0].sid
        worker = await asyncio.to_thread(
            lambda: (
                ws.workers.create(
                    friendly_name=agent.name,
                    activity_sid=available,
                    attributes=json.dumps({"full_name": "Alex Doe", "contact_uri": "client:alex"}),
                ).sid
            )
        )
        started = asyncio.get_running_loop().time()
        await asyncio.to_thread(accept_offer, twilio, task.sid, worker)
        joined = (await waiting).json()
        # Long before the 20 s wait was out, and with no reply yet.
        assert asyncio.get_running_loop().time() - started < 5
        assert (joined["status"], joined["replies"]) == ("waiting", [])
        assert joined["handoff"]["state"] == "with_agent"
        # Flex joins the agent to the conversation and TaskRouter tells of the accept
        # (with the agent's name); whichever arrives first ends the wait.
        if joined["handoff"]["agent"] is None:
            assert joined["note"].startswith("An agent from the support team has joined")
        else:
            assert joined["handoff"]["agent"] == {"name": "Alex Doe"}
            assert joined["note"].startswith("Alex Doe from the support team has joined")

        still = (await http.get("/replies/flexuser")).json()
        assert still["status"] == "waiting"
        assert "from the support team has the conversation" in still["note"]
        await asyncio.to_thread(agent.reply, sid, "Alex here.")
        answered = (await http.get("/replies/flexuser", params={"wait": "5"})).json()
        assert answered["status"] == "answered"
        assert answered["handoff"]["agent"] == {"name": "Alex Doe"}
        await asyncio.to_thread(
            lambda: workspace(twilio).tasks(task.sid).update(assignment_status="wrapping")
        )
        for _ in range(50):
            wrapping = (await http.get("/replies/flexuser", params={"wait": "0.1"})).json()
            if wrapping["handoff"]["state"] != "with_agent":
                break
        assert wrapping["handoff"]["state"] in ("wrapping_up", "closed")
        ended = (await http.post("/end/flexuser")).json()
    assert ended["handoff"]["state"] == "closed"
    assert ended["handoff"]["closed_by"] == "user"
