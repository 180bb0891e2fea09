"""Where a user stands with the support team, as every answer tells it: the stored
progress, the queue's figures, the business hours and the assignment timeout together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bridge.core.outcomes import HandoffState, HandoffStatus
from bridge.core.queue_watch import QueueWatch
from bridge.hours import BusinessHours, iso
from bridge.store import WAITING_CHOICES, ConversationRow


@dataclass(frozen=True)
class WaitPolicy:
    """BUSINESS_HOURS (None: always open), ASSIGNMENT_TIMEOUT_SECONDS (None: never ask)
    and UNAVAILABLE_POLICY (what happens when closed or nobody is available)."""

    hours: BusinessHours | None = None
    assignment_timeout_seconds: float | None = None
    unavailable_policy: str = "take_message"


def _moment(stored: str) -> datetime:
    """A time the store wrote (ISO 8601, UTC)."""
    return datetime.fromisoformat(stored)


class Standing:
    def __init__(
        self,
        queue: QueueWatch | None,
        policy: WaitPolicy,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.queue = queue
        self.policy = policy
        self._clock = clock or (lambda: datetime.now(UTC))

    def of(self, row: ConversationRow | None) -> HandoffStatus:
        """The full status of the user's latest conversation."""
        base = HandoffStatus.of(row)
        if row is None or not base.waiting_for_agent:
            return base
        now = self._clock()
        standing = self.queue.standing(row.sid, row.task_sid) if self.queue is not None else None
        state: HandoffState = "queued"
        closed, opens_at = self._closed(now)
        if closed:
            state = "after_hours"
        elif standing is not None and standing.agents_available == 0:
            state = "no_agents"
        due = self.choices_due_at(row, now)
        # After hours the user was told when to expect an answer: nothing to choose.
        offered = due is not None and now >= due and state != "after_hours"
        return replace(
            base,
            state=state,
            queue=standing,
            opens_at=opens_at,
            choices=WAITING_CHOICES if offered else (),
            opens_local=self._local(opens_at),
            waited_seconds=max(0, int((now - _moment(row.created_at)).total_seconds())),
        )

    def choices_due_at(self, row: ConversationRow, now: datetime | None = None) -> datetime | None:
        """When a user still waiting for an agent is asked what they want (None: never):
        the assignment timeout after the conversation opened, after they chose to keep
        waiting, or after the team opened (time closed does not count); not once they
        left a message."""
        timeout = self.policy.assignment_timeout_seconds
        if timeout is None or row.choice in ("leave_message", "continue_with_assistant"):
            return None
        since = row.choice_at if row.choice == "keep_waiting" and row.choice_at else row.created_at
        start = _moment(since)
        hours = self.policy.hours
        opened = hours.open_since(now or self._clock()) if hours is not None else None
        if opened is not None and opened > start:
            start = opened
        return start + timedelta(seconds=timeout)

    async def before_opening(self) -> HandoffStatus | None:
        """Why a new conversation would find nobody (after hours, no agent available), or
        None: open, and someone available (or Twilio could not say)."""
        closed, opens_at = self._closed(self._clock())
        if closed:
            return HandoffStatus("after_hours", opens_at=opens_at)
        if self.queue is not None and await self.queue.any_agent_available() is False:
            return HandoffStatus("no_agents")
        return None

    @property
    def declines(self) -> bool:
        return self.policy.unavailable_policy == "decline"

    def _local(self, opens_at: str | None) -> str | None:
        hours = self.policy.hours
        if hours is None or opens_at is None:
            return None
        return hours.local_words(_moment(opens_at))

    def _closed(self, now: datetime) -> tuple[bool, str | None]:
        """Whether the team is closed at ``now``, and when it opens next (None when
        open, or when no opening falls within a year)."""
        hours = self.policy.hours
        if hours is None or hours.is_open(now):
            return False, None
        opening = hours.opens_at(now)
        return True, iso(opening) if opening is not None else None
