"""``POST /twilio/events``: Twilio's conversation webhooks, signature-checked."""

from __future__ import annotations

from quart import Blueprint, Response, request
from twilio.request_validator import RequestValidator

from bridge.errors import ApiError
from bridge.services import services

twilio_events = Blueprint("twilio_events", __name__)


def signed_url() -> str:
    """The URL Twilio signed: PUBLIC_URL plus the path and query it was sent to.

    Built from PUBLIC_URL rather than the Host header, so it holds behind ngrok or a
    reverse proxy that rewrites the scheme, host or port.
    """
    query = request.query_string.decode("latin-1")
    return f"{services().settings.public_url}{request.path}{'?' + query if query else ''}"


@twilio_events.post("/twilio/events")
async def receive_event() -> Response:
    signature = request.headers.get("X-Twilio-Signature", "")
    form = await request.form
    validator = RequestValidator(services().settings.twilio_auth_token)
    if not signature or not validator.validate(signed_url(), form, signature):
        services().metrics_signature_failures += 1
        raise ApiError(403, "invalid_signature", "The X-Twilio-Signature header does not match.")
    await services().handoff.inbox.on_event(form.to_dict(flat=True))
    return Response("", status=204)
