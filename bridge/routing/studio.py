"""Routing through a Studio flow: the conversation gets a Studio webhook, and the flow's
Send to Flex widget creates the Flex task on the first message (TWILIO_FLOW_SID)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.config import SANDBOX_FLOW_SID
from bridge.conversations import TwilioClient, TwilioError, TwilioRejected
from bridge.logs import mask
from bridge.routing import RoutingCheck, Target, TaskDetails, holds_live_task, withdraw_unaccepted

FLOW_SID = re.compile(r"^FW[0-9a-fA-F]{32}$")
#: The Trigger widget's transition for a message added to a conversation.
CONVERSATION_EVENT = "incomingConversationMessage"
_FLOW_FIX = (
    "In Studio > Flows, connect the Trigger's Incoming Conversation to a Send to Flex widget "
    "(with your workflow and the Chat task channel) and publish the flow "
    "(docs/flex-setup.md, section 3)."
)


def send_to_flex_widget(definition: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Send to Flex widget a flow's Trigger sends an incoming conversation message to,
    if it does (what routes the bridge's conversations to Flex)."""
    states = definition.get("states")
    if not isinstance(states, list):
        return None
    by_name = {s.get("name"): s for s in states if isinstance(s, dict)}
    trigger = by_name.get(definition.get("initial_state", "Trigger"))
    if not isinstance(trigger, dict) or trigger.get("type") != "trigger":
        return None
    transitions = trigger.get("transitions")
    step = next(
        (
            t.get("next")
            for t in (transitions if isinstance(transitions, list) else [])
            if isinstance(t, dict) and t.get("event") == CONVERSATION_EVENT
        ),
        None,
    )
    widget = by_name.get(step)
    if not isinstance(widget, dict) or widget.get("type") != "send-to-flex":
        return None
    return widget


class StudioRouter:
    def __init__(
        self, twilio: TwilioClient, flow_sid: str, target: Target, workspace_sid: str = ""
    ) -> None:
        """``workspace_sid``: Flex's TaskRouter workspace, when known (to cancel tasks)."""
        self._twilio = twilio
        self._flow_sid = flow_sid
        self._target = target
        self._workspace_sid = workspace_sid

    async def route(
        self, sid: str, *, webhooks: Sequence[str] | None, details: TaskDetails
    ) -> None:
        # The flow makes the task; what it puts in the task's attributes is the flow's.
        if webhooks is None or "studio" not in webhooks:
            await self._twilio.add_studio_webhook(sid, self._flow_sid)

    async def holds(self, sid: str, workspace_sid: str) -> bool:
        return await holds_live_task(self._twilio, sid, workspace_sid)

    async def withdraw(self, sid: str) -> bool:
        return await withdraw_unaccepted(self._twilio, sid, self._workspace_sid)

    async def check(self) -> list[RoutingCheck]:
        """The SID's form, then the flow as Studio has it: published, and its Incoming
        Conversation leading to Send to Flex."""
        form = self._check_flow()
        if not form.ok:
            return [form]
        try:
            flow = await self._twilio.fetch_flow(self._flow_sid)
        except TwilioRejected as error:
            return [
                RoutingCheck(
                    "flow",
                    False,
                    f"TWILIO_FLOW_SID {mask(self._flow_sid)} was refused by Studio "
                    f"(HTTP {error.status}): no such flow in this account",
                    "Set TWILIO_FLOW_SID to the SID of your flow (Studio > Flows), then "
                    "restart the bridge.",
                )
            ]
        except TwilioError as error:
            return [
                RoutingCheck(
                    "flow",
                    False,
                    f"could not read the flow from Studio: {error}",
                    "Check the network and Twilio's status, then run the doctor again.",
                )
            ]
        name = f"{flow.friendly_name!r} ({mask(flow.sid)})"
        if flow.status != "published":
            return [RoutingCheck("flow", False, f"flow {name} is a {flow.status}", _FLOW_FIX)]
        widget = send_to_flex_widget(flow.definition)
        if widget is None:
            return [
                RoutingCheck(
                    "flow",
                    False,
                    f"flow {name}: its Trigger's Incoming Conversation does not lead to a "
                    "Send to Flex widget",
                    _FLOW_FIX,
                )
            ]
        return [
            RoutingCheck(
                "flow",
                True,
                f"flow {name}, published: Incoming Conversation → {widget.get('name')} "
                "(Send to Flex)",
            )
        ]

    def _check_flow(self) -> RoutingCheck:
        """TWILIO_FLOW_SID's form, and the sandbox placeholder used against Twilio itself."""
        flow = self._flow_sid
        if not FLOW_SID.match(flow):
            return RoutingCheck(
                "flow",
                False,
                f"TWILIO_FLOW_SID {mask(flow)} is not FW followed by 32 hex digits",
                "Set TWILIO_FLOW_SID to the SID of the Studio flow (Studio > Flows) whose "
                "Incoming Conversation trigger leads to a Send to Flex widget.",
            )
        if flow != SANDBOX_FLOW_SID:
            return RoutingCheck("flow", True, f"TWILIO_FLOW_SID {mask(flow)}")
        if self._target == "sandbox":
            return RoutingCheck(
                "flow", True, "the sandbox's flow (conversations go to the agent console)"
            )
        if self._target == "emulator":
            return RoutingCheck(
                "flow",
                True,
                f"TWILIO_FLOW_SID is the sandbox placeholder {mask(flow)}: fine for an "
                "emulator, not for Twilio",
            )
        return RoutingCheck(
            "flow",
            False,
            f"TWILIO_FLOW_SID is the sandbox placeholder {mask(flow)}, but this is real Twilio",
            "Set TWILIO_FLOW_SID to your Studio flow's FW… SID (Studio > Flows: the flow with "
            "the Incoming Conversation trigger and a Send to Flex widget, published), then "
            "restart the bridge. With the placeholder, conversations never reach Flex.",
        )
