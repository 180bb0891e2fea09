"""Studio flows in the sandbox, and running one when a conversation's Studio webhook
fires: a published flow whose Trigger leads an incoming conversation message to a Send to
Flex widget routes the conversation to Flex (an Interaction, and so a task) with the
widget's workflow and task channel. A draft flow, an unknown one, or one that does not
send to Flex does nothing, as in Twilio (the execution fails in the flow's logs)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bridge.routing.studio import CONVERSATION_EVENT, send_to_flex_widget
from bridge.sandbox.conversations.state import Conversation
from bridge.sandbox.flex.state import Flex
from bridge.sandbox.shared.clock import new_sid, now
from bridge.sandbox.shared.errors import EmulatorError, invalid, not_found

log = logging.getLogger(__name__)

FlowStatus = Literal["draft", "published"]
STATUSES: tuple[FlowStatus, ...] = ("draft", "published")


@dataclass
class Flow:
    sid: str
    friendly_name: str
    definition: dict[str, Any]
    status: FlowStatus
    revision: int = 1
    commit_message: str | None = None
    date_created: datetime = field(default_factory=now)
    date_updated: datetime | None = None


def flex_flow_definition(workflow_sid: str, channel_sid: str) -> dict[str, Any]:
    """A flow as Flex's setup guides build it: Incoming Conversation → Send to Flex."""
    return {
        "description": "Send assistant users' conversations to Flex",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [
            {
                "name": "Trigger",
                "type": "trigger",
                "transitions": [
                    {"event": "incomingMessage"},
                    {"event": "incomingCall"},
                    {"event": CONVERSATION_EVENT, "next": "SendToFlex"},
                    {"event": "incomingRequest"},
                    {"event": "incomingParent"},
                ],
                "properties": {"offset": {"x": 0, "y": 0}},
            },
            {
                "name": "SendToFlex",
                "type": "send-to-flex",
                "transitions": [
                    {"event": "callComplete"},
                    {"event": "failedToEnqueue"},
                    {"event": "callFailure"},
                ],
                "properties": {
                    "workflow": workflow_sid,
                    "channel": channel_sid,
                    "attributes": '{"name": "{{trigger.conversation.ChannelAttributes.from}}"}',
                    "offset": {"x": 0, "y": 200},
                },
            },
        ],
    }


def _definition(raw: str | None) -> dict[str, Any]:
    try:
        loaded = json.loads(raw or "")
    except ValueError:
        raise invalid("Definition must be a JSON object") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("states"), list):
        raise invalid("Definition must be a JSON object with a states list")
    return loaded


def _status(raw: str | None) -> FlowStatus:
    for status in STATUSES:
        if raw == status:
            return status
    raise invalid("Status must be draft or published")


class Studio:
    def __init__(self, flex: Flex, flow_sid: str | None = None) -> None:
        """Studio with one published flow sending conversations to Flex (its SID fixed by
        ``flow_sid``, so a bridge can be configured with it before the sandbox starts)."""
        self._flex = flex
        self.flows: dict[str, Flow] = {}
        workspace = flex.workspace
        workflow = next(iter(workspace.workflows.values()))
        chat = workspace.channel("chat")
        flow = Flow(
            flow_sid or new_sid("FW"),
            "Flex Bridge to Flex",
            flex_flow_definition(workflow.sid, chat.sid),
            "published",
        )
        self.flows[flow.sid] = flow

    def flow(self, sid: str) -> Flow:
        found = self.flows.get(sid)
        if found is None:
            raise not_found(f"/Flows/{sid}")
        return found

    def create_flow(
        self,
        friendly_name: str | None,
        status: str | None,
        definition: str | None,
        commit_message: str | None,
    ) -> Flow:
        if not friendly_name:
            raise invalid("Missing required parameter FriendlyName in the post body")
        flow = Flow(
            new_sid("FW"),
            friendly_name,
            _definition(definition),
            _status(status),
            1,
            commit_message,
        )
        self.flows[flow.sid] = flow
        return flow

    def update_flow(
        self,
        flow: Flow,
        status: str | None,
        friendly_name: str | None,
        definition: str | None,
        commit_message: str | None,
    ) -> Flow:
        flow.status = _status(status)
        if friendly_name:
            flow.friendly_name = friendly_name
        if definition is not None:
            flow.definition = _definition(definition)
            flow.revision += 1
        if commit_message is not None:
            flow.commit_message = commit_message
        flow.date_updated = now()
        return flow

    def run(self, conv: Conversation, flow_sid: str | None) -> None:
        """A message was added to a conversation with a Studio webhook for ``flow_sid``."""
        flow = self.flows.get(flow_sid or "")
        if flow is None or flow.status != "published":
            return
        widget = send_to_flex_widget(flow.definition)
        if widget is None:
            return
        properties = widget.get("properties") or {}
        customer = next(iter(conv.participants.values()), None)
        try:
            attributes = json.loads(properties.get("attributes") or "{}")
        except (TypeError, ValueError):
            attributes = {}
        if not isinstance(attributes, dict):
            attributes = {}
        attributes = {
            **{k: v for k, v in attributes.items() if not str(v).startswith("{{")},
            "from": customer.identity if customer else None,
            "studioFlowSid": flow.sid,
        }
        try:
            self._flex.send_to_flex(
                conv,
                workflow_sid=properties.get("workflow"),
                task_channel=properties.get("channel") or "chat",
                attributes=attributes,
            )
        except EmulatorError as error:  # Twilio logs a failed execution; the message stands
            log.warning("Studio flow %s failed to send to Flex: %s", flow.sid, error.message)
