"""Replies going out: taken under a lease, cut to what an answer may carry, and delivered
only when the front door says the answer reached the caller.

A reply is lost if it is marked delivered and the answer carrying it never arrives (the
caller gave up, the connection broke, the process died). So a take leases the replies;
the front door confirms once the answer is written, or releases it; a lease neither
confirmed nor released runs out after :data:`LEASE_SECONDS`. Either way a reply not
known to be delivered is handed out again, with the same id. A caller that passes the id
of the last reply it saw (``after``) gets every reply after it, so it can tell repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time

from bridge.coordination import Wakeups
from bridge.core.outcomes import HandoffResult, Reply
from bridge.metrics import Metrics
from bridge.store import LeasedReply, Store

#: How long an answer has to reach its caller before its replies are handed out again (a
#: lease neither confirmed nor released: the process died, or the request was cut off
#: before its answer was made). Long enough to write a full answer to a slow reader.
LEASE_SECONDS = 15.0
#: What the replies of one answer may add up to, as JSON: GPT Actions refuse answers over
#: 100,000 characters, and MCP hosts cut long results.
MAX_ANSWER_CHARS = 90_000


def _size(reply: Reply) -> int:
    return len(json.dumps(reply.to_json())) + 2


class Handout:
    def __init__(self, store: Store, wakeups: Wakeups, metrics: Metrics) -> None:
        self._store = store
        self._wakeups = wakeups
        self._metrics = metrics

    async def take(self, identity: str, after: str | None = None) -> tuple[list[Reply], str, bool]:
        """The replies to hand out now, the lease they are taken under, and whether more
        are waiting (the answer was full)."""
        lease = secrets.token_hex(16)
        taking = asyncio.ensure_future(
            self._store.take_replies(identity, lease, time.time() + LEASE_SECONDS, after)
        )
        try:
            taken = await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The caller went away while the store was leasing: once it has, give back.
            with contextlib.suppress(Exception):
                await taking
                await self._store.release_replies(lease)
            raise
        fits, spare = _fit(taken)
        if spare:
            await self._store.release_replies(
                lease, [item.message.message_sid for item in spare if item.leased]
            )
        replies = [
            Reply(item.message.message_sid, item.message.body, item.message.sent_at, item.shown)
            for item in fits
        ]
        return replies, lease, bool(spare)

    async def confirm(self, result: HandoffResult) -> None:
        """The answer carrying ``result`` was written to the caller."""
        if result.lease is not None:
            delivered = await self._store.confirm_replies(result.lease)
            self._metrics.replies_delivered.inc(delivered)

    async def release(self, identity: str, result: HandoffResult) -> None:
        """The answer carrying ``result`` did not reach its caller: hand its replies out
        again (to a call waiting now, if any)."""
        if result.lease is not None and result.replies:
            await self._store.release_replies(result.lease)
            await self._wakeups.wake(identity)


def _fit(taken: list[LeasedReply]) -> tuple[list[LeasedReply], list[LeasedReply]]:
    """The longest run from the start that fits in one answer (at least one), and the rest."""
    used = 0
    for count, item in enumerate(taken):
        message = item.message
        used += _size(Reply(message.message_sid, message.body, message.sent_at, item.shown))
        if used > MAX_ANSWER_CHARS and count > 0:
            return taken[:count], taken[count:]
    return taken, []
