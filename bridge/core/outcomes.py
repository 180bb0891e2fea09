"""What an operation came to: a kind (not a sentence) and the replies handed out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bridge.core.queue_watch import QueueStanding
from bridge.store import ClosedBy, ConversationRow, WaitingChoice

Outcome = Literal[
    "answered",  # replies are here
    "waiting",  # the conversation is open, no reply came within the wait
    "agent_joined",  # no reply yet, but an agent accepted the conversation meanwhile
    "no_one_accepted",  # no agent accepted within the assignment timeout: the user chooses
    "unavailable",  # closed or nobody available, and the policy declines: nothing was sent
    "queued",  # the user's message is stored, not yet posted (Twilio is down or slow)
    "closed_by_agent",
    "closed_by_user",
    "closed_by_timeout",  # Twilio's inactivity timer closed it
    "closed_by_system",  # Flex ended its task with no agent (no one took it in time)
    "conversation_lost",  # it vanished from Twilio (deleted, or the sandbox restarted)
    "none_yet",  # the user has never had a conversation
]
#: The contract's statuses; the outcome says more.
Status = Literal["answered", "waiting", "closed", "unavailable"]

_CLOSED: dict[ClosedBy, Outcome] = {
    "agent": "closed_by_agent",
    "user": "closed_by_user",
    "timeout": "closed_by_timeout",
    "system": "closed_by_system",
    "lost": "conversation_lost",
}


def closed_outcome_by(closed_by: ClosedBy | None) -> ClosedBy:
    """Who a close is put down to: one closed before the bridge recorded who closed it
    was closed on Flex's side, by the agent."""
    return closed_by or "agent"


def closed_outcome(closed_by: ClosedBy | None) -> Outcome:
    return _CLOSED[closed_outcome_by(closed_by)]


#: Where the user stands with the support team (``None``: not known).
HandoffState = Literal["queued", "with_agent", "wrapping_up", "closed", "after_hours", "no_agents"]


@dataclass(frozen=True)
class HandoffStatus:
    """What a person on a support line would ask: in line, where, how long, with whom,
    who ended it, when they open. Unknown is None, never guessed."""

    state: HandoffState | None = None
    agent_name: str | None = None
    closed_by: ClosedBy | None = None
    queue: QueueStanding | None = None
    opens_at: str | None = None  # ISO 8601, UTC: when the team next opens
    #: What the user may choose now (no agent accepted in time), and what they chose.
    choices: tuple[WaitingChoice, ...] = ()
    choice: WaitingChoice | None = None
    #: For the note only: when the team opens, on its own clock, and how long the user
    #: has waited for an agent (seconds).
    opens_local: str | None = None
    waited_seconds: int | None = None

    @classmethod
    def of(cls, row: ConversationRow | None) -> HandoffStatus:
        """The status of the user's latest conversation (None: they never had one)."""
        if row is None:
            return cls()
        if row.state == "closed":
            return cls("closed", row.agent_name, closed_outcome_by(row.closed_by))
        if row.state == "opening" or row.progress is None:
            return cls()
        with_agent = row.progress in ("with_agent", "wrapping_up")
        return cls(row.progress, row.agent_name if with_agent else None, choice=row.choice)

    @property
    def waiting_for_agent(self) -> bool:
        """Routed to Flex and not yet accepted by anyone."""
        return self.state in ("queued", "after_hours", "no_agents")

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "agent": {"name": self.agent_name} if self.agent_name else None,
            "queue": self.queue.to_json() if self.queue else None,
            "closed_by": self.closed_by,
            "opens_at": self.opens_at,
            "choices": list(self.choices) or None,
            "choice": self.choice,
        }


@dataclass(frozen=True)
class Reply:
    id: str
    body: str
    sent_at: str
    #: The user saw it in the live chat pane already (the model must not repeat it).
    shown_in_pane: bool = False

    def to_json(self) -> dict[str, object]:
        answer: dict[str, object] = {"id": self.id, "body": self.body, "sent_at": self.sent_at}
        if self.shown_in_pane:
            answer["shown_in_pane"] = True
        return answer


@dataclass(frozen=True)
class HandoffResult:
    outcome: Outcome
    replies: list[Reply]
    #: Under which lease the replies were taken: the front door confirms it once the
    #: answer reached the caller, or releases it (see bridge.core.handout).
    lease: str | None = None
    #: More replies are waiting: this answer was full.
    more: bool = False
    handoff: HandoffStatus = field(default_factory=HandoffStatus)

    @property
    def status(self) -> Status:
        if self.outcome in ("answered", "waiting", "unavailable"):
            return self.outcome
        if self.outcome in ("agent_joined", "no_one_accepted"):
            return "waiting"
        if self.outcome == "queued":
            return "answered" if self.replies else "waiting"
        return "closed"

    def to_json(self, note: str) -> dict[str, object]:
        """The contract's ``{status, replies, note}`` (and ``closed_by`` when closed),
        with the front door's note."""
        answer: dict[str, object] = {
            "status": self.status,
            "replies": [reply.to_json() for reply in self.replies],
            "note": note,
        }
        if self.status == "closed":
            answer["closed_by"] = self.handoff.closed_by
        answer["handoff"] = self.handoff.to_json()
        return answer
