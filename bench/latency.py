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

from bench.clients import BridgeClient
from bench.harness import ScenarioFailed, Stack, stack
from bench.stats import summary_ms

WAIT_SECONDS = 30
#: The waiting call gets this long (uniformly drawn) before the agent posts. The draw
#: keeps the post from locking onto a phase of the poll cycle.
SETTLE_RANGE = (0.2, 0.7)


async def reply_delays(
    running: Stack,
    api: BridgeClient,
    users: list[str],
    sids: dict[str, str],
    concurrency: int,
    settle: dict[str, float],
) -> tuple[dict[str, float], list[str]]:
    """Each user's ``/replies?wait=30`` waits on ``api``'s bridge for ``settle[user]``
    seconds, then the agent replies: the delays from the reply's creation to the answer
    (by user), and what went wrong, ``concurrency`` users at a time."""
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

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return latencies, errors


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

        started = time.perf_counter()
        latencies, errors = await reply_delays(
            running, running.api, users, sids, concurrency, settle
        )
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


async def paced(per_delay: int, delays: tuple[float, ...]) -> dict[str, Any]:
    """Polling's reply latency against how long the conversation was quiet: each user keeps
    a ``/replies?wait=30`` open (back to back) from the start, and the agent replies after
    one of ``delays`` seconds. The poller reads a quiet conversation less and less often,
    so a later reply waits longer to be seen."""
    # Each reply comes at the nominal quiet time plus a draw from [0, the poll interval
    # then), so the replies sample every phase of the poll cycle, not one.
    rng = random.Random(3)
    nominal = {f"paced-{int(d)}-{n:02d}": d for d in delays for n in range(per_delay)}
    users = {user: d + rng.uniform(0, min(10.0, max(2.0, d / 4))) for user, d in nominal.items()}
    # The account-wide allowance lifted: this measures the pace alone (80 conversations
    # polled from the start would exceed the default 600 reads a minute, as in handoffs).
    async with stack(
        "latency-paced", WEBHOOKS="off", REPLY_WAIT_SECONDS="0.05", POLL_CALLS_PER_MINUTE="100000"
    ) as running:
        sids = await running.open_conversations(list(users), concurrency=50)
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        await running.wait_reconciled(len(users))
        await running.bridge_idle()
        await running.emu.reset_stats()
        latencies: dict[float, list[float]] = {d: [] for d in delays}
        errors: list[str] = []

        async def one(user: str, delay: float) -> None:
            started = time.perf_counter()
            posted: dict[str, float] = {}

            async def agent() -> None:
                await asyncio.sleep(delay)
                await running.emu.post_message(sids[user], f"reply to {user}")
                posted["at"] = time.perf_counter()

            poster = asyncio.ensure_future(agent())
            while time.perf_counter() - started < delay + 2 * WAIT_SECONDS:
                answer = await running.api.replies(user, WAIT_SECONDS)
                if answer.status == "answered":
                    await poster
                    latencies[nominal[user]].append(answer.finished - posted["at"])
                    return
                if not answer.ok or answer.status != "waiting":
                    break
            errors.append(f"{user}: no reply seen")
            await poster

        await asyncio.gather(*(one(user, delay) for user, delay in users.items()))
        calls = await running.emu.stats()
    return {
        "users_per_delay": per_delay,
        "errors": len(errors),
        "error_examples": errors[:3],
        "by_quiet_seconds": {str(int(d)): summary_ms(latencies[d]) for d in delays},
        "rest_calls_during": calls["total_calls"],
    }


async def run(quick: bool) -> dict[str, Any]:
    count = 40 if quick else 500
    concurrency = 10 if quick else 20
    push = await handoffs("on", count, concurrency, seed=1)
    poll = await handoffs("off", count, concurrency, seed=2)
    # Off the 30 s boundaries where one /replies call ends and the next one reads at once.
    delays = (1.0, 10.0) if quick else (1.0, 10.0, 25.0, 45.0)
    poll_paced = await paced(3 if quick else 20, delays)
    p99 = push["latency_ms"].get("p99", float("inf"))
    return {
        "push": push,
        "poll": poll,
        "poll_paced": poll_paced,
        "poll_interval_s": {"fastest": 2.0, "slowest": 10.0, "state": 30.0},
        "settle_range_s": list(SETTLE_RANGE),
        "target": {"push_p99_ms_max": 50, "met": p99 <= 50 and push["errors"] == 0},
    }
