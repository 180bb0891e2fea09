"""Every error is JSON with a code and a message that says what to fix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, ServerFactory, free_port, real_mode


def error_of(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", (400, "invalid_json")),
        (b"[]", (400, "invalid_json")),
        (b"", (400, "invalid_json")),
        (b'{"text": "hi"}', (400, "invalid_msg")),
        (b'{"msg": ""}', (400, "invalid_msg")),
        (b'{"msg": "   "}', (400, "invalid_msg")),
        (b'{"msg": 42}', (400, "invalid_msg")),
        (b'{"msg": null}', (400, "invalid_msg")),
        (b'{"msg": "hi", "context": 7}', (400, "invalid_context")),
        (b'{"msg": "\\ud800"}', (400, "invalid_json")),  # a lone surrogate
        (b'{"msg": "hi", "context": "\\udfff"}', (400, "invalid_json")),
        (b'{"msg": "\\u0000 \\u0000"}', (400, "invalid_msg")),  # only NUL and space
    ],
)
def test_bad_send_bodies(server: LiveServer, content: bytes, expected: tuple[int, str]) -> None:
    response = httpx.post(
        f"{server.url}/send/alice", content=content, headers={"Content-Type": "application/json"}
    )
    assert error_of(response) == expected


def test_bad_input_creates_nothing(server: LiveServer) -> None:
    httpx.post(f"{server.url}/send/alice", json={"msg": ""})
    httpx.post(f"{server.url}/send/alice", json={"msg": "x" * 8001})
    conversations = httpx.get(
        f"{server.url}/sandbox/twilio/v1/Conversations",
        auth=(server.settings.twilio_account_sid, server.settings.twilio_auth_token),
    ).json()
    assert conversations["conversations"] == []


def test_too_long_messages_are_413(server: LiveServer) -> None:
    response = httpx.post(f"{server.url}/send/alice", json={"msg": "x" * 8001})
    assert error_of(response) == (413, "message_too_long")
    response = httpx.post(f"{server.url}/send/alice", json={"msg": "hi", "context": "c" * 2001})
    assert error_of(response) == (413, "context_too_long")


def test_request_size_limit(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/send/alice",
        content=b"x" * (65 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert error_of(response) == (413, "too_large")


def test_oversized_headers_are_refused_and_the_server_goes_on(server: LiveServer) -> None:
    for path in ("/healthz", "/mcp", "/sandbox/"):
        response = httpx.get(f"{server.url}{path}", headers={"X-Filler": "y" * (20 * 1024)})
        assert error_of(response) == (431, "headers_too_large"), path
    assert httpx.get(f"{server.url}/healthz", headers={"X-Filler": "y" * 8000}).status_code == 200


@pytest.mark.parametrize("username", ["a b", "x" * 129, "semi;colon", "%00"])
def test_bad_usernames(server: LiveServer, username: str) -> None:
    response = httpx.post(f"{server.url}/send/{username}", json={"msg": "hi"})
    assert error_of(response) == (400, "invalid_username")


@pytest.mark.parametrize("wait", ["soon", "-1", "nan", "inf"])
def test_bad_wait(server: LiveServer, wait: str) -> None:
    response = httpx.get(f"{server.url}/replies/alice", params={"wait": wait})
    assert error_of(response) == (400, "invalid_wait")


def test_unknown_paths_and_methods(server: LiveServer) -> None:
    assert error_of(httpx.get(f"{server.url}/nothing/here")) == (404, "not_found")
    assert error_of(httpx.get(f"{server.url}/send/alice")) == (405, "method_not_allowed")
    assert error_of(httpx.delete(f"{server.url}/replies/alice")) == (405, "method_not_allowed")


def test_twilio_unreachable_queues_the_message(make_server: ServerFactory) -> None:
    server = make_server(
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}/nothing", TWILIO_TIMEOUT_SECONDS="2"
    )
    response = httpx.post(f"{server.url}/send/alice", json={"msg": "hi"}, timeout=30)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "waiting"
    assert "saved" in answer["note"] and "do not send it again" in answer["note"]


def test_twilio_refusing_credentials_is_502(make_server: ServerFactory, tmp_path: Path) -> None:
    """A bridge in real mode, pointed at another server's sandbox with the wrong token."""
    sandbox = make_server()
    bridge = make_server(
        **real_mode(f"{sandbox.url}/sandbox/twilio", tmp_path, TWILIO_AUTH_TOKEN="wrong-token")
    )
    response = httpx.post(f"{bridge.url}/send/alice", json={"msg": "hi"}, timeout=30)
    assert error_of(response) == (502, "twilio_error")
    # The real-mode bridge has no sandbox of its own.
    assert error_of(httpx.get(f"{bridge.url}/sandbox/twilio/v1/Conversations")) == (
        404,
        "not_found",
    )


@pytest.mark.parametrize("after", ["IM123", "bogus", "IM" + "g" * 32, "none "])
def test_a_malformed_after_is_refused(server: LiveServer, after: str) -> None:
    response = httpx.get(f"{server.url}/replies/alice", params={"after": after})
    assert error_of(response) == (400, "invalid_after")


async def test_too_many_waits_of_one_user_get_429(make_server: ServerFactory) -> None:
    server = make_server(REPLY_WAIT_SECONDS="3", MAX_WAITING_PER_USER="1")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await http.post("/send/wes", json={"msg": "hi"})
        first = asyncio.ensure_future(http.get("/replies/wes", params={"wait": "2"}))
        await asyncio.sleep(0.3)
        second = await http.get("/replies/wes", params={"wait": "2"})
        assert error_of(second) == (429, "too_many_waiting")
        assert int(second.headers["Retry-After"]) >= 1
        assert (await first).status_code == 200


def test_new_conversations_beyond_the_rate_get_429_busy(make_server: ServerFactory) -> None:
    server = make_server(NEW_CONVERSATIONS_PER_MINUTE="1")
    assert httpx.post(f"{server.url}/send/first", json={"msg": "hi"}, timeout=30).status_code == 200
    refused = httpx.post(f"{server.url}/send/second", json={"msg": "hi"}, timeout=30)
    assert error_of(refused) == (429, "busy")
    assert int(refused.headers["Retry-After"]) >= 1
    # The first user, whose conversation is open, is not held up.
    assert (
        httpx.post(f"{server.url}/send/first", json={"msg": "more"}, timeout=30).status_code == 200
    )


def test_nul_characters_are_dropped_from_messages(server: LiveServer) -> None:
    from tests.conftest import Agent, twilio_client

    httpx.post(
        f"{server.url}/send/nil", json={"msg": "a\u0000b", "context": "c\u0000d"}, timeout=30
    )
    agent = Agent(twilio_client(server))
    bodies = [body for _, body in agent.messages(agent.only_conversation())]
    assert bodies == ["Context from the assistant: cd", "ab"]
