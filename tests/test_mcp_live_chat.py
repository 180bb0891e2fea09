"""The live chat pane (an MCP App) over MCP, with the SDK's own client against the live
server: the ``ui://`` resource as hosts read it, the tools that link to it, the pane's two
tools acting as the session's user, and every refusal."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time

import pytest
from mcp_types import TextResourceContents

from bridge.core.live_chat import MAX_PANES_WAITING
from bridge.mcp.live_chat import RESOURCE_URI
from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client, wait_for_conversation
from tests.test_mcp import connect, structured, text

MIME = "text/html;profile=mcp-app"


async def test_the_pane_is_a_ui_resource_with_its_csp(server: LiveServer) -> None:
    async with connect(server) as mcp:
        listed = (await mcp.list_resources()).resources
        read = await mcp.read_resource(RESOURCE_URI)
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert [(r.uri, r.mime_type) for r in listed] == [(RESOURCE_URI, MIME)]
    (page,) = read.contents
    assert isinstance(page, TextResourceContents)
    assert page.mime_type == MIME
    assert page.meta is not None
    ui = page.meta["ui"]
    # Nothing outside the host: no network, no other origin's scripts or styles.
    assert ui["csp"] == {"connectDomains": [], "resourceDomains": []}
    assert ui["prefersBorder"] is True
    html = page.text
    assert html.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no CDN
    # Its own policy lets exactly its own inline script and style run.
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy is not None
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy.group(1)
    assert "connect-src 'none'" in policy.group(1) and "unsafe" not in policy.group(1)
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html
    # Whether the browser agrees with this hash is what the browser tests check (they fail
    # on any console error, a refused script included); this checks the policy's shape.
    # The exchange the model starts shows the pane, under each name hosts look for; the
    # other tools do not add panes (hosts keep every pane on screen).
    meta = tools["request_human_agent"].meta
    assert meta is not None
    assert meta["ui"] == {"resourceUri": RESOURCE_URI}
    assert meta["ui/resourceUri"] == meta["openai/outputTemplate"] == RESOURCE_URI
    for name in ("get_agent_replies", "end_human_conversation", "choose_next_step"):
        assert not (tools[name].meta or {}).get("ui")
    for name in ("live_chat_view", "live_chat_send"):
        assert tools[name].meta == {"ui": {"resourceUri": RESOURCE_URI, "visibility": ["app"]}}


async def test_the_pane_follows_the_conversation_and_writes_to_the_agent(
    make_server: ServerFactory,
) -> None:
    server = make_server(REPLY_WAIT_SECONDS="20")
    agent = Agent(twilio_client(server))
    async with connect(server) as mcp:
        empty = structured(await mcp.call_tool("live_chat_view", {}))
        assert (empty["conversation"], empty["lines"]) == (0, [])
        sent = structured(await mcp.call_tool("live_chat_send", {"message": "Hello from the pane"}))
        assert [(line["author"], line["body"]) for line in sent["lines"]] == [
            ("user", "Hello from the pane")
        ]
        sid = await wait_for_conversation(agent)
        assert [b for _, b in await asyncio.to_thread(agent.messages, sid)] == [
            "Hello from the pane"
        ]
        now = structured(await mcp.call_tool("live_chat_view", {}))
        waiting = asyncio.ensure_future(
            mcp.call_tool("live_chat_view", {"seen_version": now["version"], "wait_seconds": 20})
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()
        replied = time.monotonic()
        reply_sid = await asyncio.to_thread(agent.reply, sid, "<img src=x onerror=alert(1)>Hi")
        changed = structured(await waiting)
        assert time.monotonic() - replied < 1.0
        assert changed["lines"][-1] == {
            "id": reply_sid,
            "author": "agent",
            "body": "<img src=x onerror=alert(1)>Hi",
            "at": changed["lines"][-1]["at"],
            "state": "sent",
        }
        # The pane showed it: the model is handed it once, marked as already read.
        await mcp.call_tool("live_chat_view", {"shown_through": reply_sid})
        handed = structured(await mcp.call_tool("get_agent_replies", {"wait_seconds": 0}))
        assert [(r["id"], r.get("shown_in_pane")) for r in handed["replies"]] == [(reply_sid, True)]
        assert "shown_in_pane" in handed["note"]


async def test_the_pane_acts_only_as_its_sessions_user(server: LiveServer) -> None:
    agent = Agent(twilio_client(server))
    async with connect(server) as ann, connect(server) as bob:
        await ann.call_tool("live_chat_send", {"message": "ann's secret"})
        sid = await wait_for_conversation(agent)
        reply_sid = await asyncio.to_thread(agent.reply, sid, "for ann")
        await bob.call_tool("live_chat_send", {"message": "bob here"})  # bob has one too
        seen_by_bob = structured(await bob.call_tool("live_chat_view", {}))
        assert [line["body"] for line in seen_by_bob["lines"]] == ["bob here"]
        # Naming ann's reply from bob's session marks nothing of ann's.
        structured(await bob.call_tool("live_chat_view", {"shown_through": reply_sid}))
        handed = structured(await ann.call_tool("get_agent_replies", {"wait_seconds": 5}))
        assert [(r["body"], r.get("shown_in_pane")) for r in handed["replies"]] == [
            ("for ann", None)
        ]


async def test_a_message_the_team_cannot_take_is_refused_and_shown(
    make_server: ServerFactory,
) -> None:
    server = make_server(BUSINESS_HOURS="UTC; Mon-Sun 00:00-00:01", UNAVAILABLE_POLICY="decline")
    async with connect(server) as mcp:
        result = await mcp.call_tool("live_chat_send", {"message": "anyone there?"})
    assert result.is_error
    assert "Not sent: the support team is closed now (it opens " in text(result)
    view = result.structured_content
    assert view is not None and view["handoff"]["state"] == "after_hours"
    assert view["lines"] == []
    assert twilio_client(server).conversations.v1.conversations.list() == []


async def test_too_many_waiting_panes_are_refused_as_a_tool_error(server: LiveServer) -> None:
    async with connect(server) as mcp:
        await mcp.call_tool("live_chat_send", {"message": "hello"})
        seen = structured(await mcp.call_tool("live_chat_view", {}))["version"]
        # Until the first queue figures are in, the view changes by itself: wait for that.
        for _ in range(10):
            settled = await mcp.call_tool(
                "live_chat_view", {"seen_version": seen, "wait_seconds": 1.5}
            )
            if structured(settled)["version"] == seen:
                break
            seen = structured(settled)["version"]
        waiting = [
            asyncio.ensure_future(
                mcp.call_tool("live_chat_view", {"seen_version": seen, "wait_seconds": 5})
            )
            for _ in range(MAX_PANES_WAITING)
        ]
        await asyncio.sleep(0.3)
        refused = await mcp.call_tool("live_chat_view", {"seen_version": seen, "wait_seconds": 5})
        assert refused.is_error and "several calls waiting" in text(refused)
        # The model's own call is not held back by the panes.
        replies = await mcp.call_tool("get_agent_replies", {"wait_seconds": 0.2})
        assert not replies.is_error
        await asyncio.gather(*waiting)


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("live_chat_view", {"shown_through": "IM123"}, "shown_through"),
        ("live_chat_view", {"shown_through": "<script>alert(1)</script>"}, "shown_through"),
        ("live_chat_view", {"wait_seconds": -1}, "wait_seconds"),
        ("live_chat_view", {"wait_seconds": 3600}, "wait_seconds"),
        ("live_chat_view", {"seen_version": "v" * 65}, "seen_version"),
        ("live_chat_send", {"message": "   "}, "must not be empty"),
        ("live_chat_send", {"message": "x" * 8001}, "8001 characters"),
        ("live_chat_send", {}, "message"),
    ],
)
async def test_refusals_are_tool_errors_and_send_nothing(
    server: LiveServer, tool: str, arguments: dict[str, object], expected: str
) -> None:
    async with connect(server) as mcp:
        result = await mcp.call_tool(tool, arguments)
    assert result.is_error
    assert expected in text(result)
    assert twilio_client(server).conversations.v1.conversations.list() == []
