"""Scenario f: callers that give up around the agent's reply, with and without ``after``.

Many users at once each keep a ``GET /replies?wait=5`` open; the agent replies to all of
them; each caller hangs up (a TCP reset) at a random moment 0 to 300 ms after the replies
start going out, keeping any full answer it had read by then. Then every caller comes
back until it has every reply (or gives up after the lease has run out twice). Counted:
replies never received (lost) and replies shown twice.

``plain``: the caller passes nothing; a reply counts as delivered once its answer was
written to the connection, so an answer written but never read by a caller that hung up
at that moment is lost. ``after``: the caller passes the id of the last reply it saw (or
``none``), and gets everything after it: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.harness import ScenarioFailed, stack

LEASE_SECONDS = 15


@dataclass
class Caller:
    user: str
    seen: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)


async def _get(base: str, path: str, patience: float | None) -> dict[str, Any] | None:
    """One GET on a connection of its own; None when the caller hung up first."""
    netloc = urlsplit(base).netloc
    host, port = netloc.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\n\r\n".encode())

    async def answer() -> dict[str, Any]:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        loaded: dict[str, Any] = json.loads(await reader.readexactly(length))
        return loaded

    try:
        return await asyncio.wait_for(answer(), patience)
    except TimeoutError:
        return None
    finally:
        writer.transport.abort()


def _path(caller: Caller, wait: float, after: bool) -> str:
    path = f"/replies/{caller.user}?wait={wait}"
    if after:
        path += f"&after={caller.seen[-1] if caller.seen else 'none'}"
    return path


def _keep(caller: Caller, found: dict[str, Any] | None) -> None:
    for reply in (found or {}).get("replies", []):
        caller.seen.append(reply["id"])
        caller.bodies.append(reply["body"])


async def _mode(after: bool, users: int, rounds: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    callers = [Caller(f"gone-{'after' if after else 'plain'}-{n:03d}") for n in range(users)]
    name = "disconnects-after" if after else "disconnects-plain"
    async with stack(name, REPLY_WAIT_SECONDS="5") as running:
        sids = await running.open_conversations([c.user for c in callers], concurrency=50)
        base = running.bridge.url
        posted: list[str] = []
        for n in range(rounds):
            body = f"reply {n}"
            posted.append(body)
            waits = [
                asyncio.ensure_future(
                    _get(base, _path(caller, 5, after), 0.2 + rng.uniform(0.0, 0.3))
                )
                for caller in callers
            ]
            await asyncio.sleep(0.2)
            await asyncio.gather(
                *(running.emu.post_message(sids[caller.user], body) for caller in callers)
            )
            for caller, waiting in zip(callers, waits, strict=True):
                _keep(caller, await waiting)
        for _ in range(2):  # right away, then once every lease has run out
            for caller in callers:
                for _ in range(rounds):
                    if set(caller.bodies) >= set(posted):
                        break
                    _keep(caller, await _get(base, _path(caller, 1, after), 10))
            if all(set(c.bodies) >= set(posted) for c in callers):
                break
            await asyncio.sleep(LEASE_SECONDS + 1)
    lost = sum(len(set(posted) - set(c.bodies)) for c in callers)
    twice = sum(len(c.seen) - len(set(c.seen)) for c in callers)
    return {"replies": users * rounds, "lost": lost, "shown_twice": twice}


async def run(quick: bool) -> dict[str, Any]:
    users, rounds = (20, 2) if quick else (60, 5)
    plain = await _mode(False, users, rounds, seed=1)
    after = await _mode(True, users, rounds, seed=2)
    if after["lost"] or after["shown_twice"]:
        raise ScenarioFailed(f"with after: {after}")
    return {
        "plain": plain,
        "after": after,
        "target": {"what": "with after: 0 lost, 0 shown twice", "met": True},
    }
