"""Several bridge processes on one PostgreSQL database and one standalone emulator, as
deployed behind a load balancer: a webhook landing on one process wakes the request
waiting on another, at once (no reconcile, no polling), also when its listening
connection was just killed; PostgreSQL restarting under a
running bridge loses nothing, and the service resumes by itself; two processes draining
one outbox post each message once; a process killed while replies arrive loses none."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.postgres import Cluster, new_database, require_postgres
from tests.processes import (
    Process,
    bridge_process,
    running,
    sandbox_client,
    sandbox_process,
    set_faults,
)


def _bridge(tmp: Path, name: str, sandbox: Process, database: str, wait: str) -> Process:
    folder = tmp / name
    folder.mkdir()
    # Reconciles far apart: only the wake-up can end the wait in time.
    return bridge_process(
        folder,
        sandbox,
        DATABASE_URL=database,
        REPLY_WAIT_SECONDS=wait,
        RECONCILE_INTERVAL_SECONDS="3600",
    )


@contextlib.contextmanager
def _two_bridges(
    tmp: Path, database: str, waits: tuple[str, str]
) -> Iterator[tuple[Process, Process, Process]]:
    """The emulator and two bridge processes on ``database``, started: (emulator, one,
    two), with REPLY_WAIT_SECONDS ``waits``; all killed on exit."""
    sandbox = sandbox_process(tmp).start()
    one = _bridge(tmp, "one", sandbox, database, wait=waits[0])
    two = _bridge(tmp, "two", sandbox, database, wait=waits[1])
    with running(sandbox, one, two):
        one.start()
        two.start()
        yield sandbox, one, two


def _wait_on(bridge: Process, answer: dict[str, Any]) -> None:
    response = httpx.get(f"{bridge.url}/replies/sam", params={"wait": "20"}, timeout=40)
    answer.update(response.json())


def _reply_while_waiting(
    waiting_on: Process,
    conversation: Any,
    body: str,
    just_before: Callable[[], None] = lambda: None,
) -> None:
    """sam's call waits on ``waiting_on``; the agent replies (``just_before`` runs right
    before): the call must answer with exactly that reply within 2 s."""
    answer: dict[str, Any] = {}
    waiter = threading.Thread(target=_wait_on, args=(waiting_on, answer))
    waiter.start()
    time.sleep(0.5)  # the call is waiting
    just_before()
    replied = time.monotonic()
    conversation.messages.create(author="agent.alex", body=body, x_twilio_webhook_enabled="true")
    waiter.join(30)
    took = time.monotonic() - replied
    assert [r["body"] for r in answer["replies"]] == [body]
    assert took < 2.0, f"the wait ended {took:.2f} s after the reply"


def test_a_webhook_on_one_process_wakes_a_waiter_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    with _two_bridges(tmp_path, postgres_url, ("20", "1")) as (sandbox, one, two):
        conversations = sandbox_client(sandbox.url).conversations.v1.conversations
        # Opened through process two: the conversation's webhooks go to two.
        sent = httpx.post(f"{two.url}/send/sam", json={"msg": "help"}, timeout=30).json()
        assert sent["status"] == "waiting"
        sid = conversations.list()[0].sid
        assert httpx.get(f"{one.url}/readyz", timeout=10).json()["checks"]["wakeups"] == "ok"

        for round_ in range(3):
            _reply_while_waiting(one, conversations(sid), f"reply {round_}")
        # Each reply was handed out once, whichever process is asked.
        assert httpx.get(f"{two.url}/replies/sam", timeout=10).json()["replies"] == []


def test_a_killed_listener_delays_nothing_and_comes_back(tmp_path: Path, postgres_url: str) -> None:
    with _two_bridges(tmp_path, postgres_url, ("20", "1")) as (sandbox, one, two):
        conversations = sandbox_client(sandbox.url).conversations.v1.conversations
        httpx.post(f"{two.url}/send/sam", json={"msg": "help"}, timeout=30)
        sid = conversations.list()[0].sid
        assert one.popen is not None
        pid = one.popen.pid

        def kill_ones_listener() -> None:
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN%%' AND application_name LIKE %s",
                    (f"flex-bridge/{pid}/%",),
                ).fetchall()
            assert killed == [(True,)]

        # Process one stops hearing the doorbell just as the reply comes (to two): heard
        # anyway, or missed and caught up on by the reconnect; either way, at once.
        for round_ in range(3):
            _reply_while_waiting(one, conversations(sid), f"reply {round_}", kill_ones_listener)
        for bridge in (one, two):
            for _ in range(50):  # the listener is back by itself
                checks = httpx.get(f"{bridge.url}/readyz", timeout=10).json()["checks"]
                if checks["wakeups"] == "ok":
                    break
                time.sleep(0.1)
            assert checks["wakeups"] == "ok"


def test_a_postgres_restart_loses_nothing_and_service_resumes(tmp_path: Path) -> None:
    require_postgres()
    if os.environ.get("TEST_POSTGRES_URL"):
        pytest.skip("restarts a server of its own; TEST_POSTGRES_URL names one it may not")
    cluster = Cluster()
    database = new_database(cluster.start())
    sandbox = sandbox_process(tmp_path).start()
    bridge = _bridge(tmp_path, "one", sandbox, database, wait="10")
    try:
        with running(sandbox, bridge):
            bridge.start()
            conversations = sandbox_client(sandbox.url).conversations.v1.conversations
            answer: dict[str, Any] = {}
            waiter = threading.Thread(target=_send_on, args=(bridge, answer))
            waiter.start()
            for _ in range(100):
                if conversations.list():
                    break
                time.sleep(0.05)
            sid = conversations.list()[0].sid
            cluster.restart()  # while the /send waits
            conversations(sid).messages.create(
                author="agent.alex", body="after the restart", x_twilio_webhook_enabled="true"
            )
            waiter.join(30)
            got = [r["body"] for r in answer.get("replies", [])]
            if not got:  # the webhook may have met the restart: the next call has it
                again = httpx.get(f"{bridge.url}/replies/sam", params={"wait": "10"}, timeout=30)
                got = [r["body"] for r in again.json()["replies"]]
            assert got == ["after the restart"]
            for _ in range(100):  # the listener is back by itself
                ready = httpx.get(f"{bridge.url}/readyz", timeout=10)
                if ready.status_code == 200:
                    break
                time.sleep(0.1)
            assert ready.json()["checks"]["wakeups"] == "ok"
    finally:
        cluster.stop()


def _send_from(bridge_and_user: tuple[Process, str]) -> dict[str, Any]:
    bridge, user = bridge_and_user
    response = httpx.post(f"{bridge.url}/send/{user}", json={"msg": f"from {user}"}, timeout=30)
    answer: dict[str, Any] = response.json()
    return answer


def _send_on(bridge: Process, answer: dict[str, Any]) -> None:
    response = httpx.post(f"{bridge.url}/send/sam", json={"msg": "help"}, timeout=40)
    answer.update(response.json())


def test_two_processes_draining_one_outbox_post_each_message_once(
    tmp_path: Path, postgres_url: str
) -> None:
    users = [f"user{n}" for n in range(12)]
    with _two_bridges(tmp_path, postgres_url, ("1", "1")) as (sandbox, one, two):
        set_faults(sandbox, rate_500=1.0)  # Twilio down: every message waits in the outbox
        with ThreadPoolExecutor(len(users)) as pool:  # all at once: a short outage
            answers = list(
                pool.map(_send_from, [(one if n % 2 else two, u) for n, u in enumerate(users)])
            )
        assert {a["status"] for a in answers} == {"waiting"}
        # Back, but losing a third of the answers to writes it did: both processes' outbox
        # workers retry, and the idempotency marks keep every post single.
        set_faults(sandbox, rate_500=0.0, rate_lost_response=0.3)
        with psycopg.connect(postgres_url) as conn:
            for _ in range(600):
                row = conn.execute("SELECT COUNT(*) FROM outbox WHERE state != 'sent'").fetchone()
                if row == (0,):
                    break
                time.sleep(0.1)
            assert row == (0,), "messages still unsent"
        set_faults(sandbox, rate_lost_response=0.0)
        twilio = sandbox_client(sandbox.url)
        bodies = [
            m.body
            for c in twilio.conversations.v1.conversations.list()
            for m in twilio.conversations.v1.conversations(c.sid).messages.list()
        ]
    assert sorted(bodies) == sorted(f"from {user}" for user in users)


def test_a_process_killed_while_replies_arrive_loses_none(
    tmp_path: Path, postgres_url: str
) -> None:
    with _two_bridges(tmp_path, postgres_url, ("20", "1")) as (sandbox, one, two):
        twilio = sandbox_client(sandbox.url)
        httpx.post(f"{two.url}/send/sam", json={"msg": "help"}, timeout=30)
        sid = twilio.conversations.v1.conversations.list()[0].sid
        shown: list[str] = []  # what the caller read, in order
        last = "none"

        def keep_reading_on_one() -> None:
            nonlocal last
            with contextlib.suppress(httpx.HTTPError):
                while True:
                    answer = httpx.get(
                        f"{one.url}/replies/sam", params={"wait": "20", "after": last}, timeout=40
                    ).json()
                    for reply in answer["replies"]:
                        shown.append(reply["body"])
                        last = reply["id"]

        reader = threading.Thread(target=keep_reading_on_one)
        reader.start()
        time.sleep(0.5)
        for n in range(10):
            twilio.conversations.v1.conversations(sid).messages.create(
                author="agent.alex", body=f"reply {n}", x_twilio_webhook_enabled="true"
            )
            if n == 4:
                one.kill()  # SIGKILL, mid-stream: the call it held dies with it
        reader.join(30)
        # The caller comes back, on the process still running, saying what it last saw.
        for _ in range(20):
            answer = httpx.get(
                f"{two.url}/replies/sam", params={"wait": "2", "after": last}, timeout=30
            ).json()
            for reply in answer["replies"]:
                shown.append(reply["body"])
                last = reply["id"]
            if len(shown) >= 10:
                break
    assert shown == [f"reply {n}" for n in range(10)]  # every one, once, in order


APPS_MIME = "text/html;profile=mcp-app"
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


def _rpc(bridge: Process, body: dict[str, Any], session: str | None = None) -> httpx.Response:
    headers = {**MCP_HEADERS, **({"Mcp-Session-Id": session} if session else {})}
    return httpx.post(f"{bridge.url}/mcp", json=body, headers=headers, timeout=60)


def _result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC result, whether answered as JSON or as Server-Sent Events."""
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        found: dict[str, Any] = json.loads(data[-1])
    else:
        found = response.json()
    result: dict[str, Any] = found["result"]
    return result


def _call(bridge: Process, session: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}  # fmt: skip
    structured: dict[str, Any] = _result(_rpc(bridge, body, session))["structuredContent"]
    return structured


def test_an_mcp_session_is_served_by_any_process(tmp_path: Path, postgres_url: str) -> None:
    with _two_bridges(tmp_path, postgres_url, ("2", "2")) as (sandbox, one, two):
        params: dict[str, Any] = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        }
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
        opened = _rpc(one, initialize)
        session = opened.headers["mcp-session-id"]
        assert _result(opened)["serverInfo"]["name"] == "flex-bridge"
        other = _rpc(one, initialize).headers["mcp-session-id"]
        assert other != session  # each initialize, a session of its own
        # The session's user, on whichever process: a message through two, the reply
        # fetched through one.
        sent = _call(two, session, "request_human_agent", {"message": "hello from MCP"})
        assert sent["status"] == "waiting"
        twilio = sandbox_client(sandbox.url)
        (conversation,) = twilio.conversations.v1.conversations.list()
        twilio.conversations.v1.conversations(conversation.sid).messages.create(
            author="agent.alex", body="hello back", x_twilio_webhook_enabled="true"
        )
        got = _call(one, session, "get_agent_replies", {"wait_seconds": 2})
        assert [r["body"] for r in got["replies"]] == ["hello back"]
        # Another session is another user: nothing for it.
        theirs = _call(two, other, "get_agent_replies", {"wait_seconds": 0})
        assert theirs["status"] == "closed" and theirs["replies"] == []
        assert "chat pane" not in got["note"]

        # A client that shows MCP Apps says so at initialize; stateless, the session it is
        # issued carries that, so every process tells its model the user sees the pane.
        apps = {"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": [APPS_MIME]}}}
        with_pane = {**initialize, "params": {**params, "capabilities": apps}}
        shown = _rpc(one, with_pane).headers["mcp-session-id"]
        assert shown.endswith(".ui") and not session.endswith(".ui")
        told = _call(two, shown, "request_human_agent", {"message": "hello with the pane"})
        assert "live in the chat pane" in told["note"]
