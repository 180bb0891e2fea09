"""Routing through the Flex Interactions API (ROUTING=interactions): the bridge creates the
Interaction itself, its channel the conversation, its routing the TaskRouter workspace,
workflow and task channel from the settings. Flex makes the task, with the assistant's
context and (when the user agreed) their verified profile among its attributes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from bridge.conversations import TwilioClient, TwilioError, TwilioRejected
from bridge.logs import mask
from bridge.routing import RoutingCheck, TaskDetails, holds_live_task, withdraw_unaccepted

#: TaskRouter refuses a task whose attributes exceed 16 KiB; Flex adds its own keys
#: (conversationSid, flexInteractionSid, …) to ours, so ours keep well clear of it.
MAX_ATTRIBUTES_BYTES = 12 * 1024
_WORKSPACE_SID = re.compile(r"^WS[0-9a-fA-F]{32}$")


def task_attributes(details: TaskDetails, *, share_profile: bool) -> dict[str, Any]:
    """The task's attributes: what Flex shows an agent (``name``, ``from``), Flex
    Insights' ``customers``, and ours under ``flexBridge``. No PII unless shared."""
    short = details.identity[:8]
    attributes: dict[str, Any] = {
        "name": f"Assistant user {short}",
        "from": short,
        "flexBridge": {"user": details.identity[:12]},
    }
    if share_profile and details.profile:
        profile = json.loads(details.profile)
        name, email = profile.get("name"), profile.get("email")
        if name:
            attributes["name"] = name
        attributes["customers"] = {k: v for k, v in (("name", name), ("email", email)) if v}
    if details.context:
        attributes["flexBridge"]["context"] = ""
        attributes["flexBridge"]["context"] = _fitting(attributes, details.context)
    return attributes


def _fitting(attributes: dict[str, Any], context: str) -> str:
    """The context, cut (at a character) so the attributes stay within the limit, as
    they are sent (JSON, non-ASCII escaped)."""
    spare = MAX_ATTRIBUTES_BYTES - len(json.dumps(attributes).encode()) + len('""')
    if len(json.dumps(context).encode()) <= spare:
        return context
    low, high = 0, len(context)
    while low < high:  # the longest prefix that fits, with its ellipsis
        middle = (low + high + 1) // 2
        if len(json.dumps(context[:middle] + "…").encode()) <= spare:
            low = middle
        else:
            high = middle - 1
    return context[:low] + "…"


class InteractionsRouter:
    def __init__(
        self,
        twilio: TwilioClient,
        *,
        workspace_sid: str,
        workflow_sid: str,
        task_channel: str,
        share_profile: bool,
    ) -> None:
        self._twilio = twilio
        self._workspace_sid = workspace_sid
        self._workflow_sid = workflow_sid
        self._task_channel = task_channel
        self._share_profile = share_profile

    async def route(
        self, sid: str, *, webhooks: Sequence[str] | None, details: TaskDetails
    ) -> None:
        # A retried opening may follow an Interaction that was made but not confirmed:
        # the conversation's task says so (TaskRouter keeps even an ended one a while).
        if webhooks is not None and await self._twilio.conversation_tasks(self._workspace_sid, sid):
            return
        await self._twilio.create_interaction(
            sid,
            workspace_sid=self._workspace_sid,
            workflow_sid=self._workflow_sid,
            task_channel=self._task_channel,
            attributes=task_attributes(details, share_profile=self._share_profile),
        )

    async def holds(self, sid: str, workspace_sid: str) -> bool:
        return await holds_live_task(self._twilio, sid, workspace_sid)

    async def withdraw(self, sid: str) -> bool:
        return await withdraw_unaccepted(self._twilio, sid, self._workspace_sid)

    async def check(self) -> list[RoutingCheck]:
        """The workspace, its workflow and its task channel, as Twilio knows them."""
        ws = self._workspace_sid
        try:
            workspace = await self._twilio.fetch_workspace(ws)
        except TwilioRejected as error:
            return [
                RoutingCheck(
                    "workspace",
                    False,
                    f"TWILIO_WORKSPACE_SID {mask(ws)} was refused ({_why(error)})",
                    "Set TWILIO_WORKSPACE_SID to the SID of your Flex workspace (Console > "
                    "TaskRouter > Workspaces: usually 'Flex Task Assignment').",
                )
            ]
        except TwilioError as error:
            return [RoutingCheck("workspace", False, f"could not read it: {error}", _RETRY)]
        checks = [RoutingCheck("workspace", True, f"{workspace.friendly_name} ({mask(ws)})")]
        try:
            name = await self._twilio.workflow_name(ws, self._workflow_sid)
            checks.append(RoutingCheck("workflow", True, f"{name} ({mask(self._workflow_sid)})"))
        except TwilioError as error:
            checks.append(
                RoutingCheck(
                    "workflow",
                    False,
                    f"TWILIO_WORKFLOW_SID {mask(self._workflow_sid)} is not a workflow of "
                    f"{mask(ws)} ({_why(error)})",
                    "Set TWILIO_WORKFLOW_SID to the WW… SID of the workflow that routes chats "
                    "(Console > TaskRouter > your workspace > Workflows).",
                )
            )
        try:
            channels = await self._twilio.task_channel_names(ws)
        except TwilioError as error:
            checks.append(RoutingCheck("task channel", False, f"could not list: {error}", _RETRY))
            return checks
        channel = self._task_channel
        if channel.startswith("TC") or channel in channels:
            checks.append(RoutingCheck("task channel", True, channel))
        else:
            checks.append(
                RoutingCheck(
                    "task channel",
                    False,
                    f"TWILIO_TASK_CHANNEL {channel!r} is not a task channel of {mask(ws)} "
                    f"(it has {', '.join(channels) or 'none'})",
                    "Set TWILIO_TASK_CHANNEL to the unique name of the channel chats use "
                    "(chat in a Flex workspace).",
                )
            )
        return checks


_RETRY = "Check the network and Twilio's status, then run the doctor again."


def _why(error: TwilioError) -> str:
    return f"HTTP {error.status}" if error.status else str(error)
