"""A fake Twilio client for the core's unit tests: in memory, no HTTP.

It keeps what the real service keeps (conversations by SID and UniqueName, participants,
webhooks, messages with growing indexes) and refuses what it refuses (a taken UniqueName,
a closed conversation, an unknown SID), raising the same :class:`TwilioError` family as
``bridge.conversations``. Faults are queued per operation: ``before`` fails the call
without effect, ``after`` applies the call and then fails it, as when Twilio did the work
and the answer was lost on the way back.

Flex is kept as far as routing sees it: an Interaction makes a pending task for its
conversation in one queue, and tests move tasks along with :meth:`FakeTwilio.set_task`;
the queue's figures (agents available, wait history) are set by the test.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bridge.conversations import (
    ConversationClosed,
    ConversationInfo,
    ConversationMessage,
    ConversationNotFound,
    FlowInfo,
    ParticipantExists,
    QueueHistory,
    QueueNow,
    TaskInfo,
    TwilioError,
    TwilioUnavailable,
    UniqueNameTaken,
    WaitingTask,
    WorkspaceInfo,
)
from bridge.sandbox.studio.state import flex_flow_definition

When = Literal["before", "after"]


@dataclass
class FakeConversation:
    sid: str
    unique_name: str
    friendly_name: str
    attributes: str
    state: str = "active"
    participants: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)  # targets: studio, webhook
    messages: list[ConversationMessage] = field(default_factory=list)


@dataclass
class FakeTask:
    sid: str
    conversation_sid: str
    attributes: dict[str, Any]
    assignment_status: str = "pending"
    reason: str | None = None


QUEUE_SID = "WQ" + "0" * 32


class FakeTwilio:
    def __init__(self) -> None:
        self.conversations: dict[str, FakeConversation] = {}
        self.tasks: list[FakeTask] = []
        self.calls: list[str] = []
        self._faults: dict[str, list[tuple[When, TwilioError] | None]] = defaultdict(list)
        self._sids = itertools.count(1)
        self._gates: dict[str, asyncio.Event] = {}
        self.agents_available = 1
        self.history = QueueHistory(QUEUE_SID, 0, 0, 0, {})

    # --- driving it -----------------------------------------------------------------------

    def fail(
        self,
        operation: str,
        times: int = 1,
        *,
        when: When = "before",
        error: TwilioError | None = None,
        pass_first: int = 0,
    ) -> None:
        """After ``pass_first`` good calls, the next ``times`` calls of ``operation`` fail
        (TwilioUnavailable by default)."""
        queue = self._faults[operation]
        queue.extend([None] * pass_first)
        for _ in range(times):
            queue.append((when, error or TwilioUnavailable(operation, "down")))

    def hold(self, operation: str) -> asyncio.Event:
        """The next call of ``operation`` waits (before taking effect) until the returned
        event is set: a slow Twilio."""
        gate = self._gates[operation] = asyncio.Event()
        return gate

    def heal(self) -> None:
        """Every queued fault is dropped: Twilio is back."""
        self._faults.clear()

    def only(self) -> FakeConversation:
        assert len(self.conversations) == 1, list(self.conversations)
        return next(iter(self.conversations.values()))

    def agent_says(self, sid: str, body: str, author: str = "agent.alex") -> ConversationMessage:
        """What an agent's reply does in Twilio (no webhook: the test delivers those)."""
        return self._append(self.conversations[sid], author, body, "{}")

    def close_by_agent(self, sid: str) -> None:
        self.conversations[sid].state = "closed"

    def delete(self, sid: str) -> None:
        """As when the conversation is removed (or the sandbox restarted)."""
        del self.conversations[sid]

    def set_task(self, sid: str, status: str) -> FakeTask:
        """Move the conversation's latest task to ``status`` (as an agent or Flex would)."""
        task = [t for t in self.tasks if t.conversation_sid == sid][-1]
        task.assignment_status = status
        return task

    def bodies(self, sid: str) -> list[str]:
        return [m.body for m in self.conversations[sid].messages]

    # --- the protocol ---------------------------------------------------------------------

    async def close(self) -> None:
        pass

    async def check_access(self) -> None:
        self._enter("list_conversations")

    async def create_conversation_with_participant(
        self, unique_name: str, friendly_name: str, attributes: str, identity: str
    ) -> ConversationInfo:
        after = self._enter("create_conversation")
        if any(c.unique_name == unique_name for c in self.conversations.values()):
            raise UniqueNameTaken("create_conversation", "taken", 409, 50353)
        sid = f"CH{next(self._sids):032x}"
        conversation = FakeConversation(sid, unique_name, friendly_name, attributes)
        conversation.participants.append(identity)
        self.conversations[sid] = conversation
        self._exit(after)
        return self._info(conversation)

    async def fetch_conversation(self, sid_or_unique_name: str) -> ConversationInfo:
        after = self._enter("fetch_conversation")
        found = self._find(sid_or_unique_name)
        self._exit(after)
        return self._info(found)

    async def close_conversation(self, sid: str) -> None:
        gate = self._gates.pop("close_conversation", None)
        if gate is not None:
            await gate.wait()
        after = self._enter("close_conversation")
        found = self._find(sid)
        if found.state == "closed":
            raise ConversationClosed("close_conversation", "closed", 400, 50377)
        found.state = "closed"
        self._exit(after)

    async def add_participant(self, sid: str, identity: str, attributes: str = "{}") -> None:
        after = self._enter("add_participant")
        found = self._find(sid)
        if identity in found.participants:
            raise ParticipantExists("add_participant", "exists", 409, 50433)
        found.participants.append(identity)
        self._exit(after)

    async def participant_identities(self, sid: str) -> list[str]:
        self._enter("list_participants")
        return list(self._find(sid).participants)

    async def add_studio_webhook(self, sid: str, flow_sid: str) -> None:
        after = self._enter("add_studio_webhook")
        self._find(sid).webhooks.append("studio")
        self._exit(after)

    async def add_event_webhook(self, sid: str, url: str) -> None:
        after = self._enter("add_event_webhook")
        self._find(sid).webhooks.append("webhook")
        self._exit(after)

    async def webhook_targets(self, sid: str) -> list[str]:
        self._enter("list_webhooks")
        return list(self._find(sid).webhooks)

    async def post_message(
        self, sid: str, author: str, body: str, attributes: str = "{}"
    ) -> ConversationMessage:
        after = self._enter("post_message")
        found = self._find(sid)
        if found.state == "closed":
            raise ConversationClosed("post_message", "closed", 400, 50377)
        message = self._append(found, author, body, attributes)
        self._exit(after)
        return message

    async def recent_messages(self, sid: str, count: int = 50) -> list[ConversationMessage]:
        self._enter("list_messages")
        return list(reversed(self._find(sid).messages[-count:]))

    async def messages_after(
        self, sid: str, index: int, page_size: int = 50
    ) -> list[ConversationMessage]:
        self._enter("list_messages")
        return [m for m in self._find(sid).messages if m.index > index]

    async def create_interaction(
        self,
        conversation_sid: str,
        *,
        workspace_sid: str,
        workflow_sid: str,
        task_channel: str,
        attributes: dict[str, Any],
    ) -> str:
        after = self._enter("create_interaction")
        self._find(conversation_sid)
        number = next(self._sids)
        self.tasks.append(FakeTask(f"WT{number:032x}", conversation_sid, attributes))
        self._exit(after)
        return f"KD{number:032x}"

    async def conversation_tasks(
        self, workspace_sid: str, conversation_sid: str, statuses: Sequence[str] = ()
    ) -> list[TaskInfo]:
        self._enter("list_tasks")
        return [
            TaskInfo(t.sid, t.assignment_status)
            for t in self.tasks
            if t.conversation_sid == conversation_sid
            and (not statuses or t.assignment_status in statuses)
        ]

    async def waiting_tasks(self, workspace_sid: str, page_size: int = 1000) -> list[WaitingTask]:
        self._enter("list_waiting_tasks")
        return [
            WaitingTask(t.sid, QUEUE_SID, t.assignment_status)
            for t in self.tasks
            if t.assignment_status in ("pending", "reserved")
        ]

    async def queue_now(self, workspace_sid: str, queue_sid: str) -> QueueNow:
        self._enter("queue_real_time_statistics")
        return QueueNow(queue_sid, self.agents_available)

    async def queue_history(
        self, workspace_sid: str, queue_sid: str, minutes: int, thresholds: Sequence[int]
    ) -> QueueHistory:
        self._enter("queue_cumulative_statistics")
        return self.history

    async def any_agent_available(self, workspace_sid: str) -> bool:
        self._enter("list_available_workers")
        return self.agents_available > 0

    async def cancel_task(self, workspace_sid: str, task_sid: str, reason: str) -> None:
        after = self._enter("cancel_task")
        task = next(t for t in self.tasks if t.sid == task_sid)
        task.assignment_status, task.reason = "canceled", reason
        self._exit(after)

    async def fetch_workspace(self, workspace_sid: str) -> WorkspaceInfo:
        self._enter("fetch_workspace")
        return WorkspaceInfo(workspace_sid, "Flex Task Assignment", None, None)

    async def workflow_name(self, workspace_sid: str, workflow_sid: str) -> str:
        self._enter("fetch_workflow")
        return "Assign to Anyone"

    async def task_channel_names(self, workspace_sid: str) -> list[str]:
        self._enter("list_task_channels")
        return ["default", "voice", "chat", "sms", "video", "email"]

    async def fetch_flow(self, flow_sid: str) -> FlowInfo:
        """Any flow asked for is published and sends to Flex, as Flex's guides build it."""
        self._enter("fetch_flow")
        definition = flex_flow_definition("WW" + "0" * 32, "TC" + "0" * 32)
        return FlowInfo(flow_sid, "Flex Bridge to Flex", "published", definition)

    # --- inside ---------------------------------------------------------------------------

    def _enter(self, operation: str) -> TwilioError | None:
        """Count the call; raise a ``before`` fault, or return an ``after`` one."""
        self.calls.append(operation)
        queued = self._faults.get(operation)
        if not queued:
            return None
        fault = queued.pop(0)
        if fault is None:
            return None
        when, error = fault
        if when == "before":
            raise error
        return error

    @staticmethod
    def _exit(after: TwilioError | None) -> None:
        if after is not None:
            raise after

    def _find(self, sid_or_unique_name: str) -> FakeConversation:
        for conversation in self.conversations.values():
            if sid_or_unique_name in (conversation.sid, conversation.unique_name):
                return conversation
        raise ConversationNotFound("fetch_conversation", "not found", 404, 20404)

    def _append(
        self, conversation: FakeConversation, author: str, body: str, attributes: str
    ) -> ConversationMessage:
        index = len(conversation.messages)
        message = ConversationMessage(
            sid=f"IM{conversation.sid[2:10]}{index:024x}",
            index=index,
            author=author,
            body=body,
            attributes=attributes,
            date_created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        conversation.messages.append(message)
        return message

    @staticmethod
    def _info(conversation: FakeConversation) -> ConversationInfo:
        return ConversationInfo(conversation.sid, conversation.unique_name, conversation.state)
