"""Agent messages coming in: from Twilio's webhooks (push) or from reading the message list
(polling, reconciling). Either way they are stored first, then waiters are woken."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping

from bridge import logs
from bridge.backoff import backoff
from bridge.conversations import (
    ConversationClosed,
    ConversationNotFound,
    TwilioConversations,
    TwilioUnavailable,
)
from bridge.coordination import Wakeups
from bridge.metrics import Metrics
from bridge.routing import Router
from bridge.store import AgentMessage, ClosedBy, ConversationRow, Store
from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 15.0
#: A message's index is a 32-bit integer (and stored as one); anything else is not one.
MAX_INDEX = 2**31 - 1
#: TaskRouter events the bridge hears of: an agent accepting a conversation's task, and
#: the task's end, after which Flex may have closed the conversation.
TASK_EVENTS = ("reservation.accepted", "task.wrapup", "task.completed", "task.canceled")
#: A task's end, and who it puts a conversation's end down to if Flex left it open.
TASK_ENDS: dict[str, ClosedBy] = {"task.completed": "agent", "task.canceled": "system"}
#: Heard when the filter lets it through, not required: it names a new task's SID early
#: (otherwise the bridge looks it up once, by the conversation's SID).
TASK_CREATED = "task.created"


def agent_display_name(params: Mapping[str, str]) -> str | None:
    """The accepting agent's name as Flex shows it: the worker's ``full_name`` attribute,
    else the worker's name (an agent's own data, never the user's)."""
    try:
        attributes = json.loads(params.get("WorkerAttributes", "{}"))
    except ValueError:
        attributes = {}
    full = attributes.get("full_name") if isinstance(attributes, dict) else None
    name = full if isinstance(full, str) and full.strip() else params.get("WorkerName", "")
    return " ".join(name.split())[:64] or None


class Inbox:
    def __init__(
        self,
        store: Store,
        twilio: TwilioConversations,
        wakeups: Wakeups,
        metrics: Metrics,
        router: Router,
        max_reads_in_flight: int = 8,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._twilio = twilio
        self._router = router
        self._wakeups = wakeups
        # Shared by reconciles and polls: however many conversations need reading at
        # once, at most this many list calls are in flight.
        self._reads = asyncio.Semaphore(max_reads_in_flight)
        self._reconciling: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self._state_wanted: set[int] = set()
        self._task_ended: dict[int, tuple[str, ClosedBy]] = {}

    async def close(self) -> None:
        await cancel_and_wait(self._reconciling.values())

    # --- push -----------------------------------------------------------------------------

    async def on_event(self, params: Mapping[str, str]) -> bool:
        """Apply one (already authenticated) Twilio webhook; False if it is not ours."""
        sid = params.get("ConversationSid", "")
        row = await self._store.conversation_by_sid(sid) if sid else None
        if row is None:
            return False
        event = params.get("EventType", "")
        if event == "onMessageAdded":
            await self._on_message(row, params)
        elif event == "onParticipantAdded" and params.get("Identity", row.identity) not in (
            "",
            row.identity,
        ):
            # Flex joins the accepting agent; their name comes from TaskRouter, if at all.
            if await self._store.set_progress(row.id, "with_agent"):
                await self._wakeups.wake(row.identity)
        elif event == "onConversationStateUpdated" and params.get("StateTo") == "closed":
            closed_by: ClosedBy = "timeout" if params.get("Reason") == "TIMER" else "agent"
            await self.finish(row, read_last=True, closed_by=closed_by)
        return True

    async def _on_message(self, row: ConversationRow, params: Mapping[str, str]) -> None:
        try:
            index = int(params.get("Index", ""))
        except ValueError:
            return
        if not 0 <= index <= MAX_INDEX:
            # Not a message index Twilio writes: read the conversation itself instead.
            self.schedule_reconcile(row.id)
            return
        message_sid = params.get("MessageSid", "")
        author = params.get("Author") or "system"
        added = 0
        if message_sid and author not in (row.identity, "system"):
            message = AgentMessage(
                message_sid, index, author, params.get("Body", ""), params.get("DateCreated", "")
            )
            added = await self._store.record_agent_messages(row.id, [message])
            self._metrics.agent_messages_received.labels("webhook").inc(added)
            if added:
                logs.event(
                    log, "agent_message.stored", source="webhook", message=message_sid, index=index
                )
        # Every message, ours too, moves the sync mark along; a jump means some webhook
        # never came (or is late), so read the list from the mark to catch up. Replies are
        # handed out only up to the mark, so the waiters are woken once it has moved.
        if index == row.synced_index + 1:
            if await self._store.advance_synced_index_from(row.id, row.synced_index, index):
                if added:
                    await self._wakeups.wake(row.identity)
            else:
                self.schedule_reconcile(row.id)
        elif index > row.synced_index + 1:
            self.schedule_reconcile(row.id)

    async def on_task_event(self, params: Mapping[str, str]) -> bool:
        """Apply one (already authenticated) TaskRouter event; False if it is not about one
        of the bridge's conversations. A task's end is only a hint: the conversation's own
        state, read from Twilio, says whether it closed; if Flex left it open with no live
        task, no agent will answer it, so the bridge closes it (see :meth:`end_orphan`)."""
        event = params.get("EventType", "")
        if event not in TASK_EVENTS and event != TASK_CREATED:
            return False
        try:
            attributes = json.loads(params.get("TaskAttributes", "{}"))
        except ValueError:
            return False
        sid = attributes.get("conversationSid") if isinstance(attributes, dict) else None
        row = await self._store.conversation_by_sid(sid) if isinstance(sid, str) else None
        if row is None:
            return False
        task_sid = params.get("TaskSid", "")
        if row.sid and task_sid.startswith("WT") and task_sid != row.task_sid:
            # Where the user stands in the queue is found by this (lists omit attributes).
            await self._store.set_task_sid(row.sid, task_sid)
        if row.state == "closed" or event == TASK_CREATED:
            return True
        if event == "reservation.accepted":
            name = agent_display_name(params)
            if await self._store.set_progress(row.id, "with_agent", name):
                logs.event(log, "conversation.agent_joined", sid=row.sid)
                await self._wakeups.wake(row.identity)
            return True
        if event == "task.wrapup" and await self._store.set_progress(row.id, "wrapping_up"):
            await self._wakeups.wake(row.identity)
        workspace_sid = params.get("WorkspaceSid", "")
        if event in TASK_ENDS and workspace_sid:
            self._task_ended[row.id] = (workspace_sid, TASK_ENDS[event])
        self.schedule_reconcile(row.id, state=True)
        return True

    # --- pull -----------------------------------------------------------------------------

    def schedule_reconcile(self, conversation_id: int, *, state: bool = False) -> None:
        """Read the conversation's messages in the background (and, with ``state``, its
        state: a close may have reached nobody); calls coalesce."""
        if state:
            self._state_wanted.add(conversation_id)
        if conversation_id in self._reconciling:
            self._again.add(conversation_id)
            return
        task = asyncio.get_running_loop().create_task(self._reconcile_loop(conversation_id))
        self._reconciling[conversation_id] = task

    async def _reconcile_loop(self, conversation_id: int) -> None:
        failures = 0
        try:
            while True:
                self._again.discard(conversation_id)
                state = conversation_id in self._state_wanted
                self._state_wanted.discard(conversation_id)
                ended = self._task_ended.pop(conversation_id, None)
                try:
                    if ended is not None:
                        await self.end_orphan(conversation_id, *ended)
                    elif state:
                        await self.sync(conversation_id)
                    else:
                        await self.reconcile(conversation_id)
                except TwilioUnavailable:
                    failures += 1
                    await asyncio.sleep(backoff(failures, 1.0, MAX_BACKOFF_SECONDS))
                    self._again.add(conversation_id)
                    if state:
                        self._state_wanted.add(conversation_id)
                    if ended is not None:
                        self._task_ended.setdefault(conversation_id, ended)
                except Exception:
                    log.exception("reconcile of conversation %s failed", conversation_id)
                if conversation_id not in self._again:
                    return
        finally:
            self._reconciling.pop(conversation_id, None)

    async def reconcile(self, conversation_id: int) -> None:
        """Store any message after the sync mark that the webhooks did not bring."""
        row = await self._store.conversation_by_id(conversation_id)
        if row.sid is None:
            return
        try:
            await self._read_new(row)
        except ConversationNotFound:
            await self.finish(row, read_last=False, closed_by="lost")

    async def sync(self, conversation_id: int) -> None:
        """New messages, then the conversation's state (the reconcile: Twilio sends no
        webhook for a close nobody asked it to announce)."""
        await self.read_messages(conversation_id)
        await self.read_state(conversation_id)

    async def read_messages(self, conversation_id: int) -> int:
        """Read the conversation's new messages (one list call); how many there were, by
        anyone. A conversation gone from Twilio is finished."""
        row = await self._store.conversation_by_id(conversation_id)
        if row.sid is None or row.state == "closed":
            return 0
        try:
            return await self._read_new(row)
        except ConversationNotFound:
            await self.finish(row, read_last=False, closed_by="lost")
            return 0

    async def read_state(self, conversation_id: int) -> None:
        """Read the conversation's state (one fetch); finish it if Twilio closed it."""
        row = await self._store.conversation_by_id(conversation_id)
        if row.sid is None or row.state == "closed":
            return
        try:
            async with self._reads:
                info = await self._twilio.fetch_conversation(row.sid)
        except ConversationNotFound:
            await self.finish(row, read_last=False, closed_by="lost")
            return
        if info.state == "closed":
            await self.finish(row, read_last=True, closed_by="agent")

    async def end_orphan(self, conversation_id: int, workspace_sid: str, by: ClosedBy) -> None:
        """After a task of the conversation ended: read its messages and state; if Flex left
        it active with no live task (a task completed or canceled through TaskRouter, which
        Flex does not carry over to the conversation), no agent will ever answer it, so close
        it as Twilio advises, and put the close down to ``by``. An inactive (parked)
        conversation, or one with another live task (a transfer), is left as it is."""
        await self.sync(conversation_id)
        row = await self._store.conversation_by_id(conversation_id)
        if row.sid is None or row.state == "closed":
            return
        async with self._reads:
            info = await self._twilio.fetch_conversation(row.sid)
        if info.state != "active" or await self._router.holds(row.sid, workspace_sid):
            return
        await self._store.mark_closing(row.id, by)
        # Closed in between by someone else: still closed, and still put down to ``by``.
        with contextlib.suppress(ConversationClosed):
            await self._twilio.close_conversation(row.sid)
        logs.event(log, "conversation.orphan_closed", sid=row.sid, closed_by=by)
        await self.finish(row, read_last=True, closed_by=by)

    async def _read_new(self, row: ConversationRow) -> int:
        assert row.sid is not None
        async with self._reads:
            messages = await self._twilio.messages_after(row.sid, row.synced_index)
        if not messages:
            return 0
        agent = [
            AgentMessage(m.sid, m.index, m.author, m.body, m.date_created)
            for m in messages
            if m.author not in (row.identity, "system")
        ]
        added = await self._store.record_agent_messages(row.id, agent, messages[-1].index)
        if added:
            self._metrics.agent_messages_received.labels("read").inc(added)
            logs.event(log, "agent_message.stored", source="read", count=added, sid=row.sid)
        if agent:
            # Even when every one was stored already (a webhook that came ahead of the sync
            # mark), moving the mark past them is what makes them deliverable.
            await self._wakeups.wake(row.identity)
        return len(messages)

    async def finish(self, row: ConversationRow, *, read_last: bool, closed_by: ClosedBy) -> None:
        """Mark a conversation closed (put down to ``closed_by`` unless a closer said who
        it is first), reading its last messages first when asked."""
        if read_last and row.sid:
            try:
                await self._read_new(await self._store.conversation_by_id(row.id))
            except (ConversationNotFound, TwilioUnavailable) as exc:
                log.info("could not read the last messages of %s: %s", row.sid, type(exc).__name__)
        if await self._store.mark_closed(row.id, closed_by):
            logs.event(log, "conversation.closed", sid=row.sid)
        await self._wakeups.wake(row.identity)
