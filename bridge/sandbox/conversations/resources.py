"""JSON representations of emulator resources, shaped like Twilio's (see the spec file)."""

from __future__ import annotations

from typing import Any

from bridge.sandbox.conversations.state import Account, Conversation, Message, Participant, Webhook
from bridge.sandbox.shared.clock import iso


def conversation(account: Account, base: str, conv: Conversation) -> dict[str, Any]:
    url = f"{base}/v1/Conversations/{conv.sid}"
    return {
        "sid": conv.sid,
        "account_sid": account.account_sid,
        "chat_service_sid": account.chat_service_sid,
        "messaging_service_sid": None,
        "friendly_name": conv.friendly_name,
        "unique_name": conv.unique_name,
        "attributes": conv.attributes,
        "date_created": iso(conv.date_created),
        "date_updated": iso(conv.date_updated),
        "state": conv.state,
        "timers": conv.timers(),
        "bindings": {},
        "url": url,
        "links": {
            "participants": f"{url}/Participants",
            "messages": f"{url}/Messages",
            "webhooks": f"{url}/Webhooks",
            "export": f"{url}/Export",
        },
    }


def participant(account: Account, base: str, part: Participant) -> dict[str, Any]:
    return {
        "account_sid": account.account_sid,
        "conversation_sid": part.conversation_sid,
        "sid": part.sid,
        "identity": part.identity,
        "attributes": part.attributes,
        "messaging_binding": None,
        "role_sid": part.role_sid,
        "date_created": iso(part.date_created),
        "date_updated": iso(part.date_updated),
        "url": f"{base}/v1/Conversations/{part.conversation_sid}/Participants/{part.sid}",
        "last_read_message_index": part.last_read_message_index,
        "last_read_timestamp": None,
    }


def message(account: Account, base: str, msg: Message) -> dict[str, Any]:
    url = f"{base}/v1/Conversations/{msg.conversation_sid}/Messages/{msg.sid}"
    return {
        "sid": msg.sid,
        "account_sid": account.account_sid,
        "conversation_sid": msg.conversation_sid,
        "body": msg.body,
        "media": None,
        "author": msg.author,
        "participant_sid": msg.participant_sid,
        "attributes": msg.attributes,
        "date_created": iso(msg.date_created),
        "date_updated": iso(msg.date_updated),
        "index": msg.index,
        "delivery": None,
        "content_sid": None,
        "url": url,
        "links": {
            "delivery_receipts": f"{url}/Receipts",
            "channel_metadata": f"{url}/ChannelMetadata",
        },
    }


def webhook(account: Account, base: str, hook: Webhook) -> dict[str, Any]:
    return {
        "account_sid": account.account_sid,
        "conversation_sid": hook.conversation_sid,
        "sid": hook.sid,
        "target": hook.target,
        "configuration": hook.configuration(),
        "date_created": iso(hook.date_created),
        "date_updated": iso(hook.date_updated),
        "url": f"{base}/v1/Conversations/{hook.conversation_sid}/Webhooks/{hook.sid}",
    }
