"""The store: what the hand-off core keeps, as a protocol with typed rows.

The core reads and writes through :class:`Store` only; an implementation (SQLite in
``bridge.stores.sqlite``, the embedded default) holds the connection and the SQL. The
rules every implementation keeps:

- at most one conversation per identity that is not closed, however many claims race;
- an agent message is stored once (its SID is its key), however often it is seen;
- a reply is handed out under a lease: one atomic take leases what it returns (none
  leased by another call still in time), and only messages up to their conversation's
  sync mark (every message below the mark is known, so no earlier reply can turn up after
  a later one was handed out); it counts as delivered when the lease is confirmed, and is
  deliverable again when the lease is released or runs out;
- a user message is stored before it is posted, and leaves the outbox only as ``sent`` or
  ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

ConversationState = Literal["opening", "open", "closed"]
#: Who ended a conversation: the agent (or Flex on the agent's behalf), the user through
#: the bridge, Twilio's inactivity timer, or nobody (it vanished from Twilio: deleted, or
#: the sandbox restarted).
ClosedBy = Literal["agent", "user", "timeout", "system", "lost"]
#: How far Flex has taken an open conversation: routed and waiting for an agent, with an
#: agent who accepted it, or in wrap-up after the agent ended the chat.
Progress = Literal["queued", "with_agent", "wrapping_up"]
#: Progress only moves forward (a transfer to another agent stays ``with_agent``).
PROGRESS_ORDER: dict[Progress, int] = {"queued": 1, "with_agent": 2, "wrapping_up": 3}
#: What a user waiting past the assignment timeout chose to do.
WaitingChoice = Literal["keep_waiting", "leave_message", "continue_with_assistant"]
WAITING_CHOICES: tuple[WaitingChoice, ...] = (
    "keep_waiting",
    "leave_message",
    "continue_with_assistant",
)
OutboxState = Literal["pending", "sent", "failed"]
#: ``after`` for a caller that has seen no reply of the user's latest conversation yet.
NOTHING_SEEN = "none"


@dataclass(frozen=True)
class ConversationRow:
    id: int
    identity: str
    generation: int
    sid: str | None
    state: ConversationState
    synced_index: int
    created_at: str
    closed_at: str | None
    closed_by: ClosedBy | None
    progress: Progress | None = None
    #: The accepting agent's display name (from TaskRouter's worker), never the user's.
    agent_name: str | None = None
    choice: WaitingChoice | None = None
    choice_at: str | None = None
    #: The TaskRouter task routing it, once known.
    task_sid: str | None = None


@dataclass(frozen=True)
class AgentMessage:
    message_sid: str
    idx: int
    author: str
    body: str
    sent_at: str


@dataclass(frozen=True)
class LeasedReply:
    message: AgentMessage
    leased: bool  # False: delivered before, returned again because it follows ``after``
    #: The user saw it in the live chat pane already.
    shown: bool = False


@dataclass(frozen=True)
class OutboxRow:
    id: int
    identity: str
    body: str
    context: str | None
    idempotency_key: str
    state: OutboxState
    attempts: int
    next_attempt_at: float
    conversation_id: int | None
    created_at: str
    sent_at: str | None
    last_error: str | None
    profile: str | None
    #: Where its first part landed in the conversation (Twilio's message index).
    posted_index: int | None = None


@dataclass(frozen=True)
class OperationalCounts:
    open_conversations: int
    outbox_depth: int


class StoreUnavailable(Exception):
    """The store could not be opened, reached or written.

    ``detail`` says what was found and ``hint`` what to do about it, neither with secrets.
    """

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class Store(Protocol):
    """What the hand-off core needs kept. Every method is one atomic step."""

    async def close(self) -> None: ...

    # --- health -----------------------------------------------------------------------
    async def ping(self) -> None:
        """Answer a trivial query, or raise."""

    async def check_writable(self) -> str:
        """Write in a transaction that is rolled back, and say what was checked; raise
        StoreUnavailable if it fails."""

    async def operational_counts(self) -> OperationalCounts: ...

    # --- settings the bridge keeps for itself -------------------------------------------
    async def get_or_create_setting(self, key: str, value: str) -> str:
        """The stored value for ``key``, storing ``value`` first if there is none."""

    # --- conversations ------------------------------------------------------------------
    async def latest_conversation(self, identity: str) -> ConversationRow | None:
        """The identity's newest conversation, whatever its state."""

    async def conversation_by_id(self, conversation_id: int) -> ConversationRow:
        """Raises LookupError when there is none."""

    async def conversation_by_sid(self, sid: str) -> ConversationRow | None: ...

    async def claim_conversation(self, identity: str) -> ConversationRow:
        """The identity's current (not closed) conversation, claiming a new generation in
        state ``opening`` if there is none; of simultaneous claims exactly one inserts."""

    async def set_sid(self, conversation_id: int, sid: str) -> None: ...

    async def mark_open(self, conversation_id: int, sid: str) -> None:
        """Record the SID and state ``open`` (routed to Flex: progress ``queued``), unless
        it was closed meanwhile."""

    async def mark_closing(self, conversation_id: int, by: ClosedBy | None) -> None:
        """Say who is closing a conversation that is not closed yet (None: nobody after
        all), so a close that lands before the closer finishes is put down to them."""

    async def mark_closed(self, conversation_id: int, by: ClosedBy) -> bool:
        """Close it, put down to whoever :meth:`mark_closing` named, else ``by``; True if
        this call closed it."""

    async def set_progress(
        self, conversation_id: int, progress: Progress, agent_name: str | None = None
    ) -> bool:
        """Move an open conversation's progress forward (or name the agent it is with,
        after a transfer); True if anything changed. A late, earlier step is ignored."""

    async def set_task_sid(self, sid: str, task_sid: str) -> None:
        """Remember the task routing the conversation with this SID (the newest wins)."""

    async def set_choice(self, conversation_id: int, choice: WaitingChoice) -> bool:
        """Record what the user chose while no agent had accepted (and when), unless the
        conversation is closed; True if recorded."""

    async def open_conversations(self) -> list[ConversationRow]:
        """Open conversations that have a SID."""

    async def open_task_sids(self) -> list[str]:
        """The tasks routing open conversations, where known."""

    async def conversations_with_gaps(self) -> list[int]:
        """Conversations holding agent messages above the sync mark: some message below
        them has not been seen yet."""

    # --- agent messages -----------------------------------------------------------------
    async def record_agent_messages(
        self, conversation_id: int, messages: list[AgentMessage], synced_index: int | None = None
    ) -> int:
        """Store agent messages, all or none; return how many were new. With
        ``synced_index``, the sync mark then moves up to it (never down)."""

    async def advance_synced_index_from(
        self, conversation_id: int, expected: int, index: int
    ) -> bool:
        """Move the sync mark from ``expected`` to ``index``; False if it was elsewhere."""

    async def take_replies(
        self, identity: str, lease: str, until: float, after: str | None = None
    ) -> list[LeasedReply]:
        """Lease to ``lease`` (until the unix time ``until``) every deliverable reply of
        ``identity`` not delivered yet and not leased by another call in time. With
        ``after`` (a reply's message SID), that reply and every one before it count as
        delivered (the caller saw them), and every reply that follows it is returned,
        delivered or not; with NOTHING_SEEN, every reply of the latest conversation is. An
        ``after`` that is not one of the identity's replies is ignored. Older
        conversations first, then by index."""

    async def confirm_replies(self, lease: str) -> int:
        """The lease's replies reached the caller: delivered. Returns how many."""

    async def conversation_replies(self, conversation_id: int, newest: int) -> list[AgentMessage]:
        """The conversation's newest ``newest`` agent messages up to its sync mark, in
        order."""

    async def mark_shown(self, conversation_id: int, message_sid: str) -> bool:
        """The user saw that reply of the conversation, and every one before it, in the
        live chat pane; False if the conversation has no such reply (up to its mark)."""

    async def release_replies(self, lease: str, message_sids: Sequence[str] | None = None) -> None:
        """The lease's replies (or those of them named) did not reach the caller."""

    # --- the outbox ---------------------------------------------------------------------
    async def enqueue_message(
        self, identity: str, body: str, context: str | None, profile: str | None = None
    ) -> OutboxRow:
        """Store a user message, ``pending``, with a fresh idempotency key."""

    async def outbox_row(self, row_id: int) -> OutboxRow:
        """Raises LookupError when there is none."""

    async def pending_messages(self, identity: str | None = None) -> list[OutboxRow]:
        """Pending user messages, oldest first (of one identity, or of all)."""

    async def conversation_messages(
        self, conversation: ConversationRow, newest: int
    ) -> list[OutboxRow]:
        """The newest ``newest`` of the user's messages of that conversation, oldest
        first: those posted to it, those still pending, and those refused since it began."""

    async def conversation_size(self, conversation: ConversationRow) -> int:
        """How many lines the conversation has: the user's messages (as above) and the
        agent's up to the sync mark."""

    async def begin_attempt(self, row_id: int) -> int:
        """Count a delivery attempt before it starts; return how many came before it."""

    async def mark_sent(
        self, row_id: int, conversation_id: int, posted_index: int | None = None
    ) -> None: ...

    async def mark_attempt_failed(
        self, row_id: int, next_attempt_at: float, error: str, *, final: bool
    ) -> None:
        """Note a failed attempt: retried at ``next_attempt_at``, or ``failed`` if final."""
