"""Flex Interactions in the sandbox: a conversation (the media channel) routed as a
TaskRouter task, and Flex's part around it.

Creating an Interaction creates its channel and a task whose attributes carry the
conversation (``conversationSid``, ``flexInteractionSid``, ``flexInteractionChannelSid``,
as Flex writes them). When a worker accepts the task's reservation, Flex adds the agent
to the conversation (as the Flex UI does, an SDK action: its webhooks fire). Closing the
channel closes the conversation and wraps up (or, with Routing status closed, completes)
its tasks; an agent participant's wrapup / closed does the same for its task. Flex's own
close of the conversation is a REST action Twilio announces to no scoped webhook when the
``silent_closes`` fault says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.sandbox.conversations.state import Account, Conversation
from bridge.sandbox.conversations.state import Event as ConversationEvent
from bridge.sandbox.shared.clock import new_sid
from bridge.sandbox.shared.errors import EmulatorError, invalid, not_found
from bridge.sandbox.taskrouter.state import Task, Workspace, WorkspaceEvent

CHANNEL_TYPES = ("voice", "sms", "email", "web", "whatsapp", "chat", "messenger", "gbm")
PARTICIPANT_TYPES = ("supervisor", "customer", "external", "agent", "unknown")


@dataclass
class InteractionParticipant:
    sid: str
    type: str
    interaction_sid: str
    channel_sid: str
    routing_properties: dict[str, Any] | None = None
    task_sid: str | None = None


@dataclass
class InteractionChannel:
    sid: str
    interaction_sid: str
    type: str
    status: str  # setup, active, failed, closed, inactive, pause, transfer
    media_channel_sid: str
    task_sids: list[str] = field(default_factory=list)
    participants: dict[str, InteractionParticipant] = field(default_factory=dict)
    invites: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Interaction:
    sid: str
    channel: dict[str, Any]
    routing: dict[str, Any]
    channels: dict[str, InteractionChannel] = field(default_factory=dict)


def _json_object(raw: str | None, name: str) -> dict[str, Any]:
    if not raw:
        raise invalid(f"Missing required parameter {name} in the post body")
    try:
        loaded = json.loads(raw)
    except ValueError:
        raise invalid(f"{name} must be a JSON object") from None
    if not isinstance(loaded, dict):
        raise invalid(f"{name} must be a JSON object")
    return loaded


class Flex:
    def __init__(
        self,
        account: Account,
        workspace: Workspace,
        silent_close: Callable[[], bool] = lambda: False,
    ) -> None:
        self.account = account
        self.workspace = workspace
        self.interactions: dict[str, Interaction] = {}
        #: Each conversation's (latest) Interaction channel, found without a scan.
        self._rooms: dict[str, InteractionChannel] = {}
        self._silent_close = silent_close
        workspace.subscribe(self._on_workspace_event)
        account.subscribe(self._on_conversation_event)

    # --- Studio's Send to Flex ------------------------------------------------------------

    def send_to_flex(
        self,
        conv: Conversation,
        *,
        workflow_sid: str | None,
        task_channel: str,
        attributes: dict[str, Any],
    ) -> None:
        """What a Studio flow's Send to Flex widget does on a conversation's message: an
        Interaction (and so a task) for it, once."""
        if conv.state == "closed" or self.by_conversation(conv.sid) is not None:
            return
        channel = {
            "type": "chat",
            "initiated_by": "customer",
            "properties": {"media_channel_sid": conv.sid},
        }
        key = "task_channel_sid" if task_channel.startswith("TC") else "task_channel_unique_name"
        routing = {
            "properties": {
                "workspace_sid": self.workspace.sid,
                "workflow_sid": workflow_sid,
                key: task_channel,
                "attributes": attributes,
            }
        }
        self.create_interaction(json.dumps(channel), json.dumps(routing))

    def task_of(self, conversation_sid: str) -> Task | None:
        """The conversation's latest task, if Flex routed it."""
        room = self.by_conversation(conversation_sid)
        if room is None or not room.task_sids:
            return None
        return self.workspace.tasks.get(room.task_sids[-1])

    def _on_conversation_event(self, event: ConversationEvent) -> None:
        """A conversation closed by anyone (the user through the bridge, a timer, the
        agent): Flex ends its task, as the Flex UI shows the chat ended."""
        if event.event_type != "onConversationStateUpdated":
            return
        if event.params.get("StateTo") != "closed":
            return
        room = self.by_conversation(event.conversation_sid)
        if room is None or room.status == "closed":
            return
        for task_sid in room.task_sids:
            task = self.workspace.tasks.get(task_sid)
            if task is not None:
                self._finish(task, complete=False)
        self.account.wake_watchers()

    # --- interactions ---------------------------------------------------------------------

    def create_interaction(self, channel_raw: str | None, routing_raw: str | None) -> Interaction:
        channel = _json_object(channel_raw, "Channel")
        routing = _json_object(routing_raw, "Routing")
        kind = channel.get("type")
        if kind not in CHANNEL_TYPES:
            raise invalid(f"Channel.type must be one of {', '.join(CHANNEL_TYPES)}")
        properties = channel.get("properties") or {}
        media = properties.get("media_channel_sid") if isinstance(properties, dict) else None
        if not isinstance(media, str) or media not in self.account.conversations:
            raise invalid("Channel.properties.media_channel_sid must name a Conversation")
        interaction = Interaction(new_sid("KD"), channel, routing)
        room = InteractionChannel(new_sid("UO"), interaction.sid, kind, "setup", media)
        interaction.channels[room.sid] = room
        self.interactions[interaction.sid] = interaction
        self._rooms[media] = room
        self._route(interaction, room, routing)
        customer = InteractionParticipant(new_sid("UT"), "customer", interaction.sid, room.sid)
        room.participants[customer.sid] = customer
        room.status = "active"
        channel["sid"] = room.sid
        return interaction

    def _route(
        self, interaction: Interaction, room: InteractionChannel, routing: dict[str, Any]
    ) -> Task:
        """A task for the channel, from the Routing object, with Flex's attributes."""
        properties = routing.get("properties")
        if not isinstance(properties, dict):
            raise invalid("Routing.properties is required")
        if properties.get("workspace_sid") != self.workspace.sid:
            raise invalid("Routing.properties.workspace_sid must be the Flex workspace")
        attributes = properties.get("attributes") or {}
        if isinstance(attributes, str):
            attributes = _json_object(attributes, "Routing.properties.attributes")
        if not isinstance(attributes, dict):
            raise invalid("Routing.properties.attributes must be a JSON object")
        attributes = {
            **attributes,
            "conversationSid": room.media_channel_sid,
            "flexInteractionSid": interaction.sid,
            "flexInteractionChannelSid": room.sid,
            "channelType": room.type,
            "direction": "inbound",
        }
        task = self.workspace.create_task(
            workflow_sid=properties.get("workflow_sid"),
            attributes=json.dumps(attributes),
            task_channel=properties.get("task_channel_unique_name")
            or properties.get("task_channel_sid")
            or room.type,
            priority=properties.get("priority"),
            timeout=properties.get("timeout"),
        )
        room.task_sids.append(task.sid)
        return task

    def interaction(self, sid: str) -> Interaction:
        found = self.interactions.get(sid)
        if found is None:
            raise not_found(f"/Interactions/{sid}")
        return found

    def channel(self, interaction: Interaction, sid: str) -> InteractionChannel:
        found = interaction.channels.get(sid)
        if found is None:
            raise not_found(f"/Interactions/{interaction.sid}/Channels/{sid}")
        return found

    def by_conversation(self, conversation_sid: str) -> InteractionChannel | None:
        return self._rooms.get(conversation_sid)

    # --- closing --------------------------------------------------------------------------

    def update_channel(
        self, room: InteractionChannel, status: str | None, routing_raw: str | None
    ) -> InteractionChannel:
        if status not in ("closed", "inactive"):
            raise invalid("Status must be closed or inactive")
        routing = json.loads(routing_raw) if routing_raw else {}
        routing_status = routing.get("status") if isinstance(routing, dict) else None
        if status == "inactive" and routing_status != "closed":
            raise invalid("Routing status closed is required when the channel goes inactive")
        if room.status in ("closed", "inactive") and status == "closed":
            raise EmulatorError(400, 20001, f"The channel is {room.status} already")
        self._close_conversation(room, "closed" if status == "closed" else "inactive")
        for task_sid in room.task_sids:
            task = self.workspace.tasks.get(task_sid)
            if task is not None:
                self._finish(task, complete=routing_status == "closed")
        room.status = status
        return room

    def _close_conversation(self, room: InteractionChannel, state: str) -> None:
        conv: Conversation | None = self.account.conversations.get(room.media_channel_sid)
        if conv is None or conv.state == "closed" or conv.state == state:
            return
        announce = not self._silent_close()
        self.account.update_conversation(
            conv, state=state, source="SDK" if announce else "API", webhooks_enabled=announce
        )

    def _finish(self, task: Task, *, complete: bool) -> None:
        """The task after its channel ended: wrapping up (or completed when told)."""
        if task.assignment_status in ("pending", "reserved"):
            self.workspace.update_task(task, assignment_status="canceled", reason="channel closed")
            return
        if task.assignment_status == "assigned":
            self.workspace.update_task(task, assignment_status="wrapping")
        if complete and task.assignment_status == "wrapping":
            self.workspace.update_task(task, assignment_status="completed", reason="channel closed")

    # --- participants and invites ---------------------------------------------------------

    def add_participant(self, room: InteractionChannel, kind: str | None) -> InteractionParticipant:
        if kind not in PARTICIPANT_TYPES:
            raise invalid(f"Type must be one of {', '.join(PARTICIPANT_TYPES)}")
        participant = InteractionParticipant(new_sid("UT"), kind, room.interaction_sid, room.sid)
        room.participants[participant.sid] = participant
        return participant

    def update_participant(
        self, room: InteractionChannel, participant: InteractionParticipant, status: str | None
    ) -> InteractionParticipant:
        """An agent leaving: ``wrapup`` ends the conversation for them and wraps up their
        task (as Flex's End chat); ``closed`` completes it."""
        if status not in ("closed", "wrapup"):
            raise invalid("Status must be closed or wrapup")
        task = self.workspace.tasks.get(participant.task_sid or "")
        if status == "wrapup":
            self._close_conversation(room, "closed")
            if task is not None and task.assignment_status == "assigned":
                self.workspace.update_task(task, assignment_status="wrapping")
        elif task is not None:
            self._finish(task, complete=True)
        return participant

    def agent_leaves(self, task: Task, status: str) -> None:
        """What the agent desktop does at End chat (``wrapup``) and Complete (``closed``):
        update the agent's participant of the task's Interaction channel."""
        for interaction in self.interactions.values():
            for room in interaction.channels.values():
                for participant in room.participants.values():
                    if participant.type == "agent" and participant.task_sid == task.sid:
                        self.update_participant(room, participant, status)
                        return
        raise not_found(f"/Interactions/?task={task.sid}")

    def invite(self, room: InteractionChannel, routing_raw: str | None) -> dict[str, Any]:
        routing = _json_object(routing_raw, "Routing")
        interaction = self.interactions[room.interaction_sid]
        self._route(interaction, room, routing)
        sid = new_sid("KG")
        invite: dict[str, Any] = {"sid": sid, "routing": routing}
        room.invites[sid] = invite
        return invite

    # --- Flex's side of an accepted reservation -------------------------------------------

    def _on_workspace_event(self, event: WorkspaceEvent) -> None:
        self.account.wake_watchers()  # the agent console shows tasks and offers
        if event.event_type != "reservation.accepted":
            return
        task = self.workspace.tasks.get(event.params.get("TaskSid", ""))
        if task is None:
            return
        attributes = json.loads(task.attributes)
        room_sid = attributes.get("flexInteractionChannelSid")
        interaction = self.interactions.get(attributes.get("flexInteractionSid", ""))
        if interaction is None or room_sid not in interaction.channels:
            return
        room = interaction.channels[room_sid]
        conv = self.account.conversations.get(room.media_channel_sid)
        agent = event.params.get("WorkerName", "")
        joined = conv is not None and any(p.identity == agent for p in conv.participants.values())
        if conv is not None and conv.state != "closed" and not joined:
            # As the Flex UI joins the agent: an SDK action, so its webhooks fire.
            self.account.add_participant(conv, identity=agent, attributes=None, source="SDK")
        participant = InteractionParticipant(
            new_sid("UT"), "agent", interaction.sid, room.sid, task_sid=task.sid
        )
        room.participants[participant.sid] = participant
