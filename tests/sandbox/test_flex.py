"""Flex Interactions in the sandbox, driven by the real ``twilio`` library: a conversation
routed as a TaskRouter task, the agent joining on accept, closing through the channel."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from tests.conftest import LiveServer
from tests.sandbox.spec import assert_matches


@pytest.fixture
def twilio(server: LiveServer) -> Client:
    client = Client(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    client.conversations.base_url = f"{server.url}/sandbox/twilio"
    client.taskrouter.base_url = f"{server.url}/sandbox/taskrouter"
    client.flex_api.base_url = f"{server.url}/sandbox/flex"
    return client


@pytest.fixture
def raw(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.url}/sandbox/flex", auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    ) as client:
        yield client


def _route(twilio: Client, conversation_sid: str) -> tuple[str, str, str]:
    """Interaction for the conversation; returns (workspace, interaction, channel) SIDs."""
    (workspace,) = twilio.taskrouter.v1.workspaces.list()
    (workflow,) = twilio.taskrouter.v1.workspaces(workspace.sid).workflows.list()
    made = twilio.flex_api.v1.interaction.create(
        channel={
            "type": "chat",
            "initiated_by": "customer",
            "properties": {"media_channel_sid": conversation_sid},
        },
        routing={
            "properties": {
                "workspace_sid": workspace.sid,
                "workflow_sid": workflow.sid,
                "task_channel_unique_name": "chat",
                "attributes": {"from": "assistant user 1a2b", "context": "cannot log in"},
            }
        },
    )
    return workspace.sid, made.sid, made.channel["sid"]


def test_an_interaction_routes_the_conversation_as_a_task(
    twilio: Client, raw: httpx.Client
) -> None:
    conversation = twilio.conversations.v1.conversations.create()
    workspace_sid, interaction_sid, channel_sid = _route(twilio, conversation.sid)
    assert interaction_sid.startswith("KD") and channel_sid.startswith("UO")
    ws = twilio.taskrouter.v1.workspaces(workspace_sid)
    (listed,) = ws.tasks.list()
    assert listed.attributes is None  # a list leaves them out, as Twilio's does
    task = ws.tasks(listed.sid).fetch()
    attributes = json.loads(task.attributes)
    assert attributes["conversationSid"] == conversation.sid
    assert attributes["flexInteractionSid"] == interaction_sid
    assert attributes["flexInteractionChannelSid"] == channel_sid
    assert attributes["context"] == "cannot log in"
    assert (task.assignment_status, task.task_channel_unique_name) == ("pending", "chat")
    assert_matches(
        raw.get(f"/v1/Interactions/{interaction_sid}").json(),
        "/v1/Interactions/{Sid}",
        "get",
        200,
        "flex",
    )
    channel = raw.get(f"/v1/Interactions/{interaction_sid}/Channels/{channel_sid}").json()
    assert_matches(channel, "/v1/Interactions/{InteractionSid}/Channels/{Sid}", "get", 200, "flex")
    assert (channel["type"], channel["status"]) == ("chat", "active")


def test_accepting_joins_the_agent_and_closing_the_channel_ends_it_all(twilio: Client) -> None:
    conversations = twilio.conversations.v1.conversations
    conversation = conversations.create()
    workspace_sid, interaction_sid, channel_sid = _route(twilio, conversation.sid)
    ws = twilio.taskrouter.v1.workspaces(workspace_sid)
    available = ws.activities.list(friendly_name="Available")[0].sid
    ws.workers.create(friendly_name="agent.alex", activity_sid=available)
    (task,) = ws.tasks.list()
    (offer,) = ws.tasks(task.sid).reservations.list()
    ws.tasks(task.sid).reservations(offer.sid).update(reservation_status="accepted")
    identities = [p.identity for p in conversations(conversation.sid).participants.list()]
    assert identities == ["agent.alex"]
    room = twilio.flex_api.v1.interaction(interaction_sid).channels(channel_sid)
    assert {p.type for p in room.participants.list()} == {"customer", "agent"}

    room.update(status="closed", routing={"status": "closed"})
    assert conversations(conversation.sid).fetch().state == "closed"
    assert ws.tasks(task.sid).fetch().assignment_status == "completed"
    assert room.fetch().status == "closed"
    with pytest.raises(TwilioRestException):
        room.update(status="closed")


def test_closing_without_routing_status_leaves_the_task_wrapping(twilio: Client) -> None:
    conversation = twilio.conversations.v1.conversations.create()
    workspace_sid, interaction_sid, channel_sid = _route(twilio, conversation.sid)
    ws = twilio.taskrouter.v1.workspaces(workspace_sid)
    available = ws.activities.list(friendly_name="Available")[0].sid
    ws.workers.create(friendly_name="agent.kim", activity_sid=available)
    (task,) = ws.tasks.list()
    (offer,) = ws.tasks(task.sid).reservations.list()
    ws.tasks(task.sid).reservations(offer.sid).update(reservation_status="accepted")
    twilio.flex_api.v1.interaction(interaction_sid).channels(channel_sid).update(status="closed")
    assert ws.tasks(task.sid).fetch().assignment_status == "wrapping"
    ws.tasks(task.sid).update(assignment_status="completed")


def test_an_interaction_must_name_a_conversation_and_the_workspace(twilio: Client) -> None:
    with pytest.raises(TwilioRestException) as refused:
        twilio.flex_api.v1.interaction.create(
            channel={"type": "chat", "properties": {"media_channel_sid": "CH" + "0" * 32}},
            routing={"properties": {"workspace_sid": "WS" + "0" * 32}},
        )
    assert refused.value.status == 400
