"""The whole bridge on PostgreSQL (one process): a hand-off end to end, through real
HTTP and the sandbox, with the store on a real PostgreSQL server."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from tests.conftest import Agent, ServerFactory, twilio_client, wait_for_conversation
from tests.test_mcp import connect, structured


async def test_a_hand_off_runs_on_postgres(make_server: ServerFactory, postgres_url: str) -> None:
    server = make_server(DATABASE_URL=postgres_url, REPLY_WAIT_SECONDS="5")
    agent = Agent(twilio_client(server))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        sent = (await http.post("/send/pguser", json={"msg": "Hello from PostgreSQL"})).json()
        assert sent["status"] == "waiting"
        sid = await wait_for_conversation(agent)
        await asyncio.to_thread(agent.reply, sid, "Hi, stored in PostgreSQL")
        got = (await http.get("/replies/pguser", params={"wait": "5"})).json()
        assert [r["body"] for r in got["replies"]] == ["Hi, stored in PostgreSQL"]
        again = (await http.get("/replies/pguser")).json()
        assert again["replies"] == []  # handed out once
        ended = (await http.post("/end/pguser")).json()
        assert (ended["status"], ended["closed_by"]) == ("closed", "user")
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT state, closed_by FROM conversations").fetchall()
        delivered = conn.execute(
            "SELECT COUNT(*) FROM agent_messages WHERE delivered_at IS NOT NULL"
        ).fetchone()
    assert rows == [("closed", "user")]
    assert delivered == (1,)


async def test_an_mcp_client_works_with_the_sessions_the_bridge_issues(
    make_server: ServerFactory, postgres_url: str
) -> None:
    server = make_server(DATABASE_URL=postgres_url, REPLY_WAIT_SECONDS="2")
    agent = Agent(twilio_client(server))
    async with connect(server) as mcp:
        first = structured(await mcp.call_tool("request_human_agent", {"message": "hi via MCP"}))
        assert first["status"] == "waiting"
        sid = await wait_for_conversation(agent)
        await asyncio.to_thread(agent.reply, sid, "agent here")
        got = structured(await mcp.call_tool("get_agent_replies", {"wait_seconds": 2}))
        assert [r["body"] for r in got["replies"]] == ["agent here"]
    async with connect(server) as other:  # a new session: another user
        theirs = structured(await other.call_tool("get_agent_replies", {"wait_seconds": 0}))
        assert theirs["status"] == "closed" and theirs["replies"] == []
