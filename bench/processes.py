"""Scenario h: two bridge processes on one PostgreSQL, a wake-up crossing between them.

Conversations are opened through process B, so Twilio's webhooks (the emulator's) go to
B; each user's ``/replies?wait=30`` waits on process A. The agent replies; B stores the
reply and rings PostgreSQL (NOTIFY); A's listener wakes the waiting call. Latency is the
time A's answer reaches the driver minus the time the agent's create call returned, as
in scenario a (there: one process). PostgreSQL is a throwaway cluster of Debian's
``postgresql`` on loopback, with the tests' settings (no fsync).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench import procs
from bench.clients import BridgeClient
from bench.harness import ScenarioFailed, stack
from bench.stats import summary_ms
from tests.postgres import Cluster, new_database

WAIT_SECONDS = 30
SETTLE_RANGE = (0.2, 0.7)


async def run(quick: bool) -> dict[str, Any]:
    count = 100 if quick else 500
    concurrency = 20
    cluster = Cluster()
    database = new_database(await asyncio.to_thread(cluster.start))
    try:
        return await _handoffs(database, count, concurrency)
    finally:
        await asyncio.to_thread(cluster.stop)


async def _handoffs(database: str, count: int, concurrency: int) -> dict[str, Any]:
    users = [f"xproc-{n:04d}" for n in range(count)]
    rng = random.Random(7)
    settle = {user: rng.uniform(*SETTLE_RANGE) for user in users}
    async with stack("processes", DATABASE_URL=database, REPLY_WAIT_SECONDS="0.05") as running:
        sids = await running.open_conversations(users, concurrency=100)  # through B
        (running.workdir / "a").mkdir()
        waiting_on = procs.bridge(
            running.workdir / "a",
            running.emulator.url,
            {"DATABASE_URL": database, "REPLY_WAIT_SECONDS": str(WAIT_SECONDS)},
        )
        await asyncio.to_thread(waiting_on.start)
        try:
            api = BridgeClient(running.http, waiting_on.url)
            latencies: dict[str, float] = {}
            errors: list[str] = []
            queue: asyncio.Queue[str] = asyncio.Queue()
            for user in users:
                queue.put_nowait(user)

            async def lane() -> None:
                while not queue.empty():
                    user = queue.get_nowait()
                    waiter = asyncio.create_task(api.replies(user, WAIT_SECONDS))
                    await asyncio.sleep(settle[user])
                    if waiter.done():
                        errors.append(f"{user}: answered before the reply")
                        continue
                    message = await running.emu.post_message(sids[user], f"reply to {user}")
                    created = time.perf_counter()
                    answer = await waiter
                    got = [r["id"] for r in answer.replies]
                    if answer.status != "answered" or got != [message["sid"]]:
                        errors.append(f"{user}: HTTP {answer.http_status} {answer.body}")
                        continue
                    latencies[user] = answer.finished - created

            started = time.perf_counter()
            await asyncio.gather(*(lane() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        finally:
            await asyncio.to_thread(waiting_on.stop)
    if len(errors) > count // 10:
        raise ScenarioFailed(f"{len(errors)} hand-offs failed, e.g. {errors[0]}")
    samples = [latencies[user] for user in users if user in latencies]
    latency = summary_ms(samples)
    return {
        "handoffs": count,
        "concurrency": concurrency,
        "errors": len(errors),
        "error_examples": errors[:3],
        "elapsed_s": round(elapsed, 1),
        "latency_ms": latency,
        "target": {"p99_ms_max": 50, "met": bool(latency.get("n")) and latency["p99"] <= 50},
    }
