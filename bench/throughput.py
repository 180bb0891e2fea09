"""Scenario d: /send throughput to conversations that are already open.

C clients, each its own user with an open conversation, send back to back for a fixed
time. /send waits REPLY_WAIT_SECONDS for an agent reply after posting; no agent answers
here, so every answer is ``waiting`` and the setting sets a floor under each request.
Posting may take part of the call: answers saying "queued" (stored, left to the outbox
worker) are counted, and the time the worker then needs to post them is measured. Two
settings are run:

- REPLY_WAIT_SECONDS=0.05, 50 clients: the tiny wait.
- REPLY_WAIT_SECONDS=0.5, 100 clients: a longer wait, with enough clients that the wait
  is not what limits the rate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import QUEUED_NOTE, log, stack
from bench.stats import summary_ms

#: Each client sends as fast as it can: the per-user rate limit (30 a minute by default)
#: is lifted to its maximum so the numbers show the bridge's capacity.
RATE_LIMIT = "10000"


async def measure(clients: int, duration: float, reply_wait: str) -> dict[str, Any]:
    users = [f"tput-{i:03d}" for i in range(clients)]
    async with stack(
        "throughput", WEBHOOKS="on", REPLY_WAIT_SECONDS="2", RATE_LIMIT_PER_MINUTE=RATE_LIMIT
    ) as running:
        await running.open_conversations(users, concurrency=clients)
        await running.emu.reset_stats()
        await running.restart_bridge(REPLY_WAIT_SECONDS=reply_wait)
        await running.wait_reconciled(clients)
        await running.bridge_idle()
        await running.emu.reset_stats()
        log(f"throughput: {clients} clients, REPLY_WAIT_SECONDS={reply_wait}, {duration:g} s")

        latencies: list[float] = []
        statuses: dict[str, int] = {}
        queued = 0
        errors: list[str] = []
        cpu = {"bridge": running.bridge.cpu_seconds(), "emulator": running.emulator.cpu_seconds()}
        started = time.perf_counter()

        async def client(user: str) -> None:
            nonlocal queued
            n = 0
            while time.perf_counter() - started < duration:
                n += 1
                answer = await running.api.send(user, f"message {n} from {user}")
                if not answer.ok:
                    errors.append(f"HTTP {answer.http_status} {answer.body}")
                    continue
                latencies.append(answer.finished - answer.started)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                if QUEUED_NOTE in str(answer.body.get("note")):
                    queued += 1

        await asyncio.gather(*(client(user) for user in users))
        elapsed = time.perf_counter() - started
        cores = {
            "bridge": round((running.bridge.cpu_seconds() - cpu["bridge"]) / elapsed, 2),
            "emulator": round((running.emulator.cpu_seconds() - cpu["emulator"]) / elapsed, 2),
        }
        posted_in_run = (await running.emu.stats())["calls"].get("create_message", 0)
        drained_after = await running.wait_outbox_empty(limit_seconds=180)
        posted = (await running.emu.stats())["calls"].get("create_message", 0)
    done = len(latencies)
    return {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "reply_wait_seconds": float(reply_wait),
        "requests": done,
        "errors": len(errors),
        "error_examples": errors[:3],
        "requests_per_s": round(done / elapsed, 1),
        "latency_ms": summary_ms(latencies),
        "statuses": statuses,
        "answered_queued": queued,
        "posted_during_run": posted_in_run,
        "outbox_empty_after_run_s": round(drained_after, 1),
        "messages_posted": posted,
        "cpu_cores_used": cores,
    }


async def run(quick: bool) -> dict[str, Any]:
    duration = 5.0 if quick else 20.0
    tiny = await measure(10 if quick else 50, duration, "0.05")
    budget = await measure(20 if quick else 100, duration, "0.5")
    return {"rate_limit_per_minute": int(RATE_LIMIT), "tiny_wait": tiny, "half_second": budget}
