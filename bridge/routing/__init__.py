"""How a conversation reaches Flex, behind one protocol chosen at start-up (ROUTING).

- ``studio`` (:mod:`bridge.routing.studio`): a Studio webhook whose flow's Send to Flex
  widget hands the conversation to Flex on its first message.
- ``interactions`` (:mod:`bridge.routing.interactions`): the bridge creates the Flex
  Interaction itself, with the workspace, workflow and task channel from the settings.

Either way Flex routes the conversation as a TaskRouter task, so both answer the same
question the same way: does Flex still hold a live task for this conversation?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bridge.config import Settings
from bridge.conversations import TwilioClient, TwilioFlex

#: Task states in which Flex still has the conversation in hand (an agent may yet answer).
LIVE_TASK_STATES = ("pending", "reserved", "assigned")


@dataclass(frozen=True)
class RoutingCheck:
    """What ``doctor`` reports of the routing settings; ``fix`` when not ``ok``."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class TaskDetails:
    """What the agent should see with the task: who (the identity hash, and the verified
    profile when the user agreed to share it) and the assistant's context."""

    identity: str
    profile: str | None = None  # JSON: name, email
    context: str | None = None


class Router(Protocol):
    async def route(
        self, sid: str, *, webhooks: Sequence[str] | None, details: TaskDetails
    ) -> None:
        """Send the conversation to Flex, once. ``webhooks``: the targets the conversation
        has already (None for one created just now, which has none), so a retry after a
        failure adds nothing twice."""

    async def holds(self, sid: str, workspace_sid: str) -> bool:
        """Whether Flex still has a live task (pending, reserved, assigned) for the
        conversation in the workspace."""

    async def withdraw(self, sid: str) -> bool:
        """Cancel the conversation's tasks no agent has accepted (pending, reserved), so
        Flex holds no orphan task once the user leaves. False, canceling nothing, when an
        agent has accepted one meanwhile; True otherwise (also when the workspace is not
        known: nothing can be asked)."""

    async def check(self) -> list[RoutingCheck]:
        """Whether the routing settings can work where the bridge sends its calls."""


#: Where the bridge's Twilio calls go, which decides what a placeholder setting means.
Target = Literal["sandbox", "emulator", "twilio"]


def target_of(settings: Settings) -> Target:
    if settings.twilio_api_base_url:
        return "emulator"
    return "sandbox" if settings.sandbox else "twilio"


async def holds_live_task(flex: TwilioFlex, sid: str, workspace_sid: str) -> bool:
    return bool(await flex.conversation_tasks(workspace_sid, sid, LIVE_TASK_STATES))


#: Why the bridge cancels a task (TaskRouter keeps it as the task's reason).
WITHDRAWN_REASON = "The user chose to continue with the assistant"


async def withdraw_unaccepted(flex: TwilioFlex, sid: str, workspace_sid: str) -> bool:
    if not workspace_sid:
        return True
    live = await flex.conversation_tasks(workspace_sid, sid, LIVE_TASK_STATES)
    if any(task.assignment_status == "assigned" for task in live):
        return False
    for task in live:
        await flex.cancel_task(workspace_sid, task.sid, WITHDRAWN_REASON)
    return True


def build_router(settings: Settings, twilio: TwilioClient) -> Router:
    if settings.routing == "interactions":
        from bridge.routing.interactions import InteractionsRouter

        return InteractionsRouter(
            twilio,
            workspace_sid=settings.twilio_workspace_sid,
            workflow_sid=settings.twilio_workflow_sid,
            task_channel=settings.twilio_task_channel,
            share_profile=settings.auth.share_profile_with_agent,
        )
    from bridge.routing.studio import StudioRouter

    return StudioRouter(
        twilio, settings.twilio_flow_sid, target_of(settings), settings.twilio_workspace_sid
    )
