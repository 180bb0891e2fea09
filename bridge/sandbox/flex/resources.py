"""JSON representations of Flex Interactions resources, shaped like Twilio's."""

from __future__ import annotations

from typing import Any

from bridge.sandbox.flex.state import Interaction, InteractionChannel, InteractionParticipant


def interaction(base: str, item: Interaction) -> dict[str, Any]:
    url = f"{base}/v1/Interactions/{item.sid}"
    return {
        "sid": item.sid,
        "channel": item.channel,
        "routing": item.routing,
        "url": url,
        "links": {"channels": f"{url}/Channels"},
        "interaction_context_sid": None,
        "webhook_ttid": None,
    }


def channel(base: str, item: InteractionChannel) -> dict[str, Any]:
    url = f"{base}/v1/Interactions/{item.interaction_sid}/Channels/{item.sid}"
    return {
        "sid": item.sid,
        "interaction_sid": item.interaction_sid,
        "type": item.type,
        "status": item.status,
        "error_code": None,
        "error_message": None,
        "url": url,
        "links": {
            "participants": f"{url}/Participants",
            "invites": f"{url}/Invites",
            "transfers": f"{url}/Transfers",
        },
    }


def participant(base: str, item: InteractionParticipant) -> dict[str, Any]:
    return {
        "sid": item.sid,
        "type": item.type,
        "interaction_sid": item.interaction_sid,
        "channel_sid": item.channel_sid,
        "url": f"{base}/v1/Interactions/{item.interaction_sid}/Channels/{item.channel_sid}"
        f"/Participants/{item.sid}",
        "routing_properties": item.routing_properties,
    }


def invite(base: str, room: InteractionChannel, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": item["sid"],
        "interaction_sid": room.interaction_sid,
        "channel_sid": room.sid,
        "routing": item["routing"],
        "url": f"{base}/v1/Interactions/{room.interaction_sid}/Channels/{room.sid}"
        f"/Invites/{item['sid']}",
    }
