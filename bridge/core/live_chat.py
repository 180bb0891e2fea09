"""The live chat pane's view of a user's conversation with the support team.

Where the tools hand each agent reply out once, the pane shows the whole conversation:
the user's messages (whoever sent them: the model or the user in the pane), the agent's
replies up to the sync mark, and where the user stands. A view has a version; a pane
that comes back with the version it shows waits until something changes (a reply, a
message of the user's, a new place in the queue, a close), so one call at a time keeps
it live. The replies a pane has shown are marked, so the model is told the user saw
them instead of being handed them as news.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from bridge.coordination import Wakeups
from bridge.core.checks import checked_wait
from bridge.core.errors import InvalidReplyId
from bridge.core.outcomes import HandoffStatus
from bridge.core.standing import Standing
from bridge.core.waiters import Waiters
from bridge.store import AgentMessage, ConversationRow, OutboxRow, Store

#: A reply id as the pane got it: a Twilio message SID.
REPLY_ID = re.compile(r"IM[0-9a-fA-F]{32}")

LineState = Literal["sent", "sending", "not_delivered"]
#: The newest lines a view carries, and the most text: a pane shows a chat, not an
#: archive, and hosts cut long tool results.
MAX_LINES = 100
MAX_VIEW_CHARS = 60_000
#: Panes of one user waiting at once (hosts may keep several on screen), apart from the
#: model's own calls.
MAX_PANES_WAITING = 3


@dataclass(frozen=True)
class ChatLine:
    id: str
    author: Literal["user", "agent"]
    body: str
    at: str  # ISO 8601, UTC
    #: The user's messages: sent to the agent, still on the way, or refused by Twilio.
    state: LineState = "sent"

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "author": self.author,
            "body": self.body,
            "at": self.at,
            "state": self.state,
        }


@dataclass(frozen=True)
class ChatView:
    #: The conversation's number for this user (a new one starts after a close); 0: none.
    conversation: int
    lines: list[ChatLine]
    handoff: HandoffStatus
    version: str
    #: Older lines left out (the view carries the newest MAX_LINES).
    earlier: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "conversation": self.conversation,
            "lines": [line.to_json() for line in self.lines],
            "earlier": self.earlier,
            "handoff": self.handoff.to_json(),
            "version": self.version,
        }


def _user_line(row: OutboxRow) -> ChatLine:
    state: LineState = (
        "sent" if row.state == "sent" else "sending" if row.state == "pending" else "not_delivered"
    )
    return ChatLine(f"user-{row.id}", "user", row.body, row.sent_at or row.created_at, state)


class LiveChat:
    def __init__(
        self, store: Store, wakeups: Wakeups, waiters: Waiters, standing: Standing
    ) -> None:
        self._store = store
        self._wakeups = wakeups
        self._waiters = waiters
        self._standing = standing

    async def view(
        self,
        identity: str,
        *,
        seen: str | None = None,
        shown_through: str | None = None,
        wait: float = 0.0,
    ) -> ChatView:
        """The conversation as it stands; when ``seen`` is its version, waiting up to
        ``wait`` seconds for it to change. ``shown_through``: the last agent reply the pane
        showed (it and every one before it count as seen by the user).

        Raises InvalidWait, InvalidReplyId, or TooManyWaiting when the user already has
        the most calls waiting (old panes a host kept open count too)."""
        wait = checked_wait(wait)
        if seen is None:
            wait = 0.0  # a pane's first look: nothing to wait for yet
        if shown_through is not None:
            if not REPLY_ID.fullmatch(shown_through):
                raise InvalidReplyId("shown_through must be the id of an agent reply")
            latest = await self._store.latest_conversation(identity)
            if latest is not None:
                # A reply of an earlier conversation: nothing to mark any more.
                await self._store.mark_shown(latest.id, shown_through)
        loop = asyncio.get_running_loop()
        async with self._waiters.admitted(
            identity, wait, refuse_busy=True, kind="live_chat", per_user=MAX_PANES_WAITING
        ) as wait:
            deadline = loop.time() + wait
            watched: ConversationRow | None = None
            try:
                while True:
                    woken = self._wakeups.event(identity)
                    latest, view = await self._look(identity)
                    remaining = deadline - loop.time()
                    if view.version != seen or remaining <= 0 or self._waiters.closing:
                        return view
                    assert latest is not None  # a view with a version seen has a conversation
                    if watched is None or (watched.id, watched.sid) != (latest.id, latest.sid):
                        if watched is not None:
                            self._waiters.unwatch(watched)
                        watched = latest
                        self._waiters.watch(watched)
                    nap = self._waiters.nap(latest, view.handoff, remaining, queue=True)
                    await self._waiters.sleep(woken, nap)
            finally:
                if watched is not None:
                    self._waiters.unwatch(watched)

    async def _look(self, identity: str) -> tuple[ConversationRow | None, ChatView]:
        latest = await self._store.latest_conversation(identity)
        if latest is None:
            pending = await self._store.pending_messages(identity)
            waiting = [_user_line(row) for row in pending[-MAX_LINES:]]
            return None, _viewed(0, waiting, len(pending) - len(waiting), self._standing.of(None))
        agent = await self._store.conversation_replies(latest.id, MAX_LINES)
        mine = await self._store.conversation_messages(latest, MAX_LINES)
        lines = _in_order(mine, agent)[-MAX_LINES:]
        earlier = await self._store.conversation_size(latest) - len(lines)
        return latest, _viewed(latest.generation, lines, earlier, self._standing.of(latest))


def _in_order(user: list[OutboxRow], agent: list[AgentMessage]) -> list[ChatLine]:
    """Both sides in the conversation's own order, Twilio's message index. A user message
    without one (refused, or posted before indexes were kept) goes after the last reply
    sent before it was written; one still on its way, after everything."""
    placed: list[tuple[float, int, ChatLine]] = [
        (reply.idx, 0, ChatLine(reply.message_sid, "agent", reply.body, reply.sent_at))
        for reply in agent
    ]
    for row in user:
        if row.posted_index is not None:
            place = float(row.posted_index)
        elif row.state == "pending":
            place = math.inf
        else:
            written = _instant(row.created_at)
            before = [reply.idx for reply in agent if _instant(reply.sent_at) <= written]
            place = max(before, default=-1) + 0.5
        placed.append((place, row.id, _user_line(row)))
    return [line for _, _, line in sorted(placed, key=lambda item: item[:2])]


def _instant(text: str) -> datetime:
    """A time from the store or from Twilio (ISO 8601, UTC), comparable with the other."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def _viewed(
    conversation: int, lines: list[ChatLine], earlier: int, status: HandoffStatus
) -> ChatView:
    # The newest lines that fit the budget: hosts cut long tool results.
    used = 0
    for start in range(len(lines) - 1, -1, -1):
        used += len(lines[start].body)
        if used > MAX_VIEW_CHARS and start < len(lines) - 1:
            earlier += start + 1
            lines = lines[start + 1 :]
            break
    content = {
        "conversation": conversation,
        "lines": [line.to_json() for line in lines],
        "earlier": earlier,
        "handoff": status.to_json(),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]
    return ChatView(conversation, lines, status, digest, earlier)
