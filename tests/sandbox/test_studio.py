"""Studio in the sandbox, driven by the real ``twilio`` library: flows as Twilio's
description has them, and running one when a conversation's Studio webhook fires (a
published flow whose Incoming Conversation leads to Send to Flex routes it to Flex)."""

from __future__ import annotations

import json

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FLOW_SID
from bridge.sandbox.studio.state import flex_flow_definition
from tests.conftest import LiveServer, twilio_client
from tests.sandbox.spec import assert_matches


@pytest.fixture
def twilio(server: LiveServer) -> Client:
    return twilio_client(server)


def _conversation_with_flow(twilio: Client, flow_sid: str) -> str:
    """A conversation with a Studio webhook for the flow, and a first message."""
    conv = twilio.conversations.v1.conversations.create(friendly_name="studio test")
    conv.participants.create(identity="ab" * 32)
    conv.webhooks.create(target="studio", configuration_flow_sid=flow_sid)
    conv.messages.create(author="ab" * 32, body="hello", x_twilio_webhook_enabled="true")
    return str(conv.sid)


def _tasks_of(twilio: Client, conversation_sid: str) -> list[dict[str, object]]:
    (workspace,) = twilio.taskrouter.v1.workspaces.list()
    tasks = twilio.taskrouter.v1.workspaces(workspace.sid).tasks.list(
        evaluate_task_attributes=f'conversationSid == "{conversation_sid}"'
    )
    ws = twilio.taskrouter.v1.workspaces(workspace.sid)
    return [json.loads(ws.tasks(t.sid).fetch().attributes) for t in tasks]


def test_flows_are_listed_fetched_created_and_updated_as_twilio_describes(
    twilio: Client, server: LiveServer
) -> None:
    auth = (SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    base = f"{server.url}/sandbox/studio/v2"
    with httpx.Client(auth=auth) as raw:
        listed = raw.get(f"{base}/Flows").json()
        assert_matches(listed, "/v2/Flows", "get", 200, "studio")
        fetched = raw.get(f"{base}/Flows/{SANDBOX_FLOW_SID}").json()
        assert_matches(fetched, "/v2/Flows/{Sid}", "get", 200, "studio")
    assert fetched["status"] == "published"
    assert fetched["friendly_name"] == "Flex Bridge to Flex"

    definition = flex_flow_definition("WW" + "0" * 32, "chat")
    made = twilio.studio.v2.flows.create(
        friendly_name="Support", status="draft", definition=definition
    )
    assert made.status == "draft" and made.revision == 1
    assert made.definition == definition
    published = twilio.studio.v2.flows(made.sid).update(status="published")
    assert published.status == "published" and published.revision == 1
    assert {f.sid for f in twilio.studio.v2.flows.list()} == {SANDBOX_FLOW_SID, made.sid}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"Status": "draft", "Definition": "{}"}, "FriendlyName"),
        ({"FriendlyName": "x", "Status": "live", "Definition": '{"states": []}'}, "Status"),
        ({"FriendlyName": "x", "Status": "draft", "Definition": "[1]"}, "Definition"),
        ({"FriendlyName": "x", "Status": "draft", "Definition": "{nope"}, "Definition"),
    ],
)
def test_a_bad_flow_is_refused_with_twilio_s_error(
    server: LiveServer, form: dict[str, str], message: str
) -> None:
    auth = (SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    response = httpx.post(f"{server.url}/sandbox/studio/v2/Flows", data=form, auth=auth)
    assert response.status_code == 400
    assert response.json()["code"] == 20001
    assert message in response.json()["message"]


def test_an_unknown_flow_is_a_404(twilio: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio.studio.v2.flows("FW" + "9" * 32).fetch()
    assert caught.value.status == 404 and caught.value.code == 20404


def test_only_a_published_flow_that_sends_to_flex_routes_the_conversation(
    twilio: Client,
) -> None:
    (workspace,) = twilio.taskrouter.v1.workspaces.list()
    (workflow,) = twilio.taskrouter.v1.workspaces(workspace.sid).workflows.list()
    good = flex_flow_definition(workflow.sid, "chat")
    nowhere = json.loads(json.dumps(good))
    nowhere["states"][0]["transitions"][2].pop("next")
    draft = twilio.studio.v2.flows.create(friendly_name="d", status="draft", definition=good)
    loose = twilio.studio.v2.flows.create(friendly_name="l", status="published", definition=nowhere)
    ours = twilio.studio.v2.flows.create(friendly_name="o", status="published", definition=good)
    bad_workflow = json.loads(json.dumps(good))
    bad_workflow["states"][1]["properties"]["workflow"] = "WW" + "7" * 32
    broken = twilio.studio.v2.flows.create(
        friendly_name="b", status="published", definition=bad_workflow
    )

    for flow_sid in (draft.sid, loose.sid, "FW" + "9" * 32, broken.sid):
        assert _tasks_of(twilio, _conversation_with_flow(twilio, flow_sid)) == []
    [attributes] = _tasks_of(twilio, _conversation_with_flow(twilio, ours.sid))
    assert attributes["studioFlowSid"] == ours.sid
    assert attributes["from"] == "ab" * 32
