"""The Flex v1 Interactions API subset, at ``/sandbox/flex/v1``."""

from __future__ import annotations

from quart import Response, current_app, jsonify

from bridge.sandbox.flex import resources
from bridge.sandbox.flex.state import Flex, Interaction, InteractionChannel
from bridge.sandbox.shared.errors import not_found
from bridge.sandbox.shared.rest import base_url, created, listing, read_form, twilio_api

#: Where a client points ``client.flex_api.base_url``.
API_PREFIX = "/sandbox/flex"
api = twilio_api("flex_api", f"{API_PREFIX}/v1")
MAX_PAGE = 1000


def _flex() -> Flex:
    found: Flex = current_app.config["SANDBOX_FLEX"]
    return found


def _base() -> str:
    return base_url(API_PREFIX)


def _room(interaction_sid: str, sid: str) -> tuple[Interaction, InteractionChannel]:
    flex = _flex()
    interaction = flex.interaction(interaction_sid)
    return interaction, flex.channel(interaction, sid)


@api.post("/Interactions")
async def create_interaction() -> tuple[Response, int]:
    form = await read_form()
    made = _flex().create_interaction(form.get("Channel"), form.get("Routing"))
    return created(resources.interaction(_base(), made))


@api.get("/Interactions/<sid>")
async def fetch_interaction(sid: str) -> Response:
    return jsonify(resources.interaction(_base(), _flex().interaction(sid)))


@api.get("/Interactions/<interaction_sid>/Channels")
async def list_channels(interaction_sid: str) -> Response:
    interaction = _flex().interaction(interaction_sid)
    base = _base()
    return listing(
        "channels",
        list(interaction.channels.values()),
        lambda item: resources.channel(base, item),
        f"{base}/v1/Interactions/{interaction.sid}/Channels",
        maximum=MAX_PAGE,
    )


@api.get("/Interactions/<interaction_sid>/Channels/<sid>")
async def fetch_channel(interaction_sid: str, sid: str) -> Response:
    _, room = _room(interaction_sid, sid)
    return jsonify(resources.channel(_base(), room))


@api.post("/Interactions/<interaction_sid>/Channels/<sid>")
async def update_channel(interaction_sid: str, sid: str) -> Response:
    _, room = _room(interaction_sid, sid)
    form = await read_form()
    _flex().update_channel(room, form.get("Status"), form.get("Routing"))
    return jsonify(resources.channel(_base(), room))


@api.post("/Interactions/<interaction_sid>/Channels/<channel_sid>/Participants")
async def create_participant(interaction_sid: str, channel_sid: str) -> tuple[Response, int]:
    _, room = _room(interaction_sid, channel_sid)
    form = await read_form()
    made = _flex().add_participant(room, form.get("Type"))
    return created(resources.participant(_base(), made))


@api.get("/Interactions/<interaction_sid>/Channels/<channel_sid>/Participants")
async def list_participants(interaction_sid: str, channel_sid: str) -> Response:
    _, room = _room(interaction_sid, channel_sid)
    base = _base()
    return listing(
        "participants",
        list(room.participants.values()),
        lambda item: resources.participant(base, item),
        f"{base}/v1/Interactions/{room.interaction_sid}/Channels/{room.sid}/Participants",
        maximum=MAX_PAGE,
    )


@api.post("/Interactions/<interaction_sid>/Channels/<channel_sid>/Participants/<sid>")
async def update_participant(interaction_sid: str, channel_sid: str, sid: str) -> Response:
    _, room = _room(interaction_sid, channel_sid)
    participant = room.participants.get(sid)
    if participant is None:
        raise not_found(
            f"/Interactions/{interaction_sid}/Channels/{channel_sid}/Participants/{sid}"
        )
    form = await read_form()
    _flex().update_participant(room, participant, form.get("Status"))
    return jsonify(resources.participant(_base(), participant))


@api.post("/Interactions/<interaction_sid>/Channels/<channel_sid>/Invites")
async def create_invite(interaction_sid: str, channel_sid: str) -> tuple[Response, int]:
    _, room = _room(interaction_sid, channel_sid)
    form = await read_form()
    made = _flex().invite(room, form.get("Routing"))
    return created(resources.invite(_base(), room, made))


@api.get("/Interactions/<interaction_sid>/Channels/<channel_sid>/Invites")
async def list_invites(interaction_sid: str, channel_sid: str) -> Response:
    _, room = _room(interaction_sid, channel_sid)
    base = _base()
    return listing(
        "invites",
        list(room.invites.values()),
        lambda item: resources.invite(base, room, item),
        f"{base}/v1/Interactions/{room.interaction_sid}/Channels/{room.sid}/Invites",
        maximum=MAX_PAGE,
    )
