"""Closing that holds on Flex: a conversation routed as a task (an Interaction), closed by
Flex without any conversation webhook, reaches the waiting user as closed through the
TaskRouter event callback."""

from __future__ import annotations

import asyncio
import json

import httpx
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client


def accept(twilio: Client, conversation_sid: str, agent: str) -> tuple[str, str]:
    """An agent's Accept of the task Studio's Send to Flex made for the conversation; the
    Interaction and its channel, as the task's attributes name them."""
    (workspace,) = twilio.taskrouter.v1.workspaces.list()
    ws = twilio.taskrouter.v1.workspaces(workspace.sid)
    available = ws.activities.list(friendly_name="Available")[0].sid
    ws.workers.create(friendly_name=agent, activity_sid=available)
    (listed,) = ws.tasks.list()
    task = ws.tasks(listed.sid).fetch()  # a list leaves the attributes out, as Twilio's
    attributes = json.loads(task.attributes)
    assert attributes["conversationSid"] == conversation_sid
    (offer,) = ws.tasks(task.sid).reservations.list()
    ws.tasks(task.sid).reservations(offer.sid).update(reservation_status="accepted")
    return attributes["flexInteractionSid"], attributes["flexInteractionChannelSid"]


async def test_a_flex_close_no_webhook_announces_reaches_the_user_through_taskrouter(
    make_server: ServerFactory,
) -> None:
    # The periodic reconcile is far off: only the TaskRouter callback can tell in time.
    server = make_server(REPLY_WAIT_SECONDS="4", RECONCILE_INTERVAL_SECONDS="3600")
    twilio = twilio_client(server)
    async with httpx.AsyncClient(auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)) as control:
        (
            await control.put(f"{server.url}/sandbox/control/faults", json={"silent_closes": 1.0})
        ).raise_for_status()
    (workspace,) = await asyncio.to_thread(twilio.taskrouter.v1.workspaces.list)
    await asyncio.to_thread(
        lambda: twilio.taskrouter.v1.workspaces(workspace.sid).update(
            event_callback_url=f"{server.settings.public_url}/twilio/taskrouter",
            events_filter="task.wrapup,task.completed,task.canceled",
        )
    )
    agent = Agent(twilio)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await http.post("/send/flexuser", json={"msg": "hello"})
        sid = agent.only_conversation()
        interaction, channel = await asyncio.to_thread(accept, twilio, sid, "agent.alex")
        # Until the bridge has heard of the accept, a wait would end early to announce it.
        for _ in range(100):
            seen = (await http.get("/replies/flexuser")).json()
            if seen["handoff"]["state"] == "with_agent":
                break
            await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(http.get("/replies/flexuser", params={"wait": "4"}))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(
            lambda: (
                twilio.flex_api.v1.interaction(interaction)
                .channels(channel)
                .update(status="closed", routing={"status": "closed"})
            )
        )
        answer = (await waiting).json()
    assert answer["status"] == "closed"
    assert answer["note"].startswith("The agent ended this conversation")


async def test_taskrouter_callbacks_must_be_signed(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        forged = await http.post(
            "/twilio/taskrouter",
            data={
                "EventType": "task.completed",
                "TaskAttributes": json.dumps({"conversationSid": "CH" + "1" * 32}),
            },
            headers={"X-Twilio-Signature": "forged"},
        )
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "invalid_signature"
