"""The hand-off over MCP: the SDK's own client against the live server's /mcp endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from bridge.handoff import NOTES
from bridge.mcp import tools
from bridge.mcp.tools import MAX_WAIT_SECONDS, mcp_note
from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client

API_KEY = "mcp-test-key-0123456789abcdef"


@asynccontextmanager
async def connect(
    server: LiveServer, headers: dict[str, str] | None = None, mode: str = "legacy"
) -> AsyncIterator[Client]:
    """An MCP session over Streamable HTTP, as an MCP client app opens one."""
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(60)) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode=mode) as mcp,
    ):
        yield mcp


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def wait_for_conversation(agent: Agent, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sids = await asyncio.to_thread(lambda: [c.sid for c in agent.conversations.list()])
        if sids:
            assert len(sids) == 1, sids
            return sids[0]
        await asyncio.sleep(0.05)
    raise TimeoutError("no conversation appeared")


async def test_tools_are_listed_with_schemas(server: LiveServer) -> None:
    async with connect(server) as mcp:
        listed = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert set(listed) == {"request_human_agent", "get_agent_replies", "end_human_conversation"}
    send = listed["request_human_agent"]
    assert send.input_schema["required"] == ["message"]
    assert set(send.input_schema["properties"]) == {"message", "context"}
    assert "human" in (send.description or "")
    replies = listed["get_agent_replies"]
    assert set(replies.input_schema["properties"]) == {"wait_seconds"}
    assert not replies.input_schema.get("required")
    assert listed["end_human_conversation"].input_schema.get("properties", {}) == {}
    for tool in listed.values():
        assert tool.output_schema is not None
        assert set(tool.output_schema["properties"]) == {"status", "replies", "note"}


async def test_whole_handoff_with_the_reply_in_the_tool_result(
    make_server: ServerFactory,
) -> None:
    server = make_server(REPLY_WAIT_SECONDS="15")
    agent = Agent(twilio_client(server))
    async with connect(server) as mcp:
        call = asyncio.ensure_future(
            mcp.call_tool(
                "request_human_agent",
                {"message": "I want a refund", "context": "Kettle leaks."},
            )
        )
        sid = await wait_for_conversation(agent)
        await asyncio.to_thread(agent.join, sid)
        reply_sid = await asyncio.to_thread(agent.reply, sid, "Hi, Alex here. Sorry!")
        result = await call
        data = structured(result)
        assert data == {
            "status": "answered",
            "replies": [
                {
                    "id": reply_sid,
                    "body": "Hi, Alex here. Sorry!",
                    "sent_at": data["replies"][0]["sent_at"],
                }
            ],
            "note": mcp_note(NOTES["answered"]),
        }
        assert "request_human_agent" in data["note"] and "sendMessage" not in data["note"]
        assert "Hi, Alex here. Sorry!" in text(result) and "answered" in text(result)
        bodies = [body for _, body in await asyncio.to_thread(agent.messages, sid)]
        assert bodies == [
            "Context from the assistant: Kettle leaks.",
            "I want a refund",
            "Hi, Alex here. Sorry!",
        ]

        ended = structured(await mcp.call_tool("end_human_conversation", {}))
        assert (ended["status"], ended["replies"]) == ("closed", [])
        state = await asyncio.to_thread(lambda: agent.conversations(sid).fetch().state)
        assert state == "closed"


async def test_late_reply_through_get_agent_replies(server: LiveServer) -> None:
    agent = Agent(twilio_client(server))
    async with connect(server) as mcp:
        first = structured(await mcp.call_tool("request_human_agent", {"message": "hello"}))
        assert (first["status"], first["replies"]) == ("waiting", [])
        assert "get_agent_replies" in first["note"]
        sid = await wait_for_conversation(agent)
        await asyncio.to_thread(agent.reply, sid, "late answer")
        got: list[str] = []
        for _ in range(20):
            answer = structured(await mcp.call_tool("get_agent_replies", {"wait_seconds": 1}))
            got += [reply["body"] for reply in answer["replies"]]
            if got:
                break
        assert got == ["late answer"]
        again = structured(await mcp.call_tool("get_agent_replies", {"wait_seconds": 0}))
        assert again["replies"] == []  # handed out once

        await asyncio.to_thread(agent.close, sid)
        for _ in range(20):
            answer = structured(await mcp.call_tool("get_agent_replies", {"wait_seconds": 0.5}))
            if answer["status"] == "closed":
                break
        assert answer["status"] == "closed"


async def test_end_without_a_conversation(server: LiveServer) -> None:
    async with connect(server) as mcp:
        ended = structured(await mcp.call_tool("end_human_conversation", {}))
    assert ended["status"] == "closed"
    assert ended["note"] == mcp_note(NOTES["none"])


async def test_progress_while_waiting(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "PROGRESS_INTERVAL_SECONDS", 0.3)
    server = make_server(REPLY_WAIT_SECONDS="2")
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(server) as mcp:
        await mcp.call_tool("request_human_agent", {"message": "anyone?"})
        seen.clear()
        answer = await mcp.call_tool(
            "get_agent_replies", {"wait_seconds": 2}, progress_callback=on_progress
        )
    assert structured(answer)["status"] == "waiting"
    assert len(seen) >= 3, seen
    progress = [p for p, _, _ in seen]
    assert progress == sorted(progress)
    assert all(total == 2 for _, total, _ in seen)
    assert "human agent" in str(seen[0][2])


async def test_wait_is_capped(make_server: ServerFactory) -> None:
    server = make_server(REPLY_WAIT_SECONDS="1")
    async with connect(server) as mcp:
        await mcp.call_tool("request_human_agent", {"message": "hi"})
        started = time.monotonic()
        answer = structured(await mcp.call_tool("get_agent_replies", {"wait_seconds": 600}))
    assert answer["status"] == "waiting"
    assert time.monotonic() - started < 5
    assert MAX_WAIT_SECONDS <= 30


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"message": "   "}, "must not be empty"),
        ({"message": "x" * 8001}, "the limit is 8000"),
        ({"message": "hi", "context": "c" * 2001}, "at most 2000"),
    ],
    ids=["empty", "too-long", "context-too-long"],
)
async def test_invalid_input_is_a_tool_error(
    server: LiveServer, arguments: dict[str, str], expected: str
) -> None:
    async with connect(server) as mcp:
        result = await mcp.call_tool("request_human_agent", arguments)
    assert result.is_error
    assert expected in text(result)
    assert twilio_client(server).conversations.v1.conversations.list() == []


async def test_negative_wait_is_refused(server: LiveServer) -> None:
    async with connect(server) as mcp:
        result = await mcp.call_tool("get_agent_replies", {"wait_seconds": -1})
    assert result.is_error


async def test_rate_limit_applies_per_identity(make_server: ServerFactory) -> None:
    server = make_server(RATE_LIMIT_PER_MINUTE="2")
    async with connect(server) as mcp:
        for _ in range(2):
            assert not (await mcp.call_tool("request_human_agent", {"message": "hi"})).is_error
        limited = await mcp.call_tool("request_human_agent", {"message": "hi"})
        assert limited.is_error and "Too many messages" in text(limited)
    async with connect(server) as other:  # another session is another user
        assert not (await other.call_tool("request_human_agent", {"message": "hi"})).is_error


async def test_two_sessions_are_two_users(server: LiveServer) -> None:
    agent = Agent(twilio_client(server))
    async with connect(server) as alice, connect(server) as bob:
        await alice.call_tool("request_human_agent", {"message": "alice here"})
        await bob.call_tool("request_human_agent", {"message": "bob here"})
        conversations = await asyncio.to_thread(agent.conversations.list)
        assert len(conversations) == 2
        by_body = {}
        for conversation in conversations:
            messages = await asyncio.to_thread(agent.messages, conversation.sid)
            by_body[messages[0][1]] = conversation.sid
        await asyncio.to_thread(agent.reply, by_body["alice here"], "for alice")
        alice_got: list[str] = []
        for _ in range(20):
            answer = structured(await alice.call_tool("get_agent_replies", {"wait_seconds": 1}))
            alice_got += [r["body"] for r in answer["replies"]]
            if alice_got:
                break
        bob_answer = structured(await bob.call_tool("get_agent_replies", {"wait_seconds": 0}))
    assert alice_got == ["for alice"]
    assert bob_answer["replies"] == []


async def test_without_a_session_none_mode_says_why(server: LiveServer) -> None:
    """The 2026-07-28 protocol has no sessions, so it cannot tell users apart here."""
    async with connect(server, mode="auto") as mcp:
        result = await mcp.call_tool("request_human_agent", {"message": "hi"})
    assert result.is_error
    assert "session" in text(result)


async def test_apikey_mode(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="apikey", API_KEYS=API_KEY)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.post("/mcp", json=listing, headers=accept)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        wrong_key = {**accept, "Authorization": "Bearer not-the-key-at-all"}
        wrong = await http.post("/mcp", json=listing, headers=wrong_key)
        assert wrong.status_code == 401
    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 its own way
        async with connect(server) as mcp:
            await mcp.list_tools()
    async with connect(server, headers={"Authorization": f"Bearer {API_KEY}"}) as mcp:
        answer = structured(await mcp.call_tool("request_human_agent", {"message": "hi"}))
    assert answer["status"] == "waiting"


@pytest.mark.parametrize(
    "headers",
    [{"Host": "evil.example"}, {"Host": "evil.example:5002"}, {"Origin": "https://evil.example"}],
    ids=["host", "host-with-port", "origin"],
)
def test_foreign_host_or_origin_is_rejected(server: LiveServer, headers: dict[str, str]) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    ok = httpx.post(f"{server.url}/mcp", json=initialize, headers=accept)
    assert ok.status_code == 200, ok.text
    refused = httpx.post(f"{server.url}/mcp", json=initialize, headers={**accept, **headers})
    assert refused.status_code in (400, 403, 421), refused.text
    assert "mcp-session-id" not in refused.headers


def test_public_url_host_is_accepted(make_server: ServerFactory) -> None:
    server = make_server(PUBLIC_URL="https://bridge.example.ngrok.app")
    response = httpx.post(
        f"{server.url}/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "probe", "version": "1"},
            },
        },
        headers={
            "Accept": "application/json, text/event-stream",
            "Host": "bridge.example.ngrok.app",
            "Origin": "https://bridge.example.ngrok.app",
        },
    )
    assert response.status_code == 200, response.text
