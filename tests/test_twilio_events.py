"""POST /twilio/events: only correctly signed webhooks get in, and each reply counts once."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Agent, LiveServer, ServerFactory
from tests.signing import twilio_signature


async def open_conversation(client: httpx.AsyncClient, agent: Agent, user: str) -> str:
    response = await client.post(f"/send/{user}", json={"msg": "hello"})
    assert response.json()["status"] == "waiting"
    return agent.only_conversation()


def agent_message(sid: str, index: int, body: str, message_sid: str) -> dict[str, str]:
    return {
        "EventType": "onMessageAdded",
        "ConversationSid": sid,
        "MessageSid": message_sid,
        "Index": str(index),
        "Author": "agent.sam",
        "Body": body,
        "DateCreated": "2026-11-22T10:00:00Z",
        "Source": "SDK",
    }


def post_event(
    server: LiveServer, params: dict[str, str], signature: str | None, url_suffix: str = ""
) -> httpx.Response:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    return httpx.post(f"{server.url}/twilio/events{url_suffix}", data=params, headers=headers)


@pytest.fixture
def token(server: LiveServer) -> str:
    return server.settings.twilio_auth_token


async def test_correctly_signed_event_is_applied_once(
    server: LiveServer, client: httpx.AsyncClient, agent: Agent, token: str
) -> None:
    sid = await open_conversation(client, agent, "ann")
    params = agent_message(sid, 1, "signed reply", "IM" + "1" * 32)
    signature = twilio_signature(token, f"{server.url}/twilio/events", params)
    assert post_event(server, params, signature).status_code == 204
    assert post_event(server, params, signature).status_code == 204  # delivered twice
    got = (await client.get("/replies/ann")).json()
    assert [r["body"] for r in got["replies"]] == ["signed reply"]
    assert (await client.get("/replies/ann")).json()["replies"] == []


async def test_signed_for_the_query_string_too(
    server: LiveServer, client: httpx.AsyncClient, agent: Agent, token: str
) -> None:
    sid = await open_conversation(client, agent, "bea")
    params = agent_message(sid, 1, "via query", "IM" + "2" * 32)
    url = f"{server.url}/twilio/events?tenant=acme"
    response = post_event(server, params, twilio_signature(token, url, params), "?tenant=acme")
    assert response.status_code == 204


@pytest.mark.parametrize("case", ["missing", "wrong", "other_url", "changed_body", "other_token"])
async def test_rejections(
    server: LiveServer, client: httpx.AsyncClient, agent: Agent, token: str, case: str
) -> None:
    sid = await open_conversation(client, agent, "cal")
    params = agent_message(sid, 1, "forged reply", "IM" + "3" * 32)
    url = f"{server.url}/twilio/events"
    signature: str | None = {
        "missing": None,
        "wrong": "bm90IGEgc2lnbmF0dXJl",
        "other_url": twilio_signature(token, "https://elsewhere.example/twilio/events", params),
        "changed_body": twilio_signature(token, url, {**params, "Body": "the signed body"}),
        "other_token": twilio_signature("not-the-token", url, params),
    }[case]
    response = post_event(server, params, signature)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert (await client.get("/replies/cal")).json()["replies"] == []


async def test_unknown_conversation_is_ignored(server: LiveServer, token: str) -> None:
    params = agent_message("CH" + "9" * 32, 0, "stray", "IM" + "4" * 32)
    signature = twilio_signature(token, f"{server.url}/twilio/events", params)
    assert post_event(server, params, signature).status_code == 204


async def test_public_url_is_what_gets_checked(make_server: ServerFactory) -> None:
    """Behind a proxy Twilio signs the public address, not the one the bridge listens on."""
    server = make_server(PUBLIC_URL="https://bridge.example.com")
    token = server.settings.twilio_auth_token
    params = {"EventType": "onMessageAdded", "ConversationSid": "CH" + "8" * 32, "Index": "0"}
    public = twilio_signature(token, "https://bridge.example.com/twilio/events", params)
    local = twilio_signature(token, f"{server.url}/twilio/events", params)
    assert post_event(server, params, public).status_code == 204
    assert post_event(server, params, local).status_code == 403


async def test_a_close_by_twilio_s_timer_is_put_down_to_the_timeout(
    server: LiveServer, client: httpx.AsyncClient, agent: Agent, token: str
) -> None:
    """Twilio's closed timer announces its close with Reason=TIMER; the close is the
    timer's, as the user hears (here the event comes alone: the conversation is not
    really closed, so only the webhook can have said so)."""
    sid = await open_conversation(client, agent, "tim")
    params = {
        "EventType": "onConversationStateUpdated",
        "ConversationSid": sid,
        "StateFrom": "inactive",
        "StateTo": "closed",
        "StateUpdated": "2026-11-22T10:00:00Z",
        "Reason": "TIMER",
        "Source": "API",
    }
    signature = twilio_signature(token, f"{server.url}/twilio/events", params)
    assert post_event(server, params, signature).status_code == 204
    closed = (await client.get("/replies/tim")).json()
    assert closed["status"] == "closed" and closed["closed_by"] == "timeout"
