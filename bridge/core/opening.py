"""Opening a user's conversation: find the open one, or create it in Twilio, attach the
user, the bridge's webhook and the route to Flex.

Every step can be retried: the conversation's UniqueName is fixed per attempt
(``flexbridge-<identity>-<generation>``), so a create that reached Twilio before failing
is found, not made twice, and whatever it left unattached is attached.
"""

from __future__ import annotations

import contextlib
import json
import logging

from bridge import logs
from bridge.conversations import ParticipantExists, TwilioConversations, UniqueNameTaken
from bridge.metrics import Metrics
from bridge.routing import Router, TaskDetails
from bridge.store import ConversationRow, Store

log = logging.getLogger(__name__)


def unique_name(identity: str, generation: int) -> str:
    """Deterministic per attempt, so a retried create cannot make a second conversation."""
    return f"flexbridge-{identity}-{generation}"


def presentation(identity: str, profile: str | None) -> tuple[str, str]:
    """The conversation's friendly name and attributes, as the agent will see them.

    Without a ``profile`` (the verified name and email, JSON) Twilio sees only the hash.
    """
    attributes: dict[str, object] = {"source": "flex-bridge", "user": identity[:12]}
    name = f"Assistant user {identity[:8]}"
    if profile:
        shared = json.loads(profile)
        attributes.update({"name": shared.get("name"), "email": shared.get("email")})
        name = " ".join(p for p in (shared.get("name"), f"<{shared.get('email')}>") if p)
    return name[:256], json.dumps(attributes)


class ConversationOpener:
    def __init__(
        self,
        store: Store,
        twilio: TwilioConversations,
        router: Router,
        *,
        webhook_url: str | None,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._twilio = twilio
        self._router = router
        self._webhook_url = webhook_url
        self._metrics = metrics

    async def current(
        self, identity: str, profile: str | None = None, context: str | None = None
    ) -> tuple[ConversationRow, bool]:
        """The identity's open conversation; True if it was opened by this call.

        Call with the identity's lock held.
        """
        while True:
            row = await self._store.claim_conversation(identity)
            if row.state == "open":
                return row, False
            name = unique_name(identity, row.generation)
            try:
                friendly_name, attributes = presentation(identity, profile)
                info = await self._twilio.create_conversation_with_participant(
                    unique_name=name,
                    friendly_name=friendly_name,
                    attributes=attributes,
                    identity=identity,
                )
                fresh = True
            except UniqueNameTaken:
                # An earlier attempt created it and then failed: finish what it started.
                info = await self._twilio.fetch_conversation(name)
                fresh = False
            await self._store.set_sid(row.id, info.sid)
            if info.state == "closed":
                await self._store.mark_closed(row.id, "agent")
                continue
            await self._attach(info.sid, TaskDetails(identity, profile, context), fresh)
            await self._store.mark_open(row.id, info.sid)
            self._metrics.handoffs_started.inc()
            logs.event(log, "conversation.opened", sid=info.sid, generation=row.generation)
            return await self._store.conversation_by_id(row.id), True

    async def _attach(self, sid: str, details: TaskDetails, fresh: bool) -> None:
        """Participant, event webhook and route, skipping whatever exists."""
        identity = details.identity
        if not fresh and identity not in await self._twilio.participant_identities(sid):
            with contextlib.suppress(ParticipantExists):
                await self._twilio.add_participant(sid, identity)
        webhooks = None if fresh else await self._twilio.webhook_targets(sid)
        await self._router.route(sid, webhooks=webhooks, details=details)
        if self._webhook_url and (webhooks is None or "webhook" not in webhooks):
            await self._twilio.add_event_webhook(sid, self._webhook_url)
