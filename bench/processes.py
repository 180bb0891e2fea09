"""Scenario h: two bridge processes on one PostgreSQL, a wake-up crossing between them.

Conversations are opened through process B, so Twilio's webhooks (the emulator's) go to
B; each user's ``/replies?wait=30`` waits on process A. The agent replies; B stores the
reply and rings PostgreSQL (NOTIFY); A's listener wakes the waiting call. Latency is the
time A's answer reaches the driver minus the time the agent's create call returned, as
in scenario a. The other half of the users wait on B itself: the same, in one process on
PostgreSQL, for comparison. PostgreSQL is a throwaway cluster of Debian's
``postgresql`` on loopback, with the tests' settings (no fsync).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from bench import procs
from bench.clients import BridgeClient
from bench.harness import ScenarioFailed, Stack, stack
from bench.latency import SETTLE_RANGE, WAIT_SECONDS, reply_delays
from bench.stats import summary_ms
from tests.postgres import Cluster, new_database


async def run(quick: bool) -> dict[str, Any]:
    count = 100 if quick else 1000
    concurrency = 20
    cluster = Cluster()
    database = new_database(await asyncio.to_thread(cluster.start))
    try:
        return await _handoffs(database, count, concurrency)
    finally:
        await asyncio.to_thread(cluster.stop)


async def _handoffs(database: str, count: int, concurrency: int) -> dict[str, Any]:
    users = [f"xproc-{n:04d}" for n in range(count)]
    async with stack("processes", DATABASE_URL=database, REPLY_WAIT_SECONDS="0.05") as running:
        sids = await running.open_conversations(users, concurrency=100)  # through B
        # B itself, now letting calls wait, for the one-process baseline on PostgreSQL.
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        await running.bridge_idle()
        (running.workdir / "a").mkdir()
        waiting_on = procs.bridge(
            running.workdir / "a",
            running.emulator.url,
            {"DATABASE_URL": database, "REPLY_WAIT_SECONDS": str(WAIT_SECONDS)},
        )
        await asyncio.to_thread(waiting_on.start)
        try:
            half = count // 2
            # Alternating halves would tangle the two; each half on its own, A first.
            across = await _lanes(running, BridgeClient(running.http, waiting_on.url),
                                  users[:half], sids, concurrency)  # fmt: skip
            same = await _lanes(running, running.api, users[half:], sids, concurrency)
        finally:
            await asyncio.to_thread(waiting_on.stop)
    across_ms = summary_ms(across["samples"])
    return {
        "handoffs_each": half,
        "concurrency": concurrency,
        "across_processes": {
            "latency_ms": across_ms,
            "errors": across["errors"],
            "error_examples": across["examples"],
        },
        "one_process": {
            "latency_ms": summary_ms(same["samples"]),
            "errors": same["errors"],
            "error_examples": same["examples"],
        },
        "errors": across["errors"] + same["errors"],
        "target": {"p99_ms_max": 50, "met": bool(across_ms.get("n")) and across_ms["p99"] <= 50},
    }


async def _lanes(
    running: Stack, api: BridgeClient, users: list[str], sids: dict[str, str], concurrency: int
) -> dict[str, Any]:
    """Each user's call waits on ``api``'s process while the agent replies; the delays."""
    rng = random.Random(7)
    settle = {user: rng.uniform(*SETTLE_RANGE) for user in users}
    latencies, errors = await reply_delays(running, api, users, sids, concurrency, settle)
    if len(errors) > len(users) // 10:
        raise ScenarioFailed(f"{len(errors)} hand-offs failed, e.g. {errors[0]}")
    return {
        "samples": [latencies[u] for u in users if u in latencies],
        "errors": len(errors),
        "examples": errors[:3],
    }
