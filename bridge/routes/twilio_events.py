"""Twilio's webhooks, signature-checked: ``POST /twilio/events`` (conversation webhooks)
and ``POST /twilio/taskrouter`` (the TaskRouter workspace's event callback)."""

from __future__ import annotations

import logging

from quart import Blueprint, Response, request
from twilio.request_validator import RequestValidator

from bridge import logs
from bridge.conversations import WEBHOOK_FILTERS
from bridge.core.inbox import TASK_EVENTS
from bridge.errors import ApiError
from bridge.routes import services

twilio_events = Blueprint("twilio_events", __name__)
log = logging.getLogger(__name__)


def signed_url() -> str:
    """The URL Twilio signed: PUBLIC_URL plus the path and query it was sent to.

    Built from PUBLIC_URL rather than the Host header, so it holds behind ngrok or a
    reverse proxy that rewrites the scheme, host or port.
    """
    query = request.query_string.decode("latin-1")
    return f"{services().settings.public_url}{request.path}{'?' + query if query else ''}"


async def _signed_form() -> dict[str, str]:
    """The form Twilio sent, once its X-Twilio-Signature checks out (403 otherwise)."""
    wired = services()
    signature = request.headers.get("X-Twilio-Signature", "")
    form = await request.form
    url = signed_url()
    if not signature or not RequestValidator(wired.settings.twilio_auth_token).validate(
        url, form, signature
    ):
        wired.metrics.webhook_signature_failures.inc()
        logs.event(
            log,
            "webhook.rejected",
            logging.WARNING,
            reason="missing signature" if not signature else "signature mismatch",
            signed_url=url,
        )
        raise ApiError(403, "invalid_signature", "The X-Twilio-Signature header does not match.")
    params: dict[str, str] = form.to_dict(flat=True)
    return params


@twilio_events.post("/twilio/taskrouter")
async def receive_taskrouter_event() -> Response:
    """A task's end (wrapped up, completed, canceled) makes the bridge read its
    conversation's state: Flex may close it with no conversation webhook at all."""
    wired = services()
    params = await _signed_form()
    event = params.get("EventType", "")
    ours = await wired.handoff.inbox.on_task_event(params)
    known = event if event in TASK_EVENTS else "other"
    wired.metrics.webhooks_received.labels(known if ours else "not_ours").inc()
    return Response("", status=204)


@twilio_events.post("/twilio/events")
async def receive_event() -> Response:
    wired = services()
    params = await _signed_form()
    event = params.get("EventType", "")
    if params.get("ConversationSid"):
        logs.conversation_sid.set(params["ConversationSid"][:64])
    ours = await wired.handoff.inbox.on_event(params)
    known = event if event in WEBHOOK_FILTERS else "other"
    wired.metrics.webhooks_received.labels(known if ours else "not_ours").inc()
    return Response("", status=204)
