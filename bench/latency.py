"""Scenario a: reply latency, push (signed webhooks) against poll.

For each hand-off a ``/replies/{user}?wait=30`` call is already waiting on the bridge when
the agent posts a reply in the emulator. Latency is the time the waiting call's answer
reaches the driver minus the time the agent's create call returned to the driver.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.harness import ScenarioFailed, stack
from bench.stats import summary_ms

WAIT_SECONDS = 30
#: The waiting call gets this long (uniformly drawn) before the agent posts. The draw
#: keeps the post from locking onto a phase of the 0.5 s poll cycle.
SETTLE_RANGE = (0.2, 0.7)


async def handoffs(mode: str, count: int, concurrency: int, seed: int) -> dict[str, Any]:
    """``count`` hand-offs on one bridge with WEBHOOKS=``mode`` (on = push, off = poll)."""
    users = [f"lat-{mode}-{n:04d}" for n in range(count)]
    rng = random.Random(seed)
    settle = {user: rng.uniform(*SETTLE_RANGE) for user in users}
    async with stack(f"latency-{mode}", WEBHOOKS=mode, REPLY_WAIT_SECONDS="0.05") as running:
        sids = await running.open_conversations(users, concurrency=250)
        # The same bridge, database and port, now letting a call wait up to 30 s.
        await running.emu.reset_stats()
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        await running.wait_reconciled(len(users))
        await running.bridge_idle()
        await running.emu.reset_stats()

        latencies: dict[str, float] = {}
        errors: list[str] = []
        queue: asyncio.Queue[str] = asyncio.Queue()
        for user in users:
            queue.put_nowait(user)

        async def lane() -> None:
            while not queue.empty():
                user = queue.get_nowait()
                waiter = asyncio.create_task(running.api.replies(user, WAIT_SECONDS))
                await asyncio.sleep(settle[user])
                if waiter.done():
                    errors.append(f"{user}: answered before the reply: {waiter.result().body}")
                    continue
                body = f"reply to {user}"
                message = await running.emu.post_message(sids[user], body)
                created = time.perf_counter()
                answer = await waiter
                expected = [(message["sid"], body)]
                got = [(r["id"], r["body"]) for r in answer.replies]
                if answer.http_status != 200 or answer.status != "answered" or got != expected:
                    errors.append(f"{user}: HTTP {answer.http_status} {answer.body}")
                    continue
                latencies[user] = answer.finished - created

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        if len(errors) > count // 10:
            raise ScenarioFailed(f"{mode}: {len(errors)} hand-offs failed, e.g. {errors[0]}")
        calls = await running.emu.stats()
    samples = [latencies[user] for user in users if user in latencies]
    return {
        "webhooks": mode,
        "handoffs": count,
        "concurrency": concurrency,
        "errors": len(errors),
        "error_examples": errors[:3],
        "elapsed_s": round(elapsed, 1),
        "latency_ms": summary_ms(samples),
        "negative_samples": sum(1 for s in samples if s < 0),
        "rest_calls_during": calls["total_calls"],
        "samples_s": [round(s, 6) for s in samples],
    }


async def run(quick: bool) -> dict[str, Any]:
    count = 40 if quick else 500
    concurrency = 10 if quick else 20
    push = await handoffs("on", count, concurrency, seed=1)
    poll = await handoffs("off", count, concurrency, seed=2)
    p99 = push["latency_ms"].get("p99", float("inf"))
    return {
        "push": push,
        "poll": poll,
        "poll_interval_s": 0.5,
        "settle_range_s": list(SETTLE_RANGE),
        "target": {"push_p99_ms_max": 50, "met": p99 <= 50 and push["errors"] == 0},
    }
