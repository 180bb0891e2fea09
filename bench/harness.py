"""A running emulator and bridge pair, and the steps every scenario shares: opening
conversations through the bridge, restarting it, waiting for its start-up reconcile."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import procs
from bench.clients import BridgeClient, EmulatorClient, retrying, session, unique_name_of

#: In a /send answer's note when the message was stored but not yet posted to Twilio.
QUEUED_NOTE = "will be delivered"


_T0 = time.perf_counter()


def log(message: str) -> None:
    """A progress line, with the time since the run started."""
    print(f"   [{time.perf_counter() - _T0:7.1f} s] {message}", flush=True)


class ScenarioFailed(RuntimeError):
    """A scenario could not produce its numbers (the reason is in the message)."""


@dataclass
class Stack:
    workdir: Path
    emulator: procs.Service
    bridge: procs.Service
    _http: aiohttp.ClientSession | None
    settings: dict[str, str]
    queued_at_open: int = 0
    http_limit: int = 200

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "the stack is not started"
        return self._http

    @http.setter
    def http(self, value: aiohttp.ClientSession) -> None:
        self._http = value

    @property
    def api(self) -> BridgeClient:
        return BridgeClient(self.http, self.bridge.url)

    @property
    def emu(self) -> EmulatorClient:
        return EmulatorClient(self.http, self.emulator.url)

    async def fresh_http(self) -> None:
        """Close the driver's client session (and its idle connections); open a new one."""
        if self._http is not None:
            await self._http.close()
        self._http = session(self.http_limit)

    async def restart_bridge(self, **settings: str) -> None:
        """Stop the bridge and start it again on the same port and database (so the
        conversations' webhook URL still reaches it), with ``settings`` changed."""
        await asyncio.to_thread(self.bridge.stop)
        self.settings.update(settings)
        self.bridge = procs.bridge(
            self.workdir, self.emulator.url, self.settings, port=self.bridge.port
        )
        await asyncio.to_thread(self.bridge.start)

    async def open_conversations(
        self, users: Iterable[str], concurrency: int, context: str | None = None
    ) -> dict[str, str]:
        """A first /send for each user (bounded concurrency); returns user -> conversation SID.

        Run this with a short REPLY_WAIT_SECONDS: every /send waits that long for a reply.
        """
        users = list(users)
        limit = asyncio.Semaphore(concurrency)
        failures: list[str] = []
        self.queued_at_open = 0

        async def first(user: str) -> None:
            async with limit:
                answer = await self.api.send(user, f"hello from {user}", context)
                if not answer.ok:
                    failures.append(f"{user}: HTTP {answer.http_status} {answer.body}")
                elif QUEUED_NOTE in str(answer.body.get("note")):
                    self.queued_at_open += 1

        await asyncio.gather(*(first(user) for user in users))
        if failures:
            raise ScenarioFailed(f"{len(failures)} first messages failed, e.g. {failures[0]}")
        await self.wait_outbox_empty()
        return await self.conversation_sids(users)

    async def conversation_sids(self, users: Iterable[str]) -> dict[str, str]:
        listed = await retrying(self.emu.conversations)
        by_name = {c["unique_name"]: c["sid"] for c in listed}
        sids: dict[str, str] = {}
        for user in users:
            sid = by_name.get(unique_name_of(user))
            if sid is None:
                raise ScenarioFailed(f"no conversation in the emulator for {user}")
            sids[user] = sid
        return sids

    def store_counts(self) -> dict[str, int]:
        """Read-only look at the bridge's database (its SQLite file, or PostgreSQL): user
        messages still queued in its outbox, and conversations by state."""
        pending_sql = "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
        states_sql = "SELECT state, COUNT(*) FROM conversations GROUP BY state"
        url = self.settings.get("DATABASE_URL", "")
        if url.startswith("postgresql://"):
            import psycopg

            with psycopg.connect(url) as conn:
                pending = conn.execute(pending_sql).fetchone()
                states = dict(conn.execute(states_sql).fetchall())
        else:
            uri = f"file:{self.workdir / 'bridge.db'}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
                pending = db.execute(pending_sql).fetchone()
                states = dict(db.execute(states_sql))
        assert pending is not None
        return {"outbox_pending": int(pending[0]), **{k: int(v) for k, v in states.items()}}

    async def wait_outbox_empty(self, limit_seconds: float = 120.0) -> float:
        """Wait until every stored user message has been posted; return how long it took."""
        started = time.perf_counter()
        while time.perf_counter() - started < limit_seconds:
            if self.store_counts()["outbox_pending"] == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.1)
        raise ScenarioFailed(f"user messages still queued after {limit_seconds} s")

    async def wait_reconciled(self, conversations: int, limit_seconds: float = 300.0) -> float:
        """After a restart (stats reset before it), wait until the bridge's start-up
        reconcile has read every open conversation; return how long that took."""
        started = time.perf_counter()
        deadline = started + limit_seconds
        while time.perf_counter() < deadline:
            calls = (await self.emu.stats())["calls"]
            if calls.get("list_messages", 0) >= conversations:
                return time.perf_counter() - started
            await asyncio.sleep(0.1)
        raise ScenarioFailed(
            f"the start-up reconcile of {conversations} took over {limit_seconds} s"
        )

    async def bridge_idle(self, quiet_cpu: float = 0.03, window: float = 0.5) -> float:
        """Wait until the bridge uses under ``quiet_cpu`` CPU-seconds in ``window`` seconds."""
        started = time.perf_counter()
        before = self.bridge.cpu_seconds()
        while True:
            await asyncio.sleep(window)
            now = self.bridge.cpu_seconds()
            if now - before < quiet_cpu:
                return time.perf_counter() - started
            before = now


@contextlib.asynccontextmanager
async def stack(
    name: str, *, http_limit: int = 200, keep: bool = False, **settings: str
) -> AsyncIterator[Stack]:
    """A fresh emulator, a bridge with ``settings`` on a new temp database, and a client."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    emulator = procs.emulator(workdir)
    running = Stack(
        workdir, emulator, procs.bridge(workdir, emulator.url, settings), None, dict(settings)
    )
    try:
        await asyncio.to_thread(emulator.start)
        await asyncio.to_thread(running.bridge.start)
        running.http_limit = http_limit
        running.http = session(http_limit)
        yield running
    except BaseException:
        print(f"--- {name}: bridge log tail ---\n{running.bridge.log_tail()}", flush=True)
        print(f"--- {name}: emulator log tail ---\n{emulator.log_tail(1500)}", flush=True)
        raise
    finally:
        if running._http is not None:
            await running._http.close()
        await asyncio.to_thread(running.bridge.stop)
        await asyncio.to_thread(emulator.stop)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
