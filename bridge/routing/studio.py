"""Routing through a Studio flow: the conversation gets a Studio webhook, and the flow's
Send to Flex widget creates the Flex task on the first message (TWILIO_FLOW_SID)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bridge.config import SANDBOX_FLOW_SID
from bridge.conversations import TwilioClient
from bridge.logs import mask
from bridge.routing import RoutingCheck, Target, TaskDetails, holds_live_task

FLOW_SID = re.compile(r"^FW[0-9a-fA-F]{32}$")


class StudioRouter:
    def __init__(self, twilio: TwilioClient, flow_sid: str, target: Target) -> None:
        self._twilio = twilio
        self._flow_sid = flow_sid
        self._target = target

    async def route(
        self, sid: str, *, webhooks: Sequence[str] | None, details: TaskDetails
    ) -> None:
        # The flow makes the task; what it puts in the task's attributes is the flow's.
        if webhooks is None or "studio" not in webhooks:
            await self._twilio.add_studio_webhook(sid, self._flow_sid)

    async def holds(self, sid: str, workspace_sid: str) -> bool:
        return await holds_live_task(self._twilio, sid, workspace_sid)

    async def check(self) -> list[RoutingCheck]:
        return [self._check_flow()]

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
