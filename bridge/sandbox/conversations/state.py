"""In-memory model of a Twilio Conversations account: the emulator's single source of truth.

Every change goes through :class:`Account` so the REST API, the agent console and the
timers see the same state and emit the same events.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, cast

from bridge.sandbox.shared.clock import iso, new_sid, now
from bridge.sandbox.shared.errors import EmulatorError, check_json_attributes, invalid, not_found

State = Literal["initializing", "inactive", "active", "closed"]
Source = Literal["API", "SDK"]

WEBHOOK_EVENTS = (
    "onMessageAdded",
    "onMessageUpdated",
    "onMessageRemoved",
    "onConversationUpdated",
    "onConversationStateUpdated",
    "onConversationRemoved",
    "onParticipantAdded",
    "onParticipantUpdated",
    "onParticipantRemoved",
    "onDeliveryUpdated",
)


@dataclass
class Participant:
    sid: str
    conversation_sid: str
    identity: str | None
    attributes: str
    date_created: datetime
    date_updated: datetime
    role_sid: str | None = None
    last_read_message_index: int | None = None


@dataclass
class Message:
    sid: str
    conversation_sid: str
    index: int
    author: str
    body: str | None
    attributes: str
    participant_sid: str | None
    date_created: datetime
    date_updated: datetime
    source: Source = "API"


@dataclass
class Webhook:
    sid: str
    conversation_sid: str
    target: str
    url: str | None
    method: str
    filters: list[str]
    triggers: list[str]
    flow_sid: str | None
    replay_after: int | None
    date_created: datetime
    date_updated: datetime

    def configuration(self) -> dict[str, object]:
        if self.target == "studio":
            config: dict[str, object] = {"flow_sid": self.flow_sid}
            if self.filters:
                config["filters"] = list(self.filters)
            return config
        config = {"url": self.url, "method": self.method, "filters": list(self.filters)}
        if self.target == "trigger":
            config["filters"] = list(self.triggers)
        return config


@dataclass
class Conversation:
    sid: str
    friendly_name: str | None
    unique_name: str | None
    attributes: str
    state: State
    date_created: datetime
    date_updated: datetime
    timer_inactive: timedelta | None = None
    timer_closed: timedelta | None = None
    last_activity: datetime = field(default_factory=now)
    participants: dict[str, Participant] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    next_index: int = 0

    def timers(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        if self.state == "closed":
            return out
        if self.timer_inactive is not None and self.state == "active":
            out["date_inactive"] = iso(self.last_activity + self.timer_inactive)
        if self.timer_closed is not None:
            out["date_closed"] = iso(self.last_activity + self.timer_closed)
        return out


@dataclass(frozen=True)
class Event:
    """Something a webhook may be told about."""

    conversation_sid: str
    event_type: str
    params: dict[str, str]
    source: Source
    webhooks_enabled: bool


Listener = Callable[[Event], None]


class Account:
    """One Twilio account's Conversations service."""

    def __init__(self, account_sid: str, index_gap: Callable[[], int] = lambda: 0) -> None:
        """``index_gap`` says how many numbers a new message's index skips (a fault mode:
        Twilio's message indexes are not promised to be consecutive)."""
        self.account_sid = account_sid
        self._index_gap = index_gap
        self.chat_service_sid = new_sid("IS")
        self.conversations: dict[str, Conversation] = {}
        self._by_unique_name: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self.changed = asyncio.Event()

    # --- events ---------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)
        # Wake anyone watching for changes (the console), then re-arm.
        self.changed.set()
        self.changed = asyncio.Event()

    def _base_params(self, conv: Conversation, event_type: str, source: Source) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ChatServiceSid": self.chat_service_sid,
            "ConversationSid": conv.sid,
            "EventType": event_type,
            "Source": source,
            "RetryCount": "0",
        }

    # --- conversations --------------------------------------------------------------------

    def get(self, sid_or_unique_name: str) -> Conversation:
        conv = self.conversations.get(sid_or_unique_name)
        if conv is None:
            sid = self._by_unique_name.get(sid_or_unique_name)
            conv = self.conversations.get(sid) if sid else None
        if conv is None:
            raise not_found(f"/Conversations/{sid_or_unique_name}")
        return conv

    def create_conversation(
        self,
        *,
        friendly_name: str | None,
        unique_name: str | None,
        attributes: str | None,
        state: str | None,
        timer_inactive: timedelta | None,
        timer_closed: timedelta | None,
    ) -> Conversation:
        if unique_name and unique_name in self._by_unique_name:
            raise EmulatorError(409, 50353, "Conversation with provided unique name already exists")
        if state is not None and state not in ("active", "inactive", "closed"):
            raise invalid(f"Invalid State: {state!r}")
        created = now()
        conv = Conversation(
            sid=new_sid("CH"),
            friendly_name=friendly_name,
            unique_name=unique_name or None,
            attributes=check_json_attributes(attributes),
            state=cast(State, state or "active"),
            date_created=created,
            date_updated=created,
            timer_inactive=timer_inactive,
            timer_closed=timer_closed,
            last_activity=created,
        )
        self.conversations[conv.sid] = conv
        if conv.unique_name:
            self._by_unique_name[conv.unique_name] = conv.sid
        self._emit(Event(conv.sid, "onConversationAdded", {}, "API", False))
        return conv

    def update_conversation(
        self,
        conv: Conversation,
        *,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        attributes: str | None = None,
        state: str | None = None,
        timer_inactive: timedelta | None = None,
        timer_closed: timedelta | None = None,
        source: Source = "API",
        webhooks_enabled: bool = False,
        reason: str = "API",
    ) -> Conversation:
        if state is not None and state not in ("active", "inactive", "closed"):
            raise invalid(f"Invalid State: {state!r}")
        if conv.state == "closed":
            # Twilio refuses every update of a closed conversation, closing it again too.
            raise EmulatorError(409, 50377, "Conversation is closed and can no longer be updated")
        if unique_name is not None and unique_name != conv.unique_name:
            if unique_name in self._by_unique_name:
                raise EmulatorError(
                    409, 50353, "Conversation with provided unique name already exists"
                )
            if conv.unique_name:
                del self._by_unique_name[conv.unique_name]
            conv.unique_name = unique_name or None
            if conv.unique_name:
                self._by_unique_name[conv.unique_name] = conv.sid
        if friendly_name is not None:
            conv.friendly_name = friendly_name
        if attributes is not None:
            conv.attributes = check_json_attributes(attributes)
        if timer_inactive is not None:
            conv.timer_inactive = timer_inactive
        if timer_closed is not None:
            conv.timer_closed = timer_closed
        conv.date_updated = now()
        if state is not None and state != conv.state:
            self._set_state(
                conv,
                cast(State, state),
                source=source,
                webhooks_enabled=webhooks_enabled,
                reason=reason,
            )
        return conv

    def _set_state(
        self,
        conv: Conversation,
        state: State,
        *,
        source: Source,
        webhooks_enabled: bool,
        reason: str,
    ) -> None:
        before = conv.state
        conv.state = state
        conv.date_updated = now()
        params = self._base_params(conv, "onConversationStateUpdated", source)
        params.update(
            {
                "StateFrom": before,
                "StateTo": state,
                "StateUpdated": iso(conv.date_updated) or "",
                "Reason": reason,
                "DateCreated": iso(conv.date_created) or "",
                "DateUpdated": iso(conv.date_updated) or "",
            }
        )
        self._emit(Event(conv.sid, "onConversationStateUpdated", params, source, webhooks_enabled))

    def delete_conversation(self, conv: Conversation) -> None:
        del self.conversations[conv.sid]
        if conv.unique_name:
            self._by_unique_name.pop(conv.unique_name, None)
        self._emit(Event(conv.sid, "onConversationRemoved", {}, "API", False))

    def run_timers(self, moment: datetime) -> None:
        """Move conversations whose timers have run out to inactive or closed."""
        for conv in list(self.conversations.values()):
            if conv.state == "closed":
                continue
            if conv.timer_closed is not None and moment >= conv.last_activity + conv.timer_closed:
                self._set_state(conv, "closed", source="API", webhooks_enabled=True, reason="TIMER")
            elif (
                conv.state == "active"
                and conv.timer_inactive is not None
                and moment >= conv.last_activity + conv.timer_inactive
            ):
                self._set_state(
                    conv, "inactive", source="API", webhooks_enabled=True, reason="TIMER"
                )

    # --- participants ---------------------------------------------------------------------

    def add_participant(
        self,
        conv: Conversation,
        *,
        identity: str | None,
        attributes: str | None,
        source: Source = "API",
        webhooks_enabled: bool = False,
    ) -> Participant:
        if conv.state == "closed":
            raise EmulatorError(409, 50377, "Participants cannot be added to a closed Conversation")
        if not identity:
            raise invalid("Either Identity or MessagingBinding.Address must be provided")
        if any(p.identity == identity for p in conv.participants.values()):
            raise EmulatorError(409, 50433, "Participant already exists")
        created = now()
        participant = Participant(
            sid=new_sid("MB"),
            conversation_sid=conv.sid,
            identity=identity,
            attributes=check_json_attributes(attributes),
            date_created=created,
            date_updated=created,
            role_sid=new_sid("RL"),
        )
        conv.participants[participant.sid] = participant
        params = self._base_params(conv, "onParticipantAdded", source)
        params.update(
            {
                "ParticipantSid": participant.sid,
                "Identity": identity,
                "RoleSid": participant.role_sid or "",
                "Attributes": participant.attributes,
                "DateCreated": iso(created) or "",
            }
        )
        self._emit(Event(conv.sid, "onParticipantAdded", params, source, webhooks_enabled))
        return participant

    def remove_participant(
        self,
        conv: Conversation,
        participant: Participant,
        *,
        source: Source = "API",
        webhooks_enabled: bool = False,
    ) -> None:
        del conv.participants[participant.sid]
        params = self._base_params(conv, "onParticipantRemoved", source)
        params.update({"ParticipantSid": participant.sid, "Identity": participant.identity or ""})
        self._emit(Event(conv.sid, "onParticipantRemoved", params, source, webhooks_enabled))

    def participant(self, conv: Conversation, sid: str) -> Participant:
        found = conv.participants.get(sid)
        if found is None:
            found = next((p for p in conv.participants.values() if p.identity == sid), None)
        if found is None:
            raise not_found(f"/Conversations/{conv.sid}/Participants/{sid}")
        return found

    # --- messages -------------------------------------------------------------------------

    def add_message(
        self,
        conv: Conversation,
        *,
        author: str | None,
        body: str | None,
        attributes: str | None,
        source: Source = "API",
        webhooks_enabled: bool = False,
    ) -> Message:
        if conv.state == "closed":
            raise EmulatorError(409, 50377, "Messages cannot be added to a closed Conversation")
        if not body:
            raise invalid("Missing required parameter Body or MediaSid in the post body")
        if len(body) > 1600:
            raise EmulatorError(400, 50006, "Message body is too long: at most 1600 characters")
        author = author or "system"
        participant = next((p for p in conv.participants.values() if p.identity == author), None)
        created = now()
        message = Message(
            sid=new_sid("IM"),
            conversation_sid=conv.sid,
            index=conv.next_index + self._index_gap(),
            author=author,
            body=body,
            attributes=check_json_attributes(attributes),
            participant_sid=participant.sid if participant else None,
            date_created=created,
            date_updated=created,
            source=source,
        )
        conv.next_index = message.index + 1
        conv.messages.append(message)
        conv.last_activity = created
        if conv.state == "inactive":
            self._set_state(
                conv, "active", source=source, webhooks_enabled=webhooks_enabled, reason="MESSAGE"
            )
        params = self._base_params(conv, "onMessageAdded", source)
        params.update(
            {
                "MessageSid": message.sid,
                "Index": str(message.index),
                "Author": author,
                "Body": body,
                "Attributes": message.attributes,
                "ParticipantSid": message.participant_sid or "",
                "DateCreated": iso(created) or "",
            }
        )
        if source == "SDK":
            params["ClientIdentity"] = author
        self._emit(Event(conv.sid, "onMessageAdded", params, source, webhooks_enabled))
        return message

    def message(self, conv: Conversation, sid: str) -> Message:
        found = next((m for m in conv.messages if m.sid == sid), None)
        if found is None:
            raise not_found(f"/Conversations/{conv.sid}/Messages/{sid}")
        return found

    # --- webhooks -------------------------------------------------------------------------

    def add_webhook(
        self,
        conv: Conversation,
        *,
        target: str,
        url: str | None,
        method: str | None,
        filters: list[str],
        triggers: list[str],
        flow_sid: str | None,
        replay_after: int | None,
    ) -> Webhook:
        if target not in ("webhook", "trigger", "studio"):
            raise invalid("Missing or invalid required parameter Target in the post body")
        method = (method or "post").lower()
        if method not in ("get", "post"):
            raise invalid(f"Invalid Configuration.Method: {method!r}")
        unknown = [f for f in filters if f not in WEBHOOK_EVENTS]
        if unknown:
            raise invalid(f"Invalid Configuration.Filters: {', '.join(unknown)}")
        if target == "studio":
            if not flow_sid or not re.match(r"^FW[0-9a-fA-F]{32}$", flow_sid):
                raise invalid("Configuration.FlowSid must be a Studio Flow SID (FW…)")
        elif not url or not re.match(r"^https?://", url):
            raise invalid("Configuration.Url must be an absolute http(s) URL")
        if sum(1 for w in conv.webhooks.values() if w.target == target) >= 5:
            raise EmulatorError(400, 50300, "A conversation can have at most 5 webhooks per target")
        created = now()
        hook = Webhook(
            sid=new_sid("WH"),
            conversation_sid=conv.sid,
            target=target,
            url=url if target != "studio" else None,
            method=method,
            filters=list(filters),
            triggers=list(triggers),
            flow_sid=flow_sid if target == "studio" else None,
            replay_after=replay_after,
            date_created=created,
            date_updated=created,
        )
        conv.webhooks[hook.sid] = hook
        return hook

    def webhook(self, conv: Conversation, sid: str) -> Webhook:
        found = conv.webhooks.get(sid)
        if found is None:
            raise not_found(f"/Conversations/{conv.sid}/Webhooks/{sid}")
        return found

    def wake_watchers(self) -> None:
        """Wake watchers (the agent console) after a change Twilio sends no webhook for."""
        self._wake()

    def _wake(self) -> None:
        """Wake watchers after a change that Twilio sends no webhook for."""
        self.changed.set()
        self.changed = asyncio.Event()
