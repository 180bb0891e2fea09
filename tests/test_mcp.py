"""The hand-off over MCP: the SDK's own client against the live server's /mcp endpoint."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp_types import CallToolResult, TextContent
from pydantic import AnyUrl

from bridge.auth.oidc import s256
from bridge.mcp import tools
from bridge.mcp.tools import MAX_WAIT_SECONDS, WORDS
from bridge.notes import note
from tests import test_oauth
from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client, wait_for_conversation
from tests.test_oauth import browser_flow, location, query

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


async def test_tools_are_listed_with_schemas(server: LiveServer) -> None:
    async with connect(server) as mcp:
        every = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    # The live chat pane's own tools are for the pane (hosts keep them from the model).
    pane_only = {
        name
        for name, tool in every.items()
        if (tool.meta or {}).get("ui", {}).get("visibility") == ["app"]
    }
    assert pane_only == {"live_chat_view", "live_chat_send"}
    listed = {name: tool for name, tool in every.items() if name not in pane_only}
    assert set(listed) == {
        "request_human_agent",
        "get_agent_replies",
        "end_human_conversation",
        "choose_next_step",
    }
    send = listed["request_human_agent"]
    assert send.input_schema["required"] == ["message"]
    assert set(send.input_schema["properties"]) == {"message", "context"}
    assert "human" in (send.description or "")
    replies = listed["get_agent_replies"]
    assert set(replies.input_schema["properties"]) == {"wait_seconds", "after_id"}
    assert not replies.input_schema.get("required")
    assert listed["end_human_conversation"].input_schema.get("properties", {}) == {}
    choose = listed["choose_next_step"]
    assert choose.input_schema["required"] == ["choice"]
    assert choose.input_schema["properties"]["choice"]["enum"] == [
        "keep_waiting",
        "leave_message",
        "continue_with_assistant",
    ]
    for tool in listed.values():
        assert tool.output_schema is not None
        assert set(tool.output_schema["properties"]) == {
            "status",
            "replies",
            "note",
            "closed_by",
            "handoff",
        }
        assert set(tool.output_schema["required"]) == {"status", "replies", "note", "handoff"}


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
        for _ in range(100):  # the agent answers once the user's message is there
            if len(await asyncio.to_thread(agent.messages, sid)) == 2:
                break
            await asyncio.sleep(0.05)
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
            "note": note("answered", WORDS),
            # The agent joined through the REST API without webhooks, as no Flex agent
            # does: the bridge heard nothing of it, so the user is still in line for it,
            # with no TaskRouter worker signed in.
            "handoff": {
                "state": "no_agents",
                "agent": None,
                "queue": {"position": 1, "agents_available": 0, "expected_wait_seconds": None},
                "closed_by": None,
                "opens_at": None,
                "choices": None,
                "choice": None,
            },
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
        assert (ended["status"], ended["replies"], ended["closed_by"]) == ("closed", [], "user")
        # The user ended it: the model must not tell the user the agent hung up.
        assert ended["note"] == note("closed_by_user", WORDS)
        assert "agent ended" not in ended["note"]
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
        assert answer["status"] == "closed" and answer["closed_by"] == "agent"


async def test_end_without_a_conversation(server: LiveServer) -> None:
    async with connect(server) as mcp:
        ended = structured(await mcp.call_tool("end_human_conversation", {}))
    assert ended["status"] == "closed" and ended["closed_by"] is None
    assert ended["note"] == note("none_yet", WORDS)


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
    assert all(a < b for a, b in itertools.pairwise(progress)), progress
    assert all(total == 2 for _, total, _ in seen)
    # Where the user stands, from TaskRouter: first in line, nobody signed in.
    assert str(seen[-1][2]) == "Number 1 in line; no agent is available right now…"


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


async def test_sessionless_clients_share_one_sandbox_user(server: LiveServer) -> None:
    """The newest protocol has no sessions: in the sandbox such clients share one user."""
    async with connect(server, mode="auto") as first:
        sent = structured(await first.call_tool("request_human_agent", {"message": "hi"}))
    assert sent["status"] == "waiting"
    async with connect(server, mode="auto") as second:
        again = structured(await second.call_tool("get_agent_replies", {"wait_seconds": 0}))
    assert again["status"] == "waiting"  # the same user's open conversation


async def test_without_a_session_outside_the_sandbox_says_why(make_server: ServerFactory) -> None:
    """With API keys the user is the MCP session; a sessionless request cannot be told apart."""
    server = make_server(AUTH_MODE="apikey", API_KEYS=API_KEY)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with connect(server, mode="auto", headers=headers) as mcp:
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


# --- AUTH_MODE=oauth: the MCP authorization profile -------------------------------------

CLAUDE_CALLBACK = "https://claude.ai/api/mcp/auth_callback"
CHATGPT_CALLBACK = "https://chatgpt.com/connector_platform_oauth_redirect"


class MemoryTokens:
    """The SDK's TokenStorage, in memory; remembers every token set it was given."""

    def __init__(self) -> None:
        self.tokens: list[OAuthToken] = []
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def browser_sign_in(authorization_url: str, name: str, email: str) -> str:
    """The person's trip, allowing the client on the bridge's consent page."""
    return browser_flow(authorization_url, name, email, "allow")


def sdk_oauth(
    server: LiveServer, storage: MemoryTokens, name: str = "Alice", email: str = "a@example.com"
) -> tuple[OAuthClientProvider, list[str]]:
    """The SDK's OAuth client provider, signing in through the sandbox provider."""
    finals: list[str] = []

    async def redirect(url: str) -> None:
        finals.append(await asyncio.to_thread(browser_sign_in, url, name, email))

    async def callback() -> AuthorizationCodeResult:
        params = query(finals[-1])
        assert finals[-1].startswith(CLAUDE_CALLBACK + "?"), finals[-1]
        return AuthorizationCodeResult(
            code=params["code"], state=params["state"], iss=params["iss"]
        )

    provider = OAuthClientProvider(
        server_url=f"{server.url}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="MCP test client",
            redirect_uris=[AnyUrl(CLAUDE_CALLBACK)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect,
        callback_handler=callback,
    )
    return provider, finals


def gpt_sign_in(server: LiveServer) -> dict[str, Any]:
    """A GPT Action's sign-in (no resource named), its OAuth client closed afterwards."""
    try:
        return test_oauth.sign_in(server)
    finally:
        while test_oauth._clients:
            test_oauth._clients.pop().close()


async def test_oauth_with_the_sdk_client(make_server: ServerFactory) -> None:
    """Registration → PKCE → token (for /mcp) → tools → refresh, as MCP clients do it."""
    server = make_server(AUTH_MODE="oauth", ACCESS_TOKEN_SECONDS="3")
    storage = MemoryTokens()
    provider, finals = sdk_oauth(server, storage)
    async with (
        httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(60)) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as mcp,
    ):
        answer = structured(await mcp.call_tool("request_human_agent", {"message": "via mcp"}))
        assert answer["status"] == "waiting"
        assert storage.client is not None
        assert storage.client.token_endpoint_auth_method == "none"
        assert storage.client.client_secret is None
        assert len(finals) == 1
        await asyncio.sleep(3.5)  # the access token expires; the SDK refreshes it
        again = structured(await mcp.call_tool("get_agent_replies", {"wait_seconds": 0}))
        assert again["status"] == "waiting"
    assert len(finals) == 1  # signed in once
    assert len(storage.tokens) == 2
    first, refreshed = storage.tokens
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token != first.refresh_token
    # The same person over the HTTP API: the same conversation (one in Twilio).
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        sent = await api.post(
            "/send/anyone",
            json={"msg": "via the api"},
            headers={"Authorization": f"Bearer {refreshed.access_token}"},
        )
    assert sent.status_code == 200, sent.text
    agent = Agent(twilio_client(server))
    sid = await wait_for_conversation(agent)
    bodies = [body for _, body in await asyncio.to_thread(agent.messages, sid)]
    assert bodies == ["via mcp", "via the api"]


async def test_oauth_challenge_and_audience(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth")
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        missing = await http.post("/mcp", json=listing, headers=accept)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == (
            f'Bearer resource_metadata="{server.url}/.well-known/oauth-protected-resource"'
        )
        # A GPT Action's token names no resource: good at the HTTP API, not at /mcp.
        gpt_token = await asyncio.to_thread(gpt_sign_in, server)
        bearer = {"Authorization": f"Bearer {gpt_token['access_token']}"}
        assert (await http.get("/replies/me", headers=bearer)).status_code == 200
        refused = await http.post("/mcp", json=listing, headers={**accept, **bearer})
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]

        for path in (
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ):
            resource = (await http.get(path)).json()
            assert resource["resource"] == f"{server.url}/mcp"
            assert resource["authorization_servers"] == [server.url]
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert metadata["registration_endpoint"] == f"{server.url}/oauth/register"
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert "none" in metadata["token_endpoint_auth_methods_supported"]


async def test_registration(make_server: ServerFactory) -> None:
    # ChatGPT's and Claude's documented callbacks trusted: errors go back to them.
    server = make_server(AUTH_MODE="oauth", OAUTH_TRUSTED_CLIENTS="gpt,chatgpt,claude")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        confidential = await http.post(
            "/oauth/register",
            json={
                "client_name": "ChatGPT",
                "redirect_uris": [CHATGPT_CALLBACK, CLAUDE_CALLBACK],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_post",
            },
        )
        assert confidential.status_code == 201, confidential.text
        registered = confidential.json()
        assert registered["client_id"] and registered["client_secret"]
        assert registered["redirect_uris"] == [CHATGPT_CALLBACK, CLAUDE_CALLBACK]
        assert registered["token_endpoint_auth_method"] == "client_secret_post"

        public = (
            await http.post(
                "/oauth/register",
                json={"redirect_uris": [CLAUDE_CALLBACK], "token_endpoint_auth_method": "none"},
            )
        ).json()
        assert "client_secret" not in public

        bad: dict[str, Any]
        for bad in (
            {"redirect_uris": []},
            {"redirect_uris": ["http://evil.example/cb"]},
            {"redirect_uris": ["https://ok.example/cb#frag"]},
            {"redirect_uris": [CLAUDE_CALLBACK], "token_endpoint_auth_method": "private_key_jwt"},
            {"redirect_uris": [CLAUDE_CALLBACK], "grant_types": ["client_credentials"]},
        ):
            refused = await http.post("/oauth/register", json=bad)
            assert refused.status_code == 400, bad
            assert refused.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")

        base = {"response_type": "code", "state": "s1", "scope": "handoff"}
        # Registered clients' redirect URIs are matched exactly.
        near_miss = await http.get(
            "/oauth/authorize",
            params={
                **base,
                "client_id": public["client_id"],
                "redirect_uri": CLAUDE_CALLBACK + "/x",
            },
        )
        assert near_miss.status_code == 400 and "Location" not in near_miss.headers
        # Public clients must use PKCE.
        no_pkce = await http.get(
            "/oauth/authorize",
            params={**base, "client_id": public["client_id"], "redirect_uri": CLAUDE_CALLBACK},
        )
        assert query(location(no_pkce))["error"] == "invalid_request"
        # Only this server's resources.
        elsewhere = await http.get(
            "/oauth/authorize",
            params={
                **base,
                "client_id": registered["client_id"],
                "redirect_uri": CHATGPT_CALLBACK,
                "resource": "https://other.example/mcp",
            },
        )
        assert query(location(elsewhere))["error"] == "invalid_target"

    # The confidential registered client signs a user in with its secret (authlib), for /mcp.
    client = OAuth2Client(
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        token_endpoint_auth_method="client_secret_post",
        redirect_uri=CHATGPT_CALLBACK,
        scope="handoff",
        code_challenge_method="S256",
    )
    try:
        verifier = secrets.token_urlsafe(48)
        url, _state = client.create_authorization_url(
            f"{server.url}/oauth/authorize", code_verifier=verifier, resource=f"{server.url}/mcp"
        )
        final = await asyncio.to_thread(browser_sign_in, url, "Bob", "bob@example.com")
        assert final.startswith(CHATGPT_CALLBACK + "?")
        token = await asyncio.to_thread(
            client.fetch_token,
            f"{server.url}/oauth/token",
            authorization_response=final,
            code_verifier=verifier,
            resource=f"{server.url}/mcp",
        )
    finally:
        client.close()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    async with connect(server, headers=headers, mode="auto") as mcp:  # no session needed
        answer = structured(await mcp.call_tool("request_human_agent", {"message": "hi"}))
    assert answer["status"] == "waiting"


async def test_token_endpoint_checks_registered_clients(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        registered = (
            await http.post(
                "/oauth/register",
                json={"redirect_uris": [CHATGPT_CALLBACK], "client_name": "ChatGPT"},
            )
        ).json()
        assert registered["token_endpoint_auth_method"] == "client_secret_basic"  # the default
        verifier = secrets.token_urlsafe(48)
        authorize = httpx.URL(
            f"{server.url}/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": registered["client_id"],
                "redirect_uri": CHATGPT_CALLBACK,
                "state": "s1",
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
                "resource": f"{server.url}/mcp",
            },
        )
        final = await asyncio.to_thread(browser_sign_in, str(authorize), "Cy", "cy@example.com")
        exchange = {
            "grant_type": "authorization_code",
            "code": query(final)["code"],
            "redirect_uri": CHATGPT_CALLBACK,
            "code_verifier": verifier,
        }
        credentials = (registered["client_id"], registered["client_secret"])
        wrong_secret = await http.post(
            "/oauth/token", data=exchange, auth=(registered["client_id"], "nope")
        )
        assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
        as_public = await http.post(
            "/oauth/token", data={**exchange, "client_id": registered["client_id"]}
        )
        assert as_public.status_code == 401  # a confidential client must authenticate
        wider = await http.post(
            "/oauth/token", data={**exchange, "resource": server.url}, auth=credentials
        )
        assert wider.json()["error"] in ("invalid_target", "invalid_grant")

    # The code was spent by the refused attempts above (codes are single-use): sign in again.
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        final = await asyncio.to_thread(browser_sign_in, str(authorize), "Cy", "cy@example.com")
        token = await http.post(
            "/oauth/token",
            data={**exchange, "code": query(final)["code"], "resource": f"{server.url}/mcp"},
            auth=credentials,
        )
        assert token.status_code == 200, token.text
        refresh = await http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token.json()["refresh_token"]},
            auth=credentials,
        )
        assert refresh.status_code == 200, refresh.text
    headers = {"Authorization": f"Bearer {refresh.json()['access_token']}"}
    async with connect(server, headers=headers) as mcp:
        assert not (await mcp.call_tool("get_agent_replies", {"wait_seconds": 0})).is_error
