"""Run the benchmark scenarios, write bench/results/latest.json and docs/latency.png, and
print a summary."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    calls,
    disconnects,
    faults,
    latency,
    processes,
    procs,
    queue,
    scaleout,
    throughput,
    waiters,
)
from bench.harness import ScenarioFailed
from bench.plot import latency_cdf

RESULTS = procs.ROOT / "bench" / "results" / "latest.json"
PLOT = procs.ROOT / "docs" / "latency.png"
#: Where a --quick run writes, so a smoke run never replaces the full run's files.
QUICK_RESULTS = procs.ROOT / "bench" / "results" / "quick.json"
QUICK_PLOT = procs.ROOT / "bench" / "results" / "latency-quick.png"

Scenario = Callable[[bool], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {
    "latency": latency.run,
    "waiters": waiters.run,
    "calls": calls.run,
    "throughput": throughput.run,
    "faults": faults.run,
    "disconnects": disconnects.run,
    "queue": queue.run,
    "processes": processes.run,
    "scaleout": scaleout.run,
}


def source_version(source: Path) -> dict[str, Any]:
    """The commit of the checkout that ran, and whether its bridge code differs from it."""
    try:
        commit = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(source), "rev-parse", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(source), "diff", "--quiet", "HEAD", "--", "bridge", "main.py"],  # noqa: S607
            capture_output=True,
            check=False,
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None}
    return {"commit": commit, "bridge_code_differs_from_commit": changed != 0}


def steal_percent(before: dict[str, int], after: dict[str, int]) -> float:
    """Share of the machine's CPU time the hypervisor took for others between two reads."""
    total = after["total"] - before["total"]
    return round(100 * (after["steal"] - before["steal"]) / total, 1) if total else 0.0


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        mem_kb = int(info.readline().split()[1])
    os_name = platform.platform()
    try:
        with open("/etc/os-release") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    os_name = f"{line.split('=', 1)[1].strip().strip(chr(34))}, {os_name}"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": os_name,
        "nofile_limit": procs.raise_nofile_limit(),
    }


async def run_all(names: list[str], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in names:
        print(f"== {name} ...", flush=True)
        started = time.perf_counter()
        ticks = procs.cpu_ticks()
        try:
            results[name] = await SCENARIOS[name](quick)
        except ScenarioFailed as failure:
            results[name] = {"failed": str(failure)}
        except Exception as error:  # one scenario's crash must not lose the others
            traceback.print_exc()
            results[name] = {"failed": f"{type(error).__name__}: {error}"}
        results[name]["scenario_s"] = round(time.perf_counter() - started, 1)
        results[name]["cpu_steal_pct"] = steal_percent(ticks, procs.cpu_ticks())
        print(f"   {name} done in {results[name]['scenario_s']} s", flush=True)
    return results


def summary(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []

    def ms(block: dict[str, Any]) -> str:
        if not block.get("n"):
            return "no samples"
        return (
            f"p50 {block['p50']:.1f} / p90 {block['p90']:.1f} / p99 {block['p99']:.1f} / "
            f"max {block['max']:.1f} ms (n={block['n']})"
        )

    def met(block: dict[str, Any]) -> str:
        return "MET" if block.get("target", {}).get("met") else "NOT MET"

    for name, block in results.items():
        if "failed" in block:
            lines.append(f"[{name}] FAILED: {block['failed']}")
            continue
        if name == "latency":
            lines.append(
                f"[latency] push: {ms(block['push']['latency_ms'])}, errors "
                f"{block['push']['errors']}"
            )
            lines.append(
                f"[latency] poll: {ms(block['poll']['latency_ms'])}, errors "
                f"{block['poll']['errors']}"
            )
            for quiet, summary in block["poll_paced"]["by_quiet_seconds"].items():
                lines.append(f"[latency] poll, reply after {quiet} s of quiet: {ms(summary)}")
            lines.append(f"[latency] target push p99 <= 50 ms: {met(block)}")
        elif name == "waiters":
            for attempt in block["attempts"]:
                head = (
                    f"[waiters] N={attempt['n']}: all waiting {attempt['all_waiting']} after "
                    f"{attempt['all_waiting_after_s']} s, bridge RSS "
                    f"{attempt['bridge_rss_all_waiting_mb']} MB"
                )
                if "failure" in attempt:
                    lines.append(f"{head}; FAILED: {attempt['failure']}")
                    continue
                lines.append(
                    f"{head}; errors {attempt['errors']}, delivered once "
                    f"{attempt['delivered_once']}, wake {ms(attempt['wake_latency_ms'])}"
                )
            late = block.get("late_replies")
            if late:
                lines.append(
                    f"[waiters] replies that missed their wait in failed attempts: "
                    f"{late['expected']}; handed out exactly once by the user's next call "
                    f"{late['next_call']}, after a restart {late['after_restart']}; missing or "
                    f"extra {late['missing_or_extra']}"
                )
            lines.append(
                f"[waiters] largest N that worked: {block['largest_ok_n']}; target "
                f"{block['target_n']} with peak RSS <= 512 MB "
                f"({block['target']['peak_rss_mb']} MB): {met(block)}"
            )
        elif name == "calls":
            lines.append(
                f"[calls] push: first message {block['push_first_message']['total']}, with "
                f"context {block['push_first_message_with_context']['total']}, follow-up "
                f"{block['push_follow_up']['total']}, per waiting minute "
                f"{block['push_waiting']['per_user_minute']['total']}; poll per waiting minute "
                f"{block['poll_waiting']['per_user_minute']['total']} (by minute: "
                f"{[w['per_user_minute'] for w in block['poll_waiting']['per_window']]}): "
                f"{met(block)}"
            )
        elif name == "throughput":
            for key in ("tiny_wait", "half_second"):
                t = block[key]
                lines.append(
                    f"[throughput] REPLY_WAIT_SECONDS={t['reply_wait_seconds']:g}, "
                    f"{t['clients']} clients, {t['duration_s']} s: {t['requests_per_s']} req/s, "
                    f"{ms(t['latency_ms'])}, errors {t['errors']}, answered 'queued' "
                    f"{t['answered_queued']}, posted during run {t['posted_during_run']}"
                )
        elif name == "faults":
            for v in block["variants"]:
                lines.append(
                    f"[faults] {v['variant']}: {v['completed_under_faults']}/{v['users']} done "
                    f"under faults, {v['completed_after_faults_cleared']} after clearing, "
                    f"never {v['never_completed']}; lost {v['lost_replies']}, duplicated "
                    f"replies {v['duplicated_replies']}, duplicated user messages "
                    f"{v['duplicated_user_messages']}; reply latency {ms(v['reply_latency_ms'])}"
                )
            lines.append(f"[faults] target 0 lost / 0 duplicated: {met(block)}")
        elif name == "disconnects":
            for mode in ("plain", "after"):
                d = block[mode]
                lines.append(
                    f"[disconnects] {mode}: {d['replies']} replies, callers hanging up around "
                    f"each: lost {d['lost']}, shown twice {d['shown_twice']}"
                )
            lines.append(f"[disconnects] target with after 0 lost / 0 twice: {met(block)}")
        elif name == "processes":
            lines.append(
                f"[processes] a reply stored by one process waking a call waiting on another "
                f"(PostgreSQL NOTIFY): {ms(block['across_processes']['latency_ms'])}; in one "
                f"process on PostgreSQL: {ms(block['one_process']['latency_ms'])}; errors "
                f"{block['errors']}; target p99 <= 50 ms across: {met(block)}"
            )
        elif name == "scaleout":
            for t in block["throughput"]:
                lines.append(
                    f"[scaleout] /send with {t['processes']} process(es) on PostgreSQL, "
                    f"{t['clients']} clients: {t['requests_per_s']} req/s, {ms(t['latency_ms'])}"
                    f", errors {t['errors']}, posted once each {t['posted_once_each']}, "
                    f"cores: bridges {t['cpu_cores_used']['bridges_total']}, machine "
                    f"{t['cpu_cores_used']['machine']}"
                )
            lines.append(f"[scaleout] ratio to one process: {block['scaling_vs_one_process']}")
            c = block["calls"]
            lines.append(
                f"[scaleout] REST calls per first message via B {c['first_message_via_b']['total']}"
                f", per follow-up via A {c['follow_up_via_a']['total']}"
            )
            w = block["spread_waiters"]
            lines.append(
                f"[scaleout] {w['n']} waiting calls over two processes: in their wait "
                f"{w['delivered_in_wait']}, by the next call {w['delivered_by_next_call']}, "
                f"lost {w['lost']}, twice {w['shown_twice_or_extra']}, errors {w['errors']}; "
                f"peak RSS {w['peak_rss_mb']} MB; target: {met(block)}"
            )
        elif name == "queue":
            for key in ("few", "few_again", "many", "many_again"):
                q = block[key]
                lines.append(
                    f"[queue] {q['users']} users waiting in one queue: "
                    f"{q['queue_calls_per_minute']} TaskRouter calls per minute "
                    f"({q['queue_calls']}), {q['answers']} answers, "
                    f"{q['answers_without_position']} without a position"
                )
            lines.append(f"[queue] ratio many/few {block['calls_ratio_many_to_few']}: {met(block)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small counts, a smoke run (writes bench/results/quick.json and latency-quick.png)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default all: {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"where to write the JSON (default {RESULTS.relative_to(procs.ROOT)})",
    )
    parser.add_argument(
        "--plot", type=Path, help=f"where to draw the plot (default {PLOT.relative_to(procs.ROOT)})"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=procs.ROOT,
        help="the checkout whose bridge and emulator run (default: this one)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    procs.SOURCE = args.source.resolve()
    args.out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    args.plot = args.plot or (QUICK_PLOT if args.quick else PLOT)

    started = time.perf_counter()
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "quick": args.quick,
        "source": str(procs.SOURCE),
        "source_version": source_version(procs.SOURCE),
        "machine": machine(),
    }
    ticks = procs.cpu_ticks()
    results = asyncio.run(run_all(names, args.quick))
    meta["duration_s"] = round(time.perf_counter() - started, 1)
    meta["cpu_steal_pct"] = steal_percent(ticks, procs.cpu_ticks())
    meta["source_version_at_end"] = source_version(procs.SOURCE)
    if meta["source_version_at_end"] != meta["source_version"]:
        print("WARNING: the bridge's code changed while the benchmarks ran", flush=True)

    lat = results.get("latency", {})
    if "push" in lat and "poll" in lat:
        latency_cdf(
            lat["push"]["samples_s"],
            lat["poll"]["samples_s"],
            args.plot,
            f"Reply latency, {lat['push']['handoffs']} hand-offs per mode, "
            f"{lat['push']['concurrency']} at a time ({meta['date'][:10]}, "
            f"{meta['machine']['nproc']} cores)",
        )
        meta["plot"] = str(args.plot)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")

    print()
    print(f"Flex Bridge benchmarks, {meta['date']}, {meta['machine']['nproc']} cores")
    for line in summary(results):
        print("  " + line)
    print(
        f"Total {meta['duration_s']} s (CPU time stolen by the host: {meta['cpu_steal_pct']}%). "
        f"Results: {args.out}"
    )
    return 1 if any("failed" in block for block in results.values()) else 0
