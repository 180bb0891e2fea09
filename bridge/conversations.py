"""The only module that talks to Twilio: the async client and its errors.

The core knows Twilio as :class:`TwilioConversations`, the Conversations calls it makes,
and routing as :class:`TwilioFlex`, the Flex Interactions and TaskRouter calls; the
:class:`ConversationsClient` here is the real one for both (the ``twilio`` library over
HTTP, to Twilio or an emulator). Every call goes through :meth:`ConversationsClient._call`, which
puts a deadline on it (the library ignores its own ``timeout``) and translates Twilio's
exceptions into the bridge's :class:`TwilioError` family, so nothing above this module
sees a Twilio type.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiohttp
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bridge import logs

log = logging.getLogger(__name__)
T = TypeVar("T")

WEBHOOK_FILTERS = ["onMessageAdded", "onConversationStateUpdated", "onParticipantAdded"]


class TwilioError(Exception):
    """Twilio refused or failed a call. ``status``/``code`` are Twilio's when it answered."""

    def __init__(
        self, operation: str, message: str, status: int | None = None, code: int | None = None
    ) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.status = status
        self.code = code


class TwilioUnavailable(TwilioError):
    """Timed out, unreachable, 429 or 5xx: worth retrying later."""


class TwilioRejected(TwilioError):
    """A 4xx that retrying will not fix (bad credentials, bad parameters)."""


class ConversationNotFound(TwilioRejected):
    """20404: the conversation does not exist (deleted, or another account's)."""


class ConversationClosed(TwilioRejected):
    """50377: the conversation is closed and takes no more messages."""


class UniqueNameTaken(TwilioRejected):
    """50353: a conversation with that UniqueName exists already."""


class ParticipantExists(TwilioRejected):
    """50433: the participant is in the conversation already."""


_BY_CODE: dict[int, type[TwilioRejected]] = {
    20404: ConversationNotFound,
    50377: ConversationClosed,
    50353: UniqueNameTaken,
    50433: ParticipantExists,
}


@dataclass(frozen=True)
class ConversationInfo:
    sid: str
    unique_name: str | None
    state: str


@dataclass(frozen=True)
class ConversationMessage:
    sid: str
    index: int
    author: str
    body: str
    attributes: str
    date_created: str


class TwilioConversations(Protocol):
    """The Conversations calls the bridge makes. Each raises a :class:`TwilioError`."""

    async def close(self) -> None: ...

    async def check_access(self) -> None:
        """One cheap authenticated read."""

    async def create_conversation_with_participant(
        self, unique_name: str, friendly_name: str, attributes: str, identity: str
    ) -> ConversationInfo: ...

    async def fetch_conversation(self, sid_or_unique_name: str) -> ConversationInfo: ...

    async def close_conversation(self, sid: str) -> None: ...

    async def add_participant(self, sid: str, identity: str, attributes: str = "{}") -> None: ...

    async def participant_identities(self, sid: str) -> list[str]: ...

    async def add_studio_webhook(self, sid: str, flow_sid: str) -> None: ...

    async def add_event_webhook(self, sid: str, url: str) -> None: ...

    async def webhook_targets(self, sid: str) -> list[str]: ...

    async def post_message(
        self, sid: str, author: str, body: str, attributes: str = "{}"
    ) -> ConversationMessage: ...

    async def recent_messages(self, sid: str, count: int = 50) -> list[ConversationMessage]:
        """The newest ``count`` messages (one page), newest first."""

    async def messages_after(
        self, sid: str, index: int, page_size: int = 50
    ) -> list[ConversationMessage]:
        """Messages with an index above ``index``, oldest first."""


@dataclass(frozen=True)
class TaskInfo:
    sid: str
    assignment_status: str  # pending, reserved, assigned, wrapping, completed, canceled


@dataclass(frozen=True)
class WaitingTask:
    """A task waiting for an agent (pending, or offered: reserved), in queue order. A list
    of tasks carries no attributes (Twilio shows them on a fetch only): no conversation."""

    sid: str
    queue_sid: str
    assignment_status: str


@dataclass(frozen=True)
class QueueNow:
    """A queue's real-time statistics the bridge reads."""

    queue_sid: str
    available_workers: int


@dataclass(frozen=True)
class QueueHistory:
    """A queue's cumulative statistics over a window: how long accepted tasks waited.

    ``accepted_below[t]``: reservations accepted after waiting under ``t`` seconds."""

    queue_sid: str
    accepted: int
    shortest_wait: int | None  # None: TaskRouter did not say
    longest_wait: int | None
    accepted_below: dict[int, int]


@dataclass(frozen=True)
class WorkspaceInfo:
    sid: str
    friendly_name: str
    event_callback_url: str | None
    events_filter: str | None


@dataclass(frozen=True)
class FlowInfo:
    sid: str
    friendly_name: str
    status: str  # draft, published
    definition: dict[str, Any]


class TwilioFlex(Protocol):
    """The Flex and TaskRouter calls routing makes. Each raises a :class:`TwilioError`."""

    async def create_interaction(
        self,
        conversation_sid: str,
        *,
        workspace_sid: str,
        workflow_sid: str,
        task_channel: str,
        attributes: dict[str, Any],
    ) -> str:
        """A Flex Interaction whose channel is the conversation: Flex makes the task."""

    async def conversation_tasks(
        self, workspace_sid: str, conversation_sid: str, statuses: Sequence[str] = ()
    ) -> list[TaskInfo]:
        """The workspace's tasks for the conversation (its ``conversationSid`` attribute),
        in ``statuses`` (all when empty). TaskRouter keeps ended tasks for five minutes."""

    async def waiting_tasks(self, workspace_sid: str, page_size: int = 1000) -> list[WaitingTask]:
        """The workspace's pending and reserved tasks, in TaskRouter's offer order
        (priority, then virtual start time): every page."""

    async def queue_now(self, workspace_sid: str, queue_sid: str) -> QueueNow: ...

    async def queue_history(
        self, workspace_sid: str, queue_sid: str, minutes: int, thresholds: Sequence[int]
    ) -> QueueHistory:
        """The last ``minutes`` of the queue, split at ``thresholds`` (seconds waited)."""

    async def any_agent_available(self, workspace_sid: str) -> bool:
        """Whether any worker of the workspace is in an available activity."""

    async def cancel_task(self, workspace_sid: str, task_sid: str, reason: str) -> None:
        """Cancel a task nobody has accepted (pending or reserved)."""

    async def fetch_workspace(self, workspace_sid: str) -> WorkspaceInfo: ...

    async def workflow_name(self, workspace_sid: str, workflow_sid: str) -> str: ...

    async def task_channel_names(self, workspace_sid: str) -> list[str]:
        """The workspace's task channels, by unique name."""

    async def fetch_flow(self, flow_sid: str) -> FlowInfo:
        """A Studio flow, with its definition."""


class TwilioClient(TwilioConversations, TwilioFlex, Protocol):
    """Everything the bridge asks of Twilio."""


def _channel_key(task_channel: str) -> str:
    """Routing names a task channel by SID (TC…) or by unique name (``chat``)."""
    is_sid = task_channel.startswith("TC") and len(task_channel) == 34
    return "task_channel_sid" if is_sid else "task_channel_unique_name"


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else ""


def _whole(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _accepted_below(split: Any) -> dict[int, int]:
    """TaskRouter's ``split_by_wait_time`` ({"60": {"below": {...}, "above": {...}}}, or a
    list of such objects) as reservations accepted below each threshold; what cannot be
    read is left out."""
    if isinstance(split, dict):
        entries = list(split.items())
    elif isinstance(split, list):
        entries = [pair for item in split if isinstance(item, dict) for pair in item.items()]
    else:
        entries = []
    found: dict[int, int] = {}
    for threshold, sides in entries:
        below = sides.get("below") if isinstance(sides, dict) else None
        accepted = below.get("reservations_accepted") if isinstance(below, dict) else None
        if str(threshold).isdigit() and isinstance(accepted, int):
            found[int(threshold)] = accepted
    return found


def _message(instance: Any) -> ConversationMessage:
    return ConversationMessage(
        sid=instance.sid,
        index=int(instance.index),
        author=instance.author or "system",
        body=instance.body or "",
        attributes=instance.attributes or "{}",
        date_created=_iso(instance.date_created),
    )


def _info(instance: Any) -> ConversationInfo:
    return ConversationInfo(
        sid=instance.sid, unique_name=instance.unique_name, state=instance.state
    )


def translate(operation: str, exc: BaseException) -> TwilioError:
    """Map any exception from the twilio library or the network to a TwilioError."""
    if isinstance(exc, TwilioRestException):
        status, code = int(exc.status), exc.code
        message = exc.msg or f"HTTP {status}"
        if status == 429 or status >= 500:
            return TwilioUnavailable(operation, message, status, code)
        cls = _BY_CODE.get(code or 0, TwilioRejected)
        if status == 404 and cls is TwilioRejected:
            cls = ConversationNotFound
        return cls(operation, message, status, code)
    if isinstance(exc, TwilioException):
        # List calls raise a plain TwilioException("Unable to fetch page", response).
        response = exc.args[1] if len(exc.args) > 1 else None
        page_status: int | None = getattr(response, "status_code", None)
        if page_status is not None and (page_status == 429 or page_status >= 500):
            return TwilioUnavailable(operation, "page fetch failed", page_status)
        if page_status == 404:
            return ConversationNotFound(operation, "not found", page_status, 20404)
        if page_status is not None:
            return TwilioRejected(operation, "page fetch failed", page_status)
        return TwilioUnavailable(operation, str(exc.args[0]) if exc.args else "failed")
    if isinstance(exc, TimeoutError):
        return TwilioUnavailable(operation, "timed out")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TwilioUnavailable(operation, f"unreachable ({type(exc).__name__})")
    return TwilioError(operation, f"unexpected {type(exc).__name__}")


class _HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Sends the Basic credentials as a header.

    The library passes them as aiohttp's ``auth=``, which aiohttp 3.13 deprecates.
    """

    async def request(
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the library's signature
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            headers = dict(headers or {})
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class ConversationsClient:
    """Async wrapper over ``twilio.rest.Client(...).conversations.v1``."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str | None,
        timeout_seconds: float,
        observe: Callable[[str, str], None] | None = None,
        *,
        flex_base_url: str | None = None,
        taskrouter_base_url: str | None = None,
        studio_base_url: str | None = None,
    ) -> None:
        """Create inside the running loop (the HTTP session binds to it); close at shutdown.

        ``base_url``, ``flex_base_url``, ``taskrouter_base_url`` and ``studio_base_url``
        replace Twilio's own hosts for Conversations, Flex, TaskRouter and Studio (None:
        Twilio's).

        ``observe(operation, outcome)`` hears of every call: outcome ``ok``, ``rejected``
        or ``unavailable``.
        """
        self._http = _HeaderAuthHttpClient()
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if base_url:
            self._client.conversations.base_url = base_url
        if flex_base_url:
            self._client.flex_api.base_url = flex_base_url
        if taskrouter_base_url:
            self._client.taskrouter.base_url = taskrouter_base_url
        if studio_base_url:
            self._client.studio.base_url = studio_base_url
        self._v1 = self._client.conversations.v1
        self._timeout = timeout_seconds
        self._observe = observe or (lambda operation, outcome: None)
        self.calls = 0

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, operation: str, awaitable: Awaitable[T]) -> T:
        self.calls += 1
        try:
            async with asyncio.timeout(self._timeout):
                result = await awaitable
        except (TwilioException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = translate(operation, exc)
            outcome = "unavailable" if isinstance(error, TwilioUnavailable) else "rejected"
            self._observe(operation, outcome)
            logs.event(
                log,
                "twilio.call_failed",
                operation=operation,
                outcome=outcome,
                status=error.status,
                twilio_error=error.code,
            )
            raise error from exc
        self._observe(operation, "ok")
        return result

    async def check_access(self) -> None:
        """One cheap authenticated read (a page of one conversation): raises TwilioRejected
        for bad credentials, TwilioUnavailable when Twilio cannot be reached."""
        await self._call("list_conversations", self._v1.conversations.page_async(page_size=1))

    # --- conversations --------------------------------------------------------------------

    async def create_conversation_with_participant(
        self, unique_name: str, friendly_name: str, attributes: str, identity: str
    ) -> ConversationInfo:
        """Conversation and its first participant in one call (ConversationWithParticipants)."""
        instance = await self._call(
            "create_conversation",
            self._v1.conversation_with_participants.create_async(
                unique_name=unique_name,
                friendly_name=friendly_name,
                attributes=attributes,
                participant=[json.dumps({"identity": identity})],
                x_twilio_webhook_enabled="true",
            ),
        )
        return _info(instance)

    async def fetch_conversation(self, sid_or_unique_name: str) -> ConversationInfo:
        instance = await self._call(
            "fetch_conversation", self._v1.conversations(sid_or_unique_name).fetch_async()
        )
        return _info(instance)

    async def close_conversation(self, sid: str) -> None:
        """Set State=closed, with webhooks on, as Flex's own close does."""
        await self._call(
            "close_conversation",
            self._v1.conversations(sid).update_async(
                state="closed", x_twilio_webhook_enabled="true"
            ),
        )

    # --- participants ---------------------------------------------------------------------

    async def add_participant(self, sid: str, identity: str, attributes: str = "{}") -> None:
        await self._call(
            "add_participant",
            self._v1.conversations(sid).participants.create_async(
                identity=identity, attributes=attributes, x_twilio_webhook_enabled="true"
            ),
        )

    async def participant_identities(self, sid: str) -> list[str]:
        found = await self._call(
            "list_participants", self._v1.conversations(sid).participants.list_async(page_size=100)
        )
        return [p.identity for p in found if p.identity]

    # --- webhooks -------------------------------------------------------------------------

    async def add_studio_webhook(self, sid: str, flow_sid: str) -> None:
        """Attach the Studio flow, so the first message sends the conversation to Flex."""
        await self._call(
            "add_studio_webhook",
            self._v1.conversations(sid).webhooks.create_async(
                target="studio",
                configuration_flow_sid=flow_sid,
                configuration_filters=["onMessageAdded"],
            ),
        )

    async def add_event_webhook(self, sid: str, url: str) -> None:
        """Attach the bridge's own webhook for replies, closes and agents joining."""
        await self._call(
            "add_event_webhook",
            self._v1.conversations(sid).webhooks.create_async(
                target="webhook",
                configuration_url=url,
                configuration_method="post",
                configuration_filters=WEBHOOK_FILTERS,
            ),
        )

    async def webhook_targets(self, sid: str) -> list[str]:
        found = await self._call(
            "list_webhooks", self._v1.conversations(sid).webhooks.list_async(page_size=5)
        )
        return [w.target for w in found]

    # --- messages -------------------------------------------------------------------------

    async def post_message(
        self, sid: str, author: str, body: str, attributes: str = "{}"
    ) -> ConversationMessage:
        instance = await self._call(
            "post_message",
            self._v1.conversations(sid).messages.create_async(
                author=author, body=body, attributes=attributes, x_twilio_webhook_enabled="true"
            ),
        )
        return _message(instance)

    async def recent_messages(self, sid: str, count: int = 50) -> list[ConversationMessage]:
        """The newest ``count`` messages (one page), newest first."""
        page = await self._call(
            "list_messages",
            self._v1.conversations(sid).messages.page_async(order="desc", page_size=count),
        )
        return [_message(item) for item in page]

    async def messages_after(
        self, sid: str, index: int, page_size: int = 50
    ) -> list[ConversationMessage]:
        """Messages with an index above ``index``, oldest first, reading newest pages first."""
        messages = self._v1.conversations(sid).messages
        page = await self._call(
            "list_messages", messages.page_async(order="desc", page_size=page_size)
        )
        found: list[ConversationMessage] = []
        while True:
            batch = [_message(item) for item in page]
            found.extend(m for m in batch if m.index > index)
            if not batch or batch[-1].index <= index or page.next_page_url is None:
                break
            page = await self._call("list_messages", page.next_page_async())
        found.sort(key=lambda m: m.index)
        return found

    # --- Flex and TaskRouter --------------------------------------------------------------

    async def create_interaction(
        self,
        conversation_sid: str,
        *,
        workspace_sid: str,
        workflow_sid: str,
        task_channel: str,
        attributes: dict[str, Any],
    ) -> str:
        instance = await self._call(
            "create_interaction",
            self._client.flex_api.v1.interaction.create_async(
                channel={
                    "type": "chat",
                    "initiated_by": "customer",
                    "properties": {"media_channel_sid": conversation_sid},
                },
                routing={
                    "properties": {
                        "workspace_sid": workspace_sid,
                        "workflow_sid": workflow_sid,
                        _channel_key(task_channel): task_channel,
                        "attributes": attributes,
                    }
                },
            ),
        )
        sid: str = instance.sid
        return sid

    async def conversation_tasks(
        self, workspace_sid: str, conversation_sid: str, statuses: Sequence[str] = ()
    ) -> list[TaskInfo]:
        tasks = self._client.taskrouter.v1.workspaces(workspace_sid).tasks
        found = await self._call(
            "list_tasks",
            tasks.list_async(
                evaluate_task_attributes=f'conversationSid == "{conversation_sid}"',
                assignment_status=list(statuses) if statuses else values.unset,
                page_size=50,
                limit=50,
            ),
        )
        return [TaskInfo(t.sid, t.assignment_status) for t in found]

    async def waiting_tasks(self, workspace_sid: str, page_size: int = 1000) -> list[WaitingTask]:
        tasks = self._client.taskrouter.v1.workspaces(workspace_sid).tasks
        found = await self._call(
            "list_waiting_tasks",
            tasks.list_async(
                assignment_status=["pending", "reserved"],
                # TaskRouter offers by priority, then virtual start time (creation,
                # unless a transfer or requeue moved it).
                ordering="Priority:desc,VirtualStartTime:asc",
                page_size=page_size,
            ),
        )
        return [WaitingTask(t.sid, t.task_queue_sid, t.assignment_status) for t in found]

    async def queue_now(self, workspace_sid: str, queue_sid: str) -> QueueNow:
        queue = self._client.taskrouter.v1.workspaces(workspace_sid).task_queues(queue_sid)
        stats = await self._call(
            "queue_real_time_statistics", queue.real_time_statistics().fetch_async()
        )
        return QueueNow(queue_sid, int(stats.total_available_workers or 0))

    async def queue_history(
        self, workspace_sid: str, queue_sid: str, minutes: int, thresholds: Sequence[int]
    ) -> QueueHistory:
        queue = self._client.taskrouter.v1.workspaces(workspace_sid).task_queues(queue_sid)
        stats = await self._call(
            "queue_cumulative_statistics",
            queue.cumulative_statistics().fetch_async(
                minutes=minutes, split_by_wait_time=",".join(str(t) for t in thresholds)
            ),
        )
        waits = stats.wait_duration_until_accepted
        waits = waits if isinstance(waits, dict) else {}
        return QueueHistory(
            queue_sid,
            int(stats.reservations_accepted or 0),
            _whole(waits.get("min")),
            _whole(waits.get("max")),
            _accepted_below(stats.split_by_wait_time),
        )

    async def any_agent_available(self, workspace_sid: str) -> bool:
        workers = self._client.taskrouter.v1.workspaces(workspace_sid).workers
        found = await self._call(
            "list_available_workers", workers.list_async(available="true", page_size=1, limit=1)
        )
        return bool(found)

    async def cancel_task(self, workspace_sid: str, task_sid: str, reason: str) -> None:
        task = self._client.taskrouter.v1.workspaces(workspace_sid).tasks(task_sid)
        await self._call(
            "cancel_task", task.update_async(assignment_status="canceled", reason=reason)
        )

    async def fetch_workspace(self, workspace_sid: str) -> WorkspaceInfo:
        instance = await self._call(
            "fetch_workspace", self._client.taskrouter.v1.workspaces(workspace_sid).fetch_async()
        )
        return WorkspaceInfo(
            instance.sid,
            instance.friendly_name or "",
            instance.event_callback_url or None,
            instance.events_filter or None,
        )

    async def fetch_flow(self, flow_sid: str) -> FlowInfo:
        instance = await self._call(
            "fetch_flow", self._client.studio.v2.flows(flow_sid).fetch_async()
        )
        definition = instance.definition if isinstance(instance.definition, dict) else {}
        return FlowInfo(instance.sid, instance.friendly_name or "", instance.status, definition)

    async def workflow_name(self, workspace_sid: str, workflow_sid: str) -> str:
        workspace = self._client.taskrouter.v1.workspaces(workspace_sid)
        instance = await self._call(
            "fetch_workflow", workspace.workflows(workflow_sid).fetch_async()
        )
        name: str = instance.friendly_name or workflow_sid
        return name

    async def task_channel_names(self, workspace_sid: str) -> list[str]:
        workspace = self._client.taskrouter.v1.workspaces(workspace_sid)
        found = await self._call("list_task_channels", workspace.task_channels.list_async())
        return [c.unique_name for c in found if c.unique_name]
