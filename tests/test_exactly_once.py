"""Exactly once over HTTP, for callers that pass ``after``: users waiting at once, the
agent replying to all of them, each caller hanging up (a TCP reset) at a random moment
while the replies go out, keeping whatever full answer it had read. Coming back with the
id of the last reply it saw (or ``none``), each gets every reply, and none twice.

(Without ``after`` a reply can still be lost: an answer written to the connection just as
the caller hangs up, never read. ``make bench`` counts both: scenario "disconnects".)
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field

import httpx

from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client

USERS = 60
ROUNDS = 3


@dataclass
class Caller:
    user: str
    seen: list[str] = field(default_factory=list)  # reply ids, in the order shown
    bodies: list[str] = field(default_factory=list)

    @property
    def after(self) -> str:
        return self.seen[-1] if self.seen else "none"


async def _get(server: LiveServer, path: str, patience: float) -> dict[str, object] | None:
    """One GET on a connection of its own; None when the caller hung up first."""
    port = server.settings.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())

    async def answer() -> dict[str, object]:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        loaded: dict[str, object] = json.loads(await reader.readexactly(length))
        return loaded

    try:
        return await asyncio.wait_for(answer(), patience)
    except TimeoutError:
        return None
    finally:
        writer.transport.abort()  # a reset, as a caller that gives up


def _keep(caller: Caller, found: dict[str, object] | None) -> None:
    replies = (found or {}).get("replies", [])
    assert isinstance(replies, list)
    for reply in replies:
        caller.seen.append(reply["id"])
        caller.bodies.append(reply["body"])


async def test_callers_passing_after_lose_nothing_and_see_nothing_twice(
    make_server: ServerFactory,
) -> None:
    server = make_server(REPLY_WAIT_SECONDS="5")
    agent = Agent(twilio_client(server))
    callers = [Caller(f"gone-{n:02d}") for n in range(USERS)]
    rng = random.Random(20261201)
    async with asyncio.timeout(150):
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            sent = await asyncio.gather(
                *(http.post(f"/send/{c.user}", json={"msg": "hello"}) for c in callers)
            )
            assert all(answer.status_code == 200 for answer in sent)
        sids = await asyncio.to_thread(lambda: [c.sid for c in agent.conversations.list()])
        assert len(sids) == USERS
        posted: list[str] = []
        for n in range(ROUNDS):
            posted.append(f"reply {n}")
            waits = [
                asyncio.ensure_future(
                    _get(
                        server,
                        f"/replies/{c.user}?wait=5&after={c.after}",
                        0.2 + rng.uniform(0.0, 0.3),
                    )
                )
                for c in callers
            ]
            await asyncio.sleep(0.2)
            await asyncio.gather(*(asyncio.to_thread(agent.reply, sid, posted[-1]) for sid in sids))
            for caller, waiting in zip(callers, waits, strict=True):
                _keep(caller, await waiting)
        for caller in callers:
            for _ in range(ROUNDS + 1):
                if set(caller.bodies) >= set(posted):
                    break
                _keep(
                    caller, await _get(server, f"/replies/{caller.user}?after={caller.after}", 10)
                )
    lost = sum(len(set(posted) - set(c.bodies)) for c in callers)
    twice = sum(len(c.seen) - len(set(c.seen)) for c in callers)
    assert (lost, twice) == (0, 0)
