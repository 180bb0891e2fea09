"""Scenario b: many simultaneous waiting ``/replies`` calls on one bridge process.

N users each get an open conversation (a first /send, REPLY_WAIT_SECONDS=2), then the
bridge is restarted with REPLY_WAIT_SECONDS=40 and N ``/replies?wait=40`` calls are opened
and left waiting. Once all N wait at once (none answered, N connections established to
the bridge's port, the bridge's CPU quiet for a second), the agent replies in every
conversation with high concurrency, in the order the calls were opened. Each waiting call
must answer with exactly its own reply, posted inside its own 40 s wait; the wake latency
is the answer's arrival minus the return of the agent's create.

If N fails, smaller N (N/2, N/4, N/8) are tried on the same bridge process, each on
users whose conversations have had no reply yet, so no earlier reply can show up. When
no such users are left, and at the end, the bridge is restarted (its start-up reconcile
reads every open conversation) and every reply a failed attempt did not hand out is
collected: each must come exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench import procs
from bench.clients import Answer, BridgeClient, EmulatorClient, cancel_and_close, session
from bench.harness import log, stack
from bench.stats import summary_ms

WAIT_SECONDS = 40
RSS_TARGET_MB = 512
OPEN_CONCURRENCY = 400
POST_CONCURRENCY = 256
#: Called with the bridge process when the replies start (for profiling by hand).
PROFILE_HOOK: Callable[[procs.Service], None] | None = None


async def run(quick: bool, target: int | None = None) -> dict[str, Any]:
    """The target N first; on failure N/2, N/4, N/8, to find the largest that works."""
    n = target or (500 if quick else 10_000)
    users = [f"wait-{i:05d}" for i in range(n)]
    out: dict[str, Any] = {"target_n": n, "wait_seconds": WAIT_SECONDS}
    attempts: list[dict[str, Any]] = []
    async with stack("waiters", WEBHOOKS="on", REPLY_WAIT_SECONDS="2") as running:
        log(f"waiters: opening {n} conversations, {OPEN_CONCURRENCY} at a time")
        started = time.perf_counter()
        sids = await running.open_conversations(users, concurrency=OPEN_CONCURRENCY)
        out["open_s"] = round(time.perf_counter() - started, 1)
        out["open_per_s"] = round(n / (time.perf_counter() - started), 1)
        out["open_answered_queued"] = running.queued_at_open

        await running.emu.reset_stats()
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        log(f"waiters: bridge restarted, reconciling {n} conversations")
        out["restart_reconcile_s"] = round(await running.wait_reconciled(n), 1)
        await running.bridge_idle()
        out["bridge_rss_before_mb"] = round(running.bridge.rss_mb(), 1)
        out["nofile_limit"] = {
            "driver": procs.raise_nofile_limit(),
            "bridge": running.bridge.nofile_limit(),
            "emulator": running.emulator.nofile_limit(),
        }
        clean = list(users)  # no reply posted in their conversations yet
        late: dict[str, str] = {}
        # Replies whose wait ended before they came: each must still be handed out exactly
        # once, by the user's next call or, failing that, after a restart.
        collected = {"expected": 0, "next_call": 0, "after_restart": 0, "missing_or_extra": 0}

        async def collect_late() -> None:
            """Restart (the start-up reconcile reads every open conversation) and hand out
            the replies failed attempts left behind: then every conversation is clean."""
            nonlocal late, clean
            await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
            log(f"waiters: bridge restarted to collect {len(late)} replies not handed out")
            await running.wait_reconciled(n)
            right, wrong = await _collect_late(running.api, late)
            collected["after_restart"] += right
            collected["missing_or_extra"] += wrong
            late, clean = {}, list(users)

        for size in (n, n // 2, n // 4, n // 8):
            if size > len(clean):
                await collect_late()
            await running.fresh_http()  # no idle connection of the driver's to the bridge
            await running.bridge_idle()
            await running.emu.reset_stats()
            subset = clean[:size]
            result = await _wait_and_reply(running.bridge, running.emulator, sids, subset)
            if result.pop("posted"):
                clean = clean[size:]
            missed: dict[str, str] = result.pop("late")
            collected["expected"] += len(missed)
            result["bridge_peak_rss_so_far_mb"] = round(running.bridge.peak_rss_mb(), 1)
            stats = await running.emu.stats()
            result["rest_calls_during"] = stats["calls"]
            result["webhooks_during"] = stats["webhooks"]
            if "failure" not in result:
                # Every user asks once more (wait=0): a reply that missed its wait is due
                # now; anything else would be a reply handed out twice.
                extra = 0
                for user, ids in (await _next_call(running.api, subset)).items():
                    if user in missed and ids == [missed[user]]:
                        del missed[user]
                        collected["next_call"] += 1
                    else:
                        extra += len(ids)
                result["leftover_replies"] = extra
            late.update(missed)
            result["ok"] = (
                "failure" not in result
                and result["errors"] == 0
                and result["delivered_once"] == size
                and result["leftover_replies"] == 0
                and result["posted_within_wait"]
            )
            attempts.append(result)
            log(f"waiters: N={size} {'worked' if result['ok'] else 'failed'}")
            if result["ok"]:
                break
        if late:
            await collect_late()
        if collected["expected"]:
            out["late_replies"] = collected
        out["emulator_peak_rss_mb"] = round(running.emulator.peak_rss_mb(), 1)
    first = attempts[0]
    best = next((a for a in attempts if a["ok"]), None)
    out["attempts"] = attempts
    out["largest_ok_n"] = best["n"] if best else 0
    out["target"] = {
        "n": n,
        "rss_mb_max": RSS_TARGET_MB,
        "all_waiting_at_once": first.get("all_waiting", False),
        "peak_rss_mb": first["bridge_peak_rss_so_far_mb"],
        "met": bool(first["ok"] and first["bridge_peak_rss_so_far_mb"] <= RSS_TARGET_MB),
    }
    return out


async def _wait_and_reply(
    bridge: procs.Service, emulator: procs.Service, sids: dict[str, str], users: list[str]
) -> dict[str, Any]:
    n = len(users)
    out: dict[str, Any] = {"n": n, "late": {}, "posted": False}
    rss_before = bridge.rss_mb()
    # One connection per waiting call; the agent's posts go through their own pool. The
    # driver holds no other connection to the bridge meanwhile, so its connections to the
    # bridge's port are the waiting calls'.
    waiting_http = session(limit=0, keepalive=60)
    agent_http = session(limit=0, keepalive=3)
    api = BridgeClient(waiting_http, bridge.url)
    agent = EmulatorClient(agent_http, emulator.url)
    waiters: dict[str, asyncio.Task[Answer]] = {}
    opened: dict[str, float] = {}
    try:
        # Open the waiting calls at a bounded rate (2,000/s): the bridge listens with
        # Hypercorn's default backlog of 100, which a burst of thousands of connects
        # overflows.
        first_started = time.perf_counter()
        for i, user in enumerate(users):
            opened[user] = time.perf_counter()
            waiters[user] = asyncio.create_task(api.replies(user, WAIT_SECONDS))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        out["launch_s"] = round(time.perf_counter() - first_started, 2)
        log(f"waiters: N={n}: waiting calls opened in {out['launch_s']} s")

        # All waiting at once: none answered, every connection up, the bridge quiet.
        connected = 0
        while time.perf_counter() - first_started < WAIT_SECONDS:
            connected = procs.connections_from_self(bridge.port)
            if connected >= n or any(task.done() for task in waiters.values()):
                break
            await asyncio.sleep(0.5)
        cpu_before_quiet = bridge.cpu_seconds()
        await _quiet(bridge, first_started + WAIT_SECONDS)
        early = [u for u, task in waiters.items() if task.done()]
        ready = time.perf_counter()
        out["connections_established"] = connected
        out["answered_before_replies"] = len(early)
        out["all_waiting"] = not early and connected >= n
        out["all_waiting_after_s"] = round(ready - first_started, 2)
        out["bridge_cpu_s_settling"] = round(bridge.cpu_seconds() - cpu_before_quiet, 2)
        out["bridge_rss_all_waiting_mb"] = round(bridge.rss_mb(), 1)
        out["bridge_rss_per_waiting_call_kb"] = round(
            (bridge.rss_mb() - rss_before) * 1024 / max(1, connected), 1
        )
        out["bridge_open_fds_all_waiting"] = bridge.open_fds()
        log(
            f"waiters: N={n}: all waiting {out['all_waiting']} after {out['all_waiting_after_s']} s"
        )
        if not out["all_waiting"]:
            out["failure"] = (
                f"not all {n} calls were waiting at once: {len(early)} answered before any "
                f"reply (their {WAIT_SECONDS} s ran out), {connected} connections up"
            )
            return out

        # The agent replies everywhere, as fast as the machine lets it.
        out["posted"] = True
        cpu_before = {"bridge": bridge.cpu_seconds(), "emulator": emulator.cpu_seconds()}
        if PROFILE_HOOK is not None:
            PROFILE_HOOK(bridge)
        created: dict[str, float] = {}
        posted: dict[str, str] = {}
        post_errors: list[str] = []
        limit = asyncio.Semaphore(POST_CONCURRENCY)
        out["post_concurrency"] = POST_CONCURRENCY

        async def reply(user: str) -> None:
            async with limit:
                try:  # one attempt: a retried create could post the reply twice
                    message = await agent.post_message(sids[user], f"reply to {user}")
                except Exception as error:
                    post_errors.append(f"{user}: {error!r}")
                    return
                created[user] = time.perf_counter()
                posted[user] = message["sid"]

        await asyncio.gather(*(reply(user) for user in users))
        last_post = time.perf_counter()
        out["post_s"] = round(last_post - ready, 2)
        out["posts_per_s"] = round(n / (last_post - ready), 1)
        out["post_errors"] = len(post_errors)
        # The first call opened has the earliest deadline.
        # Each reply must be posted inside its own call's wait (counted from when the
        # driver opened the call, a little before the bridge took it in).
        out["posted_within_wait"] = all(
            created[user] < opened[user] + WAIT_SECONDS for user in created
        )
        out["first_deadline_minus_last_post_s"] = round(first_started + WAIT_SECONDS - last_post, 2)
        log(f"waiters: N={n}: {len(posted)} replies posted in {out['post_s']} s")

        answers = await asyncio.gather(*waiters.values(), return_exceptions=True)
        out["all_answered_s"] = round(time.perf_counter() - ready, 2)
        out["cpu_s_reply_phase"] = {
            "bridge": round(bridge.cpu_seconds() - cpu_before["bridge"], 1),
            "emulator": round(emulator.cpu_seconds() - cpu_before["emulator"], 1),
        }
        errors: list[str] = list(post_errors)
        latencies: list[float] = []
        delivered_once = 0
        timed_out = 0
        for user, answer in zip(users, answers, strict=True):
            if isinstance(answer, BaseException):
                errors.append(f"{user}: {answer!r}")
                continue
            ids = [r["id"] for r in answer.replies]
            if answer.http_status == 200 and answer.status == "waiting" and not ids:
                timed_out += 1
                errors.append(f"{user}: no reply within its {WAIT_SECONDS} s wait")
            elif answer.http_status != 200 or answer.status != "answered":
                errors.append(f"{user}: HTTP {answer.http_status} {answer.status}")
            elif user in posted and ids == [posted[user]]:
                delivered_once += 1
                latencies.append(answer.finished - created[user])
                continue
            else:
                errors.append(f"{user}: got {ids}, posted {posted.get(user)}")
            if user in posted:
                out["late"][user] = posted[user]
        out["errors"] = len(errors)
        out["waits_ended_without_reply"] = timed_out
        out["error_examples"] = errors[:3]
        out["delivered_once"] = delivered_once
        out["wake_latency_ms"] = summary_ms(latencies)
    finally:
        await cancel_and_close(waiters.values(), waiting_http, agent_http)
    return out


async def _quiet(bridge: procs.Service, deadline: float) -> None:
    """Until the bridge uses under 3% of a core for a whole second (or ``deadline``)."""
    before = bridge.cpu_seconds()
    while time.perf_counter() < deadline:
        await asyncio.sleep(1.0)
        now = bridge.cpu_seconds()
        if now - before < 0.03:
            return
        before = now


async def _collect_late(api: BridgeClient, late: dict[str, str]) -> tuple[int, int]:
    """After a restart: each reply still not handed out must come now, exactly once.
    Returns (right, wrong)."""
    found = await _next_call(api, list(late))
    right = sum(found[user] == [sid] for user, sid in late.items())
    return right, len(late) - right


async def _next_call(api: BridgeClient, users: list[str]) -> dict[str, list[str]]:
    """Each user's next call (wait=0): the ids of the replies it hands out."""
    limit = asyncio.Semaphore(50)
    found: dict[str, list[str]] = {}

    async def again(user: str) -> None:
        async with limit:
            answer = await api.replies(user, 0)
        found[user] = [r["id"] for r in answer.replies]

    await asyncio.gather(*(again(user) for user in users))
    return found
