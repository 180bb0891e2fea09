"""Scenario c: Twilio REST calls the bridge makes, as counted by the emulator.

Per first message (a new user's /send), per follow-up /send, and per minute that a user
spends waiting in ``/replies?wait=30`` calls back to back; push (webhooks) and poll.
The agent makes no call in this scenario, so every call counted is the bridge's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import ScenarioFailed, Stack, stack

WAIT_SECONDS = 30


def _per(calls: dict[str, Any], count: float) -> dict[str, Any]:
    return {
        "total": round(calls["total_calls"] / count, 2),
        "by_operation": {k: round(v / count, 2) for k, v in sorted(calls["calls"].items())},
    }


async def _sends(running: Stack, users: list[str], text: str, context: str | None) -> None:
    answers = await asyncio.gather(*(running.api.send(u, text, context) for u in users))
    bad = [a for a in answers if not a.ok]
    if bad:
        raise ScenarioFailed(f"{len(bad)} sends failed, e.g. HTTP {bad[0].http_status}")
    await running.wait_outbox_empty()


async def _counted_sends(
    running: Stack, users: list[str], text: str, context: str | None = None
) -> dict[str, Any]:
    await running.emu.reset_stats()
    await _sends(running, users, text, context)
    return _per(await running.emu.stats(), len(users))


async def _waiting_minute(
    running: Stack, users: list[str], minute: float, windows: int = 1
) -> dict[str, Any]:
    """Each user keeps a /replies?wait=30 call open, back to back, for ``windows`` times
    ``minute`` seconds; with several windows, the calls of each are counted apart too
    (the poller starts fast and slows down while nothing happens)."""
    await running.emu.reset_stats()
    started = time.perf_counter()
    calls = 0
    total = minute * windows
    per_window: list[dict[str, Any]] = []

    async def count_windows() -> None:
        before = 0
        for number in range(1, windows + 1):
            await asyncio.sleep(started + number * minute - time.perf_counter())
            stats = await running.emu.stats()
            per_window.append(
                {
                    "window": number,
                    "per_user_minute": round(
                        (stats["total_calls"] - before) / len(users) / (minute / 60), 2
                    ),
                }
            )
            before = stats["total_calls"]

    async def keep_waiting(user: str) -> None:
        nonlocal calls
        while time.perf_counter() - started < total:
            remaining = total - (time.perf_counter() - started)
            answer = await running.api.replies(user, min(WAIT_SECONDS, max(remaining, 0.1)))
            calls += 1
            if not answer.ok or answer.status != "waiting":
                raise ScenarioFailed(f"{user}: HTTP {answer.http_status} {answer.status}")

    counting = asyncio.ensure_future(count_windows())
    await asyncio.gather(*(keep_waiting(user) for user in users))
    elapsed = time.perf_counter() - started
    stats = await running.emu.stats()
    await counting
    user_minutes = len(users) * elapsed / 60
    return {
        "users": len(users),
        "elapsed_s": round(elapsed, 1),
        "replies_calls": calls,
        "rest_calls": stats["total_calls"],
        "per_user_minute": _per(stats, user_minutes),
        "per_window": per_window,
    }


async def _push(n: int, minute: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with stack("calls-push", WEBHOOKS="on", REPLY_WAIT_SECONDS="2") as running:
        plain = [f"calls-a{i}" for i in range(n)]
        with_context = [f"calls-b{i}" for i in range(n)]
        out["push_first_message"] = await _counted_sends(running, plain, "hello")
        out["push_first_message_with_context"] = await _counted_sends(
            running, with_context, "hello", "The user cannot log in."
        )
        out["push_follow_up"] = await _counted_sends(running, plain, "one more thing")
        await running.emu.reset_stats()
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        await running.wait_reconciled(2 * n)
        await running.bridge_idle()
        out["push_waiting"] = await _waiting_minute(running, plain, minute)
    return out


async def _poll(n: int, minute: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with stack("calls-poll", WEBHOOKS="off", REPLY_WAIT_SECONDS="2") as running:
        users = [f"calls-p{i}" for i in range(n)]
        # /send waits 2 s here, polled like any wait: these include that polling.
        out["poll_first_message_incl_2s_wait"] = await _counted_sends(running, users, "hello")
        out["poll_follow_up_incl_2s_wait"] = await _counted_sends(running, users, "more")
        await running.emu.reset_stats()
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        await running.wait_reconciled(n)
        await running.bridge_idle()
        # Two minutes: the first, paced fast from the start of the wait; the second, quiet.
        out["poll_waiting"] = await _waiting_minute(running, users, minute, windows=2)
    return out


async def run(quick: bool) -> dict[str, Any]:
    n = 3 if quick else 10
    minute = 10.0 if quick else 60.0
    out: dict[str, Any] = {"users": n, "window_s": minute}
    # Two separate emulator/bridge pairs, so each count is its own; the load is light.
    push, poll = await asyncio.gather(_push(n, minute), _poll(n, minute))
    out.update(push)
    out.update(poll)
    first = out["push_first_message"]["total"]
    follow = out["push_follow_up"]["total"]
    waiting = out["push_waiting"]["per_user_minute"]["total"]
    out["target"] = {
        "first_message_max": 4,
        "follow_up": 1,
        "push_waiting_minute": 0,
        "met": first <= 4 and follow == 1 and waiting == 0,
    }
    return out
