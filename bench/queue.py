"""Scenario g: what telling waiting users where they stand costs in Twilio calls.

Users wait in one TaskRouter queue (no agent signed in), each keeping a
``/replies?wait=30`` call open back to back; the emulator counts the bridge's TaskRouter
calls per minute (the waiting-task list and the one-time lookups of a conversation's
task, both ``list_tasks``; the queue's real-time and cumulative statistics). Run with few
users, then many in the same queue, each twice: the steady calls should not grow with the
users, and every answer should carry the user's position.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import ScenarioFailed, Stack, stack
from bench.procs import WORKSPACE_SID

WAIT_SECONDS = 30
QUEUE_OPERATIONS = (
    "list_tasks",
    "task_queue_real_time_statistics",
    "task_queue_cumulative_statistics",
    "list_workers",
)


async def _waiting(running: Stack, users: list[str], seconds: float) -> dict[str, Any]:
    await running.emu.reset_stats()
    started = time.perf_counter()
    answers = 0
    positions: set[int] = set()
    missing = 0

    async def keep_waiting(user: str) -> None:
        nonlocal answers, missing
        while (left := seconds - (time.perf_counter() - started)) > 0:
            answer = await running.api.replies(user, min(WAIT_SECONDS, max(left, 0.1)))
            if not answer.ok or answer.status != "waiting":
                raise ScenarioFailed(f"{user}: HTTP {answer.http_status} {answer.status}")
            answers += 1
            queue = (answer.body.get("handoff") or {}).get("queue") or {}
            if queue.get("position") is None:
                missing += 1
            else:
                positions.add(queue["position"])

    await asyncio.gather(*(keep_waiting(user) for user in users))
    elapsed = time.perf_counter() - started
    calls = (await running.emu.stats())["calls"]
    queue_calls = {op: calls.get(op, 0) for op in QUEUE_OPERATIONS}
    return {
        "users": len(users),
        "elapsed_s": round(elapsed, 1),
        "answers": answers,
        "answers_without_position": missing,
        "distinct_positions": len(positions),
        "queue_calls": queue_calls,
        "queue_calls_per_minute": round(sum(queue_calls.values()) / (elapsed / 60), 1),
    }


async def run(quick: bool) -> dict[str, Any]:
    count = 100 if quick else 1000
    seconds = 15.0 if quick else 60.0
    async with stack(
        "queue",
        http_limit=count + 50,
        TWILIO_WORKSPACE_SID=WORKSPACE_SID,
        REPLY_WAIT_SECONDS="1",
        MAX_WAITING_CALLS="100000",
    ) as running:
        users = [f"queue-{i}" for i in range(count)]
        await running.open_conversations(users, concurrency=50)
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        await running.bridge_idle()
        # Each conversation's task is looked up once, the first time someone waits on it
        # (the emulator sends the bridge no task.created event here): the first window of
        # each size holds those lookups, the second only the steady cost.
        few = await _waiting(running, users[:10], seconds)
        few_again = await _waiting(running, users[:10], seconds)
        many = await _waiting(running, users, seconds)
        many_again = await _waiting(running, users, seconds)
    ratio = many_again["queue_calls_per_minute"] / max(few_again["queue_calls_per_minute"], 0.1)
    return {
        "window_s": seconds,
        "few": few,
        "few_again": few_again,
        "many": many,
        "many_again": many_again,
        "calls_ratio_many_to_few": round(ratio, 2),
        "target": {
            "note": "steady queue calls per minute do not grow with the users (ratio < 2)",
            "met": ratio < 2
            and all(w["answers_without_position"] == 0 for w in (few_again, many_again)),
        },
    }
