"""``examples/agent.py``, the README's command-line Flex agent, run as a user runs it:
against a live sandbox, through Twilio's public APIs with the real ``twilio`` library."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ServerFactory

SCRIPT = Path(__file__).parent.parent / "examples" / "agent.py"


async def agent(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(SCRIPT), *args, "--sandbox", url],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_example_agent_accepts_replies_and_closes(make_server: ServerFactory) -> None:
    server = make_server(REPLY_WAIT_SECONDS="1")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        nothing = await agent(server.url, "reply", "too early")
        assert nothing.returncode == 1 and "accept one first" in nothing.stderr

        sent = await http.post("/send/erin", json={"msg": "Can a person help me?"})
        assert sent.json()["status"] == "waiting"
        accepted = await agent(server.url, "accept")
        assert accepted.returncode == 0, accepted.stderr
        assert "agent.alex accepted CH" in accepted.stdout

        for _ in range(100):  # the bridge has heard of the accept (else a wait ends on it)
            seen = (await http.get("/replies/erin")).json()
            if seen["handoff"]["state"] == "with_agent":
                break
            await asyncio.sleep(0.05)
        replied = await agent(server.url, "reply", "Alex here. Yes, of course.")
        assert replied.returncode == 0, replied.stderr
        answered = (await http.get("/replies/erin", params={"wait": "5"})).json()
        assert [r["body"] for r in answered["replies"]] == ["Alex here. Yes, of course."]

        closed = await agent(server.url, "close")
        assert closed.returncode == 0, closed.stderr
        ended = (await http.get("/replies/erin", params={"wait": "5"})).json()
        assert ended["status"] == "closed"
        assert ended["note"].startswith("The agent ended this conversation")
        listed = await agent(server.url, "list")
        assert "completed" in listed.stdout

        # Nothing more is offered: accept says so instead of waiting for ever.
        idle = await agent(server.url, "accept", "--wait", "0.5")
        assert idle.returncode == 1 and "Nothing was offered" in idle.stderr
