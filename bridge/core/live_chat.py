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
from typing import Literal

from bridge.coordination import Wakeups
from bridge.core.checks import checked_wait
from bridge.core.errors import InvalidReplyId
from bridge.core.outcomes import HandoffStatus
from bridge.core.standing import Standing
from bridge.core.waiters import Waiters
from bridge.store import ConversationRow, OutboxRow, Store

#: A reply id as the pane got it: a Twilio message SID.
REPLY_ID = re.compile(r"IM[0-9a-fA-F]{32}")

LineState = Literal["sent", "sending", "not_delivered"]
#: The newest lines a view carries: a pane shows a chat, not an archive, and hosts cut
#: long tool results.
MAX_LINES = 100


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
        if shown_through is not None:
            if not REPLY_ID.fullmatch(shown_through):
                raise InvalidReplyId("shown_through must be the id of an agent reply")
            latest = await self._store.latest_conversation(identity)
            if latest is not None:
                # A reply of an earlier conversation: nothing to mark any more.
                await self._store.mark_shown(latest.id, shown_through)
        loop = asyncio.get_running_loop()
        async with self._waiters.admitted(identity, wait, refuse_busy=True) as wait:
            deadline = loop.time() + wait
            watched: ConversationRow | None = None
            try:
                while True:
                    woken = self._wakeups.event(identity)
                    latest, view = await self._look(identity)
                    remaining = deadline - loop.time()
                    if view.version != seen or remaining <= 0 or self._waiters.closing:
                        return view
                    if latest is not None and (watched is None or watched.id != latest.id):
                        if watched is not None:
                            self._waiters.unwatch(watched)
                        watched = latest
                        self._waiters.watch(watched)
                    nap = remaining
                    queue = self._standing.queue
                    if queue is not None and view.handoff.waiting_for_agent:
                        nap = min(nap, queue.refresh_seconds)  # a new place in line
                    await self._waiters.sleep(woken, nap)
            finally:
                if watched is not None:
                    self._waiters.unwatch(watched)

    async def _look(self, identity: str) -> tuple[ConversationRow | None, ChatView]:
        latest = await self._store.latest_conversation(identity)
        if latest is None:
            user = [_user_line(row) for row in await self._store.pending_messages(identity)]
            return None, _viewed(0, user, self._standing.of(None))
        # In the conversation's own order, Twilio's message index; the user's messages not
        # posted yet (or refused) after everything posted, in the order written.
        placed: list[tuple[float, int, ChatLine]] = [
            (math.inf if row.posted_index is None else row.posted_index, row.id, _user_line(row))
            for row in await self._store.conversation_messages(latest)
        ]
        placed += [
            (reply.idx, 0, ChatLine(reply.message_sid, "agent", reply.body, reply.sent_at))
            for reply in await self._store.conversation_replies(latest.id)
        ]
        lines = [line for _, _, line in sorted(placed, key=lambda item: item[:2])]
        return latest, _viewed(latest.generation, lines, self._standing.of(latest))


def _viewed(conversation: int, lines: list[ChatLine], status: HandoffStatus) -> ChatView:
    earlier = max(0, len(lines) - MAX_LINES)
    lines = lines[earlier:]
    content = {
        "conversation": conversation,
        "lines": [line.to_json() for line in lines],
        "earlier": earlier,
        "handoff": status.to_json(),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]
    return ChatView(conversation, lines, status, digest, earlier)
