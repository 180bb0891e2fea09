"""Scenario i: several bridge processes on one PostgreSQL.

- ``/send`` throughput with 1, 2 and 4 bridge processes: as scenario d (50 clients, each
  its own user with an open conversation, sending back to back, REPLY_WAIT_SECONDS=0.05),
  the clients spread evenly over the processes, on the same 2-core machine as PostgreSQL
  and the emulator. Each message must be posted exactly once.
- Twilio calls per hand-off with two processes: first messages through one, follow-ups
  through the other, as scenario c counts them (the emulator counts).
- 10,000 waiting calls spread over two processes: as scenario b, every conversation
  opened through B (so Twilio's webhooks go to B), half the users waiting on A and half on
  B, then the agent replies in every conversation; each reply must reach its own waiting
  call exactly once, and the users' next calls find nothing left over.

PostgreSQL is a throwaway cluster of Debian's ``postgresql`` on loopback with the tests'
settings (no fsync): the database's own durability costs are not in these numbers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench import procs
from bench.clients import Answer, BridgeClient, EmulatorClient, cancel_and_close, session
from bench.harness import QUEUED_NOTE, ScenarioFailed, Stack, log, stack
from bench.stats import summary_ms
from tests.postgres import Cluster, new_database

#: Each client sends as fast as it can (the per-user rate limit lifted), as in scenario d.
RATE_LIMIT = "10000"
WAIT_SECONDS = 40
OPEN_CONCURRENCY = 400
POST_CONCURRENCY = 256


async def _more_bridges(running: Stack, count: int) -> list[procs.Service]:
    """``count`` more bridge processes with the stack's settings (its database)."""
    started: list[procs.Service] = []
    for number in range(count):
        workdir = running.workdir / f"bridge-{number + 2}"
        workdir.mkdir()
        bridge = procs.bridge(workdir, running.emulator.url, running.settings)
        await asyncio.to_thread(bridge.start)
        started.append(bridge)
    return started


async def _stop(bridges: Sequence[procs.Service]) -> None:
    await asyncio.gather(*(asyncio.to_thread(bridge.stop) for bridge in bridges))


async def _throughput(
    database: str, processes: int, clients: int, duration: float
) -> dict[str, Any]:
    users = [f"scale-{i:03d}" for i in range(clients)]
    async with stack(
        f"scaleout-{processes}",
        DATABASE_URL=database,
        REPLY_WAIT_SECONDS="2",
        RATE_LIMIT_PER_MINUTE=RATE_LIMIT,
    ) as running:
        await running.open_conversations(users, concurrency=clients)
        await running.restart_bridge(REPLY_WAIT_SECONDS="0.05")
        extra = await _more_bridges(running, processes - 1)
        try:
            bridges = [running.bridge, *extra]
            await running.bridge_idle()
            await running.emu.reset_stats()
            log(f"scaleout: {processes} process(es), {clients} clients, {duration:g} s")
            apis = [BridgeClient(running.http, bridge.url) for bridge in bridges]
            latencies: list[float] = []
            errors: list[str] = []
            queued = 0
            cpu = [bridge.cpu_seconds() for bridge in bridges]
            emulator_cpu = running.emulator.cpu_seconds()
            busy = procs.cpu_ticks()["busy"]
            started = time.perf_counter()

            async def client(number: int, user: str) -> None:
                nonlocal queued
                api = apis[number % processes]
                n = 0
                while time.perf_counter() - started < duration:
                    n += 1
                    answer = await api.send(user, f"message {n} from {user}")
                    if not answer.ok:
                        errors.append(f"HTTP {answer.http_status} {answer.body}")
                        continue
                    latencies.append(answer.finished - answer.started)
                    queued += QUEUED_NOTE in str(answer.body.get("note"))

            await asyncio.gather(*(client(n, user) for n, user in enumerate(users)))
            elapsed = time.perf_counter() - started
            machine = (procs.cpu_ticks()["busy"] - busy) / procs.CLOCK_TICKS / elapsed
            used = [
                round((b.cpu_seconds() - c) / elapsed, 2) for b, c in zip(bridges, cpu, strict=True)
            ]
            emulator_used = (running.emulator.cpu_seconds() - emulator_cpu) / elapsed
            drained = await running.wait_outbox_empty(limit_seconds=180)
            posted = (await running.emu.stats())["calls"].get("create_message", 0)
        finally:
            await _stop(extra)
    done = len(latencies)
    return {
        "processes": processes,
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "requests": done,
        "errors": len(errors),
        "error_examples": errors[:3],
        "requests_per_s": round(done / elapsed, 1),
        "latency_ms": summary_ms(latencies),
        "answered_queued": queued,
        "outbox_empty_after_run_s": round(drained, 1),
        "messages_posted": posted,
        "posted_once_each": posted == done,
        "cpu_cores_used": {
            "bridges": used,
            "bridges_total": round(sum(used), 2),
            "emulator": round(emulator_used, 2),
            "machine": round(machine, 2),
        },
        # What one request costs the bridges: the projection for a machine with more cores.
        "bridge_cpu_ms_per_request": round(sum(used) * elapsed * 1000 / done, 2) if done else None,
    }


async def _calls(database: str, count: int) -> dict[str, Any]:
    """REST calls per first message through one process and per follow-up through the
    other (scenario c's counts, now across two processes)."""
    users = [f"calls-x{i}" for i in range(count)]
    async with stack("scaleout-calls", DATABASE_URL=database, REPLY_WAIT_SECONDS="2") as running:
        (other,) = await _more_bridges(running, 1)
        try:
            counted: dict[str, Any] = {}
            for name, api, text in (
                ("first_message_via_b", running.api, "hello"),
                ("follow_up_via_a", BridgeClient(running.http, other.url), "one more thing"),
            ):
                await running.emu.reset_stats()
                answers = await asyncio.gather(*(api.send(user, text) for user in users))
                if not all(answer.ok for answer in answers):
                    raise ScenarioFailed(f"{name}: a /send failed")
                await running.wait_outbox_empty()
                stats = await running.emu.stats()
                counted[name] = {
                    "total": round(stats["total_calls"] / count, 2),
                    "by_operation": {
                        k: round(v / count, 2) for k, v in sorted(stats["calls"].items())
                    },
                }
        finally:
            await _stop([other])
    return {"users": count, **counted}


async def _spread_waiters(database: str, count: int) -> dict[str, Any]:
    users = [f"spread-{i:05d}" for i in range(count)]
    out: dict[str, Any] = {"n": count, "wait_seconds": WAIT_SECONDS}
    async with stack(
        "scaleout-waiters", http_limit=OPEN_CONCURRENCY, DATABASE_URL=database,
        REPLY_WAIT_SECONDS="2",
    ) as running:  # fmt: skip
        log(f"scaleout: opening {count} conversations through B")
        started = time.perf_counter()
        sids = await running.open_conversations(users, concurrency=OPEN_CONCURRENCY)
        out["open_s"] = round(time.perf_counter() - started, 1)
        await running.restart_bridge(REPLY_WAIT_SECONDS=str(WAIT_SECONDS))
        (a,) = await _more_bridges(running, 1)
        try:
            b = running.bridge
            await running.bridge_idle()
            await running.fresh_http()
            out.update(await _wait_everywhere(running, {"a": a, "b": b}, sids, users))
        finally:
            await _stop([a])
    return out


async def _wait_everywhere(
    running: Stack, bridges: dict[str, procs.Service], sids: dict[str, str], users: list[str]
) -> dict[str, Any]:
    """Half the users wait on each process; the agent replies to all; who got what."""
    names = list(bridges)
    side = {user: names[n % len(names)] for n, user in enumerate(users)}
    waiting_http = session(limit=0, keepalive=60)
    agent_http = session(limit=0, keepalive=3)
    apis = {name: BridgeClient(waiting_http, bridge.url) for name, bridge in bridges.items()}
    agent = EmulatorClient(agent_http, running.emulator.url)
    waiters: dict[str, asyncio.Task[Answer]] = {}
    out: dict[str, Any] = {}
    try:
        first_started = time.perf_counter()
        for i, user in enumerate(users):
            waiters[user] = asyncio.create_task(apis[side[user]].replies(user, WAIT_SECONDS))
            if i % 100 == 99:
                await asyncio.sleep(0.05)  # each process's listen backlog is 100
        connected = 0
        while time.perf_counter() - first_started < WAIT_SECONDS:
            connected = sum(procs.connections_from_self(b.port) for b in bridges.values())
            if connected >= len(users) or any(task.done() for task in waiters.values()):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        early = sum(task.done() for task in waiters.values())
        out["all_waiting"] = early == 0 and connected >= len(users)
        out["all_waiting_after_s"] = round(time.perf_counter() - first_started, 2)
        out["rss_all_waiting_mb"] = {n: round(b.rss_mb(), 1) for n, b in bridges.items()}
        log(f"scaleout: {connected} calls waiting on {len(bridges)} processes")
        if not out["all_waiting"]:
            raise ScenarioFailed(f"{early} calls answered before any reply, {connected} up")

        ready = time.perf_counter()
        cpu = {n: b.cpu_seconds() for n, b in bridges.items()}
        created: dict[str, float] = {}
        posted: dict[str, str] = {}
        limit = asyncio.Semaphore(POST_CONCURRENCY)

        async def reply(user: str) -> None:
            async with limit:
                message = await agent.post_message(sids[user], f"reply to {user}")
                created[user] = time.perf_counter()
                posted[user] = message["sid"]

        await asyncio.gather(*(reply(user) for user in users))
        out["post_s"] = round(time.perf_counter() - ready, 2)
        log(f"scaleout: {len(posted)} replies posted in {out['post_s']} s")
        answers = await asyncio.gather(*waiters.values(), return_exceptions=True)
        out["all_answered_s"] = round(time.perf_counter() - ready, 2)
        out["cpu_s_reply_phase"] = {
            n: round(b.cpu_seconds() - cpu[n], 1) for n, b in bridges.items()
        }
        out["peak_rss_mb"] = {n: round(b.peak_rss_mb(), 1) for n, b in bridges.items()}
        latencies: dict[str, list[float]] = {name: [] for name in names}
        missed: dict[str, str] = {}
        errors: list[str] = []
        for user, answer in zip(users, answers, strict=True):
            if isinstance(answer, BaseException):
                errors.append(f"{user}: {answer!r}")
            elif [r["id"] for r in answer.replies] == [posted[user]]:
                latencies[side[user]].append(answer.finished - created[user])
                continue
            elif answer.http_status == 200 and not answer.replies:
                missed[user] = posted[user]  # its wait ended first: due on the next call
            else:
                errors.append(f"{user}: HTTP {answer.http_status} {answer.body}")
        # Everyone asks once more: only a reply whose wait ended before it came may show.
        again = await asyncio.gather(*(apis[side[u]].replies(u, 0) for u in users))
        leftovers = 0
        late_once = 0
        for user, answer in zip(users, again, strict=True):
            ids = [r["id"] for r in answer.replies]
            if user in missed and ids == [missed[user]]:
                late_once += 1
            else:
                leftovers += len(ids)
        out["delivered_in_wait"] = {name: len(found) for name, found in latencies.items()}
        out["delivered_by_next_call"] = late_once
        out["lost"] = len(missed) - late_once
        out["shown_twice_or_extra"] = leftovers
        out["errors"] = len(errors)
        out["error_examples"] = errors[:3]
        out["wake_latency_ms"] = {
            "waiting_on_a_webhook_to_b": summary_ms(latencies["a"]),
            "waiting_on_b_with_the_webhook": summary_ms(latencies["b"]),
        }
    finally:
        await cancel_and_close(waiters.values(), waiting_http, agent_http)
    return out


async def run(quick: bool) -> dict[str, Any]:
    clients = 10 if quick else 50
    duration = 5.0 if quick else 20.0
    cluster = Cluster()
    server = await asyncio.to_thread(cluster.start)
    try:
        throughput = [
            await _throughput(new_database(server), processes, clients, duration)
            for processes in (1, 2, 4)
        ]
        one = throughput[0]["requests_per_s"]
        calls = await _calls(new_database(server), 3 if quick else 10)
        waiters = await _spread_waiters(new_database(server), 500 if quick else 10_000)
    finally:
        await asyncio.to_thread(cluster.stop)
    ok = (
        all(t["errors"] == 0 and t["posted_once_each"] for t in throughput)
        and waiters["lost"] == 0
        and waiters["shown_twice_or_extra"] == 0
        and waiters["errors"] == 0
    )
    return {
        "rate_limit_per_minute": int(RATE_LIMIT),
        "reply_wait_seconds": 0.05,
        "throughput": throughput,
        "scaling_vs_one_process": {
            str(t["processes"]): round(t["requests_per_s"] / one, 2) for t in throughput
        },
        "calls": calls,
        "spread_waiters": waiters,
        "errors": sum(t["errors"] for t in throughput) + waiters["errors"],
        "target": {
            "nothing_lost_or_twice": ok,
            "calls_per_first_message_max": 4,
            "calls_per_follow_up": 1,
            "met": ok
            and calls["first_message_via_b"]["total"] <= 4
            and calls["follow_up_via_a"]["total"] == 1,
        },
    }
