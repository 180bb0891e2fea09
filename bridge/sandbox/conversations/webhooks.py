"""Conversation events as Twilio delivers them: to each conversation's scoped webhooks
(signed, through :class:`~bridge.sandbox.shared.delivery.SignedDelivery`) and, for a Studio
webhook, to the flow that routes the conversation to Flex."""

from __future__ import annotations

from collections.abc import Callable

from bridge.sandbox.conversations.state import Account, Conversation, Event
from bridge.sandbox.shared.delivery import SignedDelivery

#: What a Studio flow's Send to Flex does with a conversation (the flow's SID given).
StudioFlow = Callable[[Conversation, str | None], None]


class WebhookDispatcher:
    """Turns account events into webhook requests and Studio routing.

    REST actions fire webhooks only when sent with ``X-Twilio-Webhook-Enabled: true``;
    SDK actions (the agent console, like the Flex UI) always do.
    """

    def __init__(self, account: Account, delivery: SignedDelivery, studio: StudioFlow) -> None:
        self._account = account
        self._delivery = delivery
        self._studio = studio
        account.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        if not (event.webhooks_enabled or event.source == "SDK"):
            return
        conv = self._account.conversations.get(event.conversation_sid)
        if conv is None:
            return
        for hook in list(conv.webhooks.values()):
            if hook.filters and event.event_type not in hook.filters:
                continue
            if hook.target == "studio":
                if event.event_type == "onMessageAdded":
                    self._studio(conv, hook.flow_sid)
            elif hook.target == "webhook" and hook.url:
                # Scoped webhooks name themselves in what they send.
                self._delivery.send(hook.url, hook.method, {**event.params, "WebhookSid": hook.sid})
