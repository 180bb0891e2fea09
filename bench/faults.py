"""Scenario e: the whole hand-off loop with the emulator injecting faults.

Each user sends a first message; the agent finds the conversation, waits for the user's
message, and replies, retrying safely (on a failed create it looks for its message by
body before posting again); the user collects replies with /replies?wait until one
arrives or a deadline passes. At the end, with faults off, the emulator's conversations
are counted: one per user, holding exactly one user message and one agent reply, and
every user must have received that reply exactly once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.clients import EmulatorClient, EmulatorError, identity_of, retrying, unique_name_of
from bench.harness import QUEUED_NOTE, Stack, log, stack
from bench.stats import summary_ms

RECONCILE_INTERVAL = 2
REPLY_WAIT = 10
#: How long a hand-off may take under faults; what is unfinished then gets
#: RECOVERY_SECONDS more once the faults are cleared.
DEADLINE_SECONDS = 30.0
RECOVERY_SECONDS = 90.0

VARIANTS: dict[str, dict[str, float]] = {
    "429+500+drop": {"rate_429": 0.1, "rate_500": 0.1, "drop_webhooks": 0.1},
    "429+500+drop+dup": {
        "rate_429": 0.1,
        "rate_500": 0.1,
        "drop_webhooks": 0.1,
        "duplicate_webhooks": 0.1,
    },
}


class Agent:
    """Replies once per conversation through a flaky API."""

    def __init__(self, emu: EmulatorClient) -> None:
        self.emu = emu
        self.create_failures = 0
        self.found_after_failure = 0

    async def conversation_of(self, user: str, deadline: float) -> str:
        """The SID, once the bridge has opened the conversation (it may be queued)."""
        while True:
            try:
                found = await retrying(lambda: self.emu.conversation(unique_name_of(user)))
                return str(found["sid"])
            except EmulatorError as error:
                if error.status != 404 or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)

    async def await_user_message(self, sid: str, user: str, deadline: float) -> None:
        identity = identity_of(user)
        while time.monotonic() < deadline:
            messages = await retrying(lambda: self.emu.messages(sid))
            if any(m["author"] == identity for m in messages):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no message from {user} in {sid}")

    async def reply(self, sid: str, body: str) -> str:
        messages = await retrying(lambda: self.emu.messages(sid))
        mine = [m for m in messages if m["body"] == body]
        if mine:  # posted by an earlier try that was cut short
            return str(mine[0]["sid"])
        for _ in range(30):
            try:
                return str((await self.emu.post_message(sid, body))["sid"])
            except EmulatorError as error:
                if not error.retryable:
                    raise
                self.create_failures += 1
            await asyncio.sleep(0.05)
            messages = await retrying(lambda: self.emu.messages(sid))
            mine = [m for m in messages if m["body"] == body]
            if mine:
                self.found_after_failure += 1
                return str(mine[0]["sid"])
        raise RuntimeError(f"could not post {body!r}")


async def variant(name: str, faults: dict[str, float], users_n: int) -> dict[str, Any]:
    users = [f"fault-{i:04d}" for i in range(users_n)]
    async with stack(
        "faults",
        WEBHOOKS="on",
        REPLY_WAIT_SECONDS=str(REPLY_WAIT),
        RECONCILE_INTERVAL_SECONDS=str(RECONCILE_INTERVAL),
    ) as running:
        await running.emu.set_faults(**faults)
        agent = Agent(running.emu)
        outcomes = {user: _outcome() for user in users}
        log(f"faults: {name}: {users_n} hand-offs under faults")
        started = time.perf_counter()
        await _run_handoffs(running, agent, outcomes, first=True, within=DEADLINE_SECONDS)
        under_faults_s = time.perf_counter() - started
        stats = await running.emu.stats()
        await running.emu.clear_faults()
        # What did not finish under faults finishes now: queued messages go out at their
        # next retry, the agent replies, the user collects.
        cleared = time.perf_counter()
        unfinished = {u: o for u, o in outcomes.items() if not o["received"]}
        drained_after = await running.wait_outbox_empty(limit_seconds=RECOVERY_SECONDS)
        log(
            f"faults: {name}: {len(unfinished)} unfinished; outbox empty {drained_after:.1f} s "
            "after faults were cleared"
        )
        await _run_handoffs(running, agent, unfinished, first=False, within=RECOVERY_SECONDS)
        recovery_s = time.perf_counter() - cleared
        # Room for anything late (a duplicate webhook, a reconcile) to show up twice.
        await asyncio.sleep(2 * RECONCILE_INTERVAL + 1)
        late = await asyncio.gather(*(running.api.replies(u, 0) for u in users))
        census = await _census(running, users)

    received = {u: o["received"] for u, o in outcomes.items()}
    posted = {u: o["posted"] for u, o in outcomes.items()}
    lost = [u for u in users if posted[u] and posted[u] not in received[u]]
    duplicated_replies = sum(
        max(0, received[u].count(posted[u]) - 1) for u in users if posted[u]
    ) + sum(len(answer.replies) for answer in late)
    foreign = sum(1 for u in users for r in received[u] if r != posted[u])
    in_time = [o for u, o in outcomes.items() if u not in unfinished and o["latency"] is not None]
    latencies = [o["latency"] for o in in_time]
    slow = [s for s in latencies if s > 0.5]
    near_wait = [s for s in latencies if s >= REPLY_WAIT - 1.5]
    return {
        "variant": name,
        "faults": faults,
        "users": users_n,
        "under_faults_s": round(under_faults_s, 1),
        "completed_under_faults": len(users) - len(unfinished),
        "completed_after_faults_cleared": sum(1 for o in unfinished.values() if o["received"]),
        "outbox_empty_after_clear_s": None if drained_after is None else round(drained_after, 1),
        "recovery_s": round(recovery_s, 1),
        "never_completed": sum(1 for o in outcomes.values() if not o["received"]),
        "error_examples": [o["error"] for o in outcomes.values() if o["error"]][:3],
        "send_non_200": sum(o["send_status"] != 200 for o in outcomes.values()),
        "send_answered_queued": sum(o["queued"] for o in outcomes.values()),
        "lost_replies": len(lost),
        "duplicated_replies": duplicated_replies,
        "replies_to_wrong_user": foreign,
        **census,
        "reply_latency_ms": summary_ms(latencies),
        "slower_than_500ms": {"count": len(slow), **summary_ms(slow)},
        "answered_only_at_end_of_wait": len(near_wait),
        "agent_create_failures": agent.create_failures,
        "agent_found_own_after_failure": agent.found_after_failure,
        "emulator_webhooks_under_faults": stats["webhooks"],
        "emulator_rest_calls_under_faults": stats["total_calls"],
        "ok": not lost
        and not any(not o["received"] for o in outcomes.values())
        and duplicated_replies == 0
        and foreign == 0
        and census["duplicated_user_messages"] == 0
        and census["missing_user_messages"] == 0
        and census["extra_conversations"] == 0,
    }


def _outcome() -> dict[str, Any]:
    return {
        "posted": None,
        "created": None,
        "received": [],
        "latency": None,
        "error": None,
        "send_status": None,
        "queued": False,
    }


async def _run_handoffs(
    running: Stack,
    agent: Agent,
    outcomes: dict[str, dict[str, Any]],
    *,
    first: bool,
    within: float,
) -> None:
    """Each user's hand-off, 50 at a time: the first message (when ``first``), the agent's
    reply (unless posted already), and the user's collecting, until ``within`` seconds."""
    limit = asyncio.Semaphore(50)

    async def agent_side(user: str, outcome: dict[str, Any], deadline: float) -> None:
        sid = await agent.conversation_of(user, deadline)
        await agent.await_user_message(sid, user, deadline)
        outcome["posted"] = await agent.reply(sid, f"reply to {user}")
        outcome["created"] = time.perf_counter()

    async def one(user: str, outcome: dict[str, Any]) -> None:
        async with limit:
            deadline = time.monotonic() + within
            outcome["error"] = None
            got: list[str] = outcome["received"]
            sending = (
                asyncio.create_task(running.api.send(user, f"question from {user}"))
                if first
                else None
            )
            replying = (
                asyncio.create_task(agent_side(user, outcome, deadline))
                if outcome["posted"] is None
                else None
            )
            got_at: float | None = None
            if sending is not None:
                answer = await sending
                outcome["send_status"] = answer.http_status
                outcome["queued"] = QUEUED_NOTE in str(answer.body.get("note"))
                got += [r["id"] for r in answer.replies]
                got_at = answer.finished if got else None
            if replying is not None:
                try:
                    await replying
                except Exception as error:
                    outcome["error"] = f"agent: {error!r}"
                    return
            while not got and time.monotonic() < deadline:
                collected = await running.api.replies(user, REPLY_WAIT)
                got += [r["id"] for r in collected.replies]
                got_at = collected.finished if got else None
            if got and got_at is not None and outcome["created"] is not None:
                outcome["latency"] = got_at - outcome["created"]
            if not got:
                outcome["error"] = f"{user}: no reply within {within} s"

    await asyncio.gather(*(one(user, outcome) for user, outcome in outcomes.items()))


async def _census(running: Stack, users: list[str]) -> dict[str, int]:
    """Conversations and messages per user, read from the emulator with faults off."""
    listed = await retrying(running.emu.conversations)
    by_name: dict[str, list[str]] = {}
    for conv in listed:
        by_name.setdefault(str(conv["unique_name"]).rsplit("-", 1)[0], []).append(conv["sid"])
    extra = duplicated = missing = agent_messages = 0
    for user in users:
        sids = by_name.get(unique_name_of(user).rsplit("-", 1)[0], [])
        extra += max(0, len(sids) - 1)
        mine = 0
        for sid in sids:
            for message in await running.emu.messages(sid):
                if message["author"] == identity_of(user):
                    mine += 1
                else:
                    agent_messages += 1
        duplicated += max(0, mine - 1)
        missing += 1 if mine == 0 else 0
    return {
        "conversations": len(listed),
        "extra_conversations": extra,
        "duplicated_user_messages": duplicated,
        "missing_user_messages": missing,
        "agent_messages_in_emulator": agent_messages,
    }


async def run(quick: bool) -> dict[str, Any]:
    users_n = 30 if quick else 200
    results = [await variant(name, faults, users_n) for name, faults in VARIANTS.items()]
    return {
        "reconcile_interval_s": RECONCILE_INTERVAL,
        "reply_wait_s": REPLY_WAIT,
        "deadline_under_faults_s": DEADLINE_SECONDS,
        "recovery_limit_s": RECOVERY_SECONDS,
        "variants": results,
        "target": {
            "lost": 0,
            "duplicated_replies": 0,
            "duplicated_user_messages": 0,
            "met": all(r["ok"] for r in results),
        },
    }
