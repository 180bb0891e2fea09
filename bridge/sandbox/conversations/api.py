"""The Twilio Conversations v1 REST API subset, at ``/sandbox/twilio/v1``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from quart import Response, current_app, jsonify, request
from werkzeug.datastructures import MultiDict

from bridge.sandbox.conversations import resources
from bridge.sandbox.conversations.state import Account, Conversation
from bridge.sandbox.outbound import WebhookTargets
from bridge.sandbox.shared.clock import parse_duration
from bridge.sandbox.shared.errors import EmulatorError, invalid
from bridge.sandbox.shared.rest import base_url, created, listing, no_content, read_form, twilio_api

T = TypeVar("T")

#: Where a client points ``client.conversations.base_url``.
API_PREFIX = "/sandbox/twilio"
api = twilio_api("twilio_api", f"{API_PREFIX}/v1")

#: The most each list answers at once (PageSize), per Twilio's API description.
MAX_PAGE = {"Conversations": 100, "Participants": 100, "Messages": 100, "Webhooks": 5}


def _account() -> Account:
    account: Account = current_app.config["SANDBOX_ACCOUNT"]
    return account


def _base() -> str:
    return base_url(API_PREFIX)


def _listing(
    key: str,
    items: Sequence[T],
    render: Callable[[Account, str, T], dict[str, Any]],
    path: str,
    filters: dict[str, str] | None = None,
) -> Response:
    account, base = _account(), _base()
    return listing(
        key,
        items,
        lambda item: render(account, base, item),
        f"{base}/v1/{path}",
        maximum=MAX_PAGE[path.rsplit("/", 1)[-1]],
        filters=filters,
    )


def _webhooks_enabled() -> bool:
    return request.headers.get("X-Twilio-Webhook-Enabled", "").lower() == "true"


def _duration(form: MultiDict[str, str], name: str, minimum: timedelta) -> timedelta | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return None
    value = parse_duration(raw)
    if value is None:
        raise invalid(f"Invalid {name}: {raw!r} is not an ISO 8601 duration")
    if value < minimum:
        raise invalid(
            f"Invalid {name}: the minimum is {int(minimum.total_seconds() // 60)} minutes"
        )
    return value


# --- Conversations --------------------------------------------------------------------------


def _new_conversation(account: Account, form: MultiDict[str, str]) -> Conversation:
    """A conversation from the create parameters both create endpoints share."""
    return account.create_conversation(
        friendly_name=form.get("FriendlyName"),
        unique_name=form.get("UniqueName"),
        attributes=form.get("Attributes"),
        state=form.get("State"),
        timer_inactive=_duration(form, "Timers.Inactive", timedelta(minutes=1)),
        timer_closed=_duration(form, "Timers.Closed", timedelta(minutes=10)),
    )


@api.post("/Conversations")
async def create_conversation() -> tuple[Response, int]:
    form = await read_form()
    conv = _new_conversation(_account(), form)
    return created(resources.conversation(_account(), _base(), conv))


@api.post("/ConversationWithParticipants")
async def create_conversation_with_participants() -> tuple[Response, int]:
    """A conversation and its participants in one call; all or nothing."""
    account = _account()
    form = await read_form()
    participants: list[dict[str, Any]] = []
    for raw in form.getlist("Participant"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise invalid("Invalid Participant: each must be a JSON object") from None
        if not isinstance(parsed, dict) or not parsed.get("identity"):
            raise invalid("Invalid Participant: this sandbox supports chat participants (identity)")
        participants.append(parsed)
    identities = [str(p["identity"]) for p in participants]
    if len(set(identities)) != len(identities):
        raise EmulatorError(409, 50433, "Participant already exists")
    conv = _new_conversation(account, form)
    for participant in participants:
        attributes = participant.get("attributes")
        account.add_participant(
            conv,
            identity=str(participant["identity"]),
            attributes=attributes if isinstance(attributes, str) else None,
            webhooks_enabled=_webhooks_enabled(),
        )
    return created(resources.conversation(account, _base(), conv))


@api.get("/Conversations")
async def list_conversations() -> Response:
    state = request.args.get("State")
    if state is not None and state not in ("initializing", "inactive", "active", "closed"):
        raise invalid(f"Invalid State: {state!r}")
    items = [c for c in _account().conversations.values() if state is None or c.state == state]
    items.sort(key=lambda c: c.date_created, reverse=True)
    return _listing(
        "conversations",
        items,
        resources.conversation,
        "Conversations",
        {"State": state} if state else None,
    )


@api.get("/Conversations/<sid>")
async def fetch_conversation(sid: str) -> Response:
    account = _account()
    return jsonify(resources.conversation(account, _base(), account.get(sid)))


@api.post("/Conversations/<sid>")
async def update_conversation(sid: str) -> Response:
    account = _account()
    conv = account.get(sid)
    form = await read_form()
    account.update_conversation(
        conv,
        friendly_name=form.get("FriendlyName"),
        unique_name=form.get("UniqueName"),
        attributes=form.get("Attributes"),
        state=form.get("State"),
        timer_inactive=_duration(form, "Timers.Inactive", timedelta(minutes=1)),
        timer_closed=_duration(form, "Timers.Closed", timedelta(minutes=10)),
        webhooks_enabled=_webhooks_enabled(),
    )
    return jsonify(resources.conversation(account, _base(), conv))


@api.delete("/Conversations/<sid>")
async def delete_conversation(sid: str) -> Response:
    account = _account()
    account.delete_conversation(account.get(sid))
    return no_content()


# --- Participants ---------------------------------------------------------------------------


@api.post("/Conversations/<sid>/Participants")
async def create_participant(sid: str) -> tuple[Response, int]:
    account = _account()
    conv = account.get(sid)
    form = await read_form()
    if form.get("MessagingBinding.Address"):
        raise invalid("This sandbox supports chat participants (Identity) only")
    part = account.add_participant(
        conv,
        identity=form.get("Identity"),
        attributes=form.get("Attributes"),
        webhooks_enabled=_webhooks_enabled(),
    )
    return created(resources.participant(account, _base(), part))


@api.get("/Conversations/<sid>/Participants")
async def list_participants(sid: str) -> Response:
    conv = _account().get(sid)
    return _listing(
        "participants",
        list(conv.participants.values()),
        resources.participant,
        f"Conversations/{conv.sid}/Participants",
    )


@api.get("/Conversations/<sid>/Participants/<psid>")
async def fetch_participant(sid: str, psid: str) -> Response:
    account = _account()
    conv = account.get(sid)
    return jsonify(resources.participant(account, _base(), account.participant(conv, psid)))


@api.delete("/Conversations/<sid>/Participants/<psid>")
async def delete_participant(sid: str, psid: str) -> Response:
    account = _account()
    conv = account.get(sid)
    account.remove_participant(
        conv, account.participant(conv, psid), webhooks_enabled=_webhooks_enabled()
    )
    return no_content()


# --- Messages -------------------------------------------------------------------------------


@api.post("/Conversations/<sid>/Messages")
async def create_message(sid: str) -> tuple[Response, int]:
    account = _account()
    conv = account.get(sid)
    form = await read_form()
    if form.get("MediaSid") or form.get("ContentSid"):
        raise invalid("This sandbox supports text messages (Body) only")
    msg = account.add_message(
        conv,
        author=form.get("Author"),
        body=form.get("Body"),
        attributes=form.get("Attributes"),
        webhooks_enabled=_webhooks_enabled(),
    )
    return created(resources.message(account, _base(), msg))


@api.get("/Conversations/<sid>/Messages")
async def list_messages(sid: str) -> Response:
    conv = _account().get(sid)
    order = request.args.get("Order", "asc")
    if order not in ("asc", "desc"):
        raise invalid(f"Invalid Order: {order!r}")
    items = list(conv.messages) if order == "asc" else list(reversed(conv.messages))
    return _listing(
        "messages",
        items,
        resources.message,
        f"Conversations/{conv.sid}/Messages",
        {"Order": order} if "Order" in request.args else None,
    )


@api.get("/Conversations/<sid>/Messages/<msid>")
async def fetch_message(sid: str, msid: str) -> Response:
    account = _account()
    conv = account.get(sid)
    return jsonify(resources.message(account, _base(), account.message(conv, msid)))


# --- Webhooks -------------------------------------------------------------------------------


@api.post("/Conversations/<sid>/Webhooks")
async def create_webhook(sid: str) -> tuple[Response, int]:
    account = _account()
    conv = account.get(sid)
    form = await read_form()
    replay = form.get("Configuration.ReplayAfter")
    if replay is not None and not replay.lstrip("-").isdigit():
        raise invalid("Configuration.ReplayAfter must be a whole number")
    url = form.get("Configuration.Url")
    if url and form.get("Target") == "webhook":
        targets: WebhookTargets = current_app.config["SANDBOX_WEBHOOK_TARGETS"]
        if not targets.allows(url):
            raise invalid(
                "Configuration.Url is not one this sandbox delivers to: only the bridge's "
                "own webhook URL (and loopback URLs for the stand-alone sandbox); add more "
                "with SANDBOX_WEBHOOK_URLS"
            )
    hook = account.add_webhook(
        conv,
        target=form.get("Target", ""),
        url=url,
        method=form.get("Configuration.Method"),
        filters=form.getlist("Configuration.Filters"),
        triggers=form.getlist("Configuration.Triggers"),
        flow_sid=form.get("Configuration.FlowSid"),
        replay_after=int(replay) if replay is not None else None,
    )
    return created(resources.webhook(account, _base(), hook))


@api.get("/Conversations/<sid>/Webhooks")
async def list_webhooks(sid: str) -> Response:
    conv = _account().get(sid)
    return _listing(
        "webhooks",
        list(conv.webhooks.values()),
        resources.webhook,
        f"Conversations/{conv.sid}/Webhooks",
    )


@api.get("/Conversations/<sid>/Webhooks/<wsid>")
async def fetch_webhook(sid: str, wsid: str) -> Response:
    account = _account()
    conv = account.get(sid)
    return jsonify(resources.webhook(account, _base(), account.webhook(conv, wsid)))


@api.delete("/Conversations/<sid>/Webhooks/<wsid>")
async def delete_webhook(sid: str, wsid: str) -> Response:
    account = _account()
    conv = account.get(sid)
    del conv.webhooks[account.webhook(conv, wsid).sid]
    return no_content()
