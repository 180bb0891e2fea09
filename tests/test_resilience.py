"""Faults upstream and in the bridge itself lose no user message and no agent reply."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client
from tests.processes import Process, bridge_process, running, sandbox_client, sandbox_process


def faults(server: LiveServer | Process, **values: float) -> None:
    response = httpx.put(
        f"{server.url}/sandbox/control/faults",
        json=values,
        auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN),
    )
    assert response.status_code == 200, response.text


def with_retries(action, attempts: int = 30):  # type: ignore[no-untyped-def]
    """An agent's call through a flaky API: retry what failed before it took effect."""
    for _ in range(attempts - 1):
        try:
            return action()
        except TwilioException:
            time.sleep(0.05)
    return action()


class FlakyAgent:
    """An agent whose replies are posted exactly once even when Twilio answers 500 after
    taking them: it checks for its own message before trying again."""

    def __init__(self, client: Client) -> None:
        self.conversations = client.conversations.v1.conversations

    def reply(self, sid: str, body: str) -> None:
        for _ in range(30):
            try:
                self.conversations(sid).messages.create(
                    author="agent.kai", body=body, x_twilio_webhook_enabled="true"
                )
                return
            except TwilioException:
                time.sleep(0.05)
                bodies = with_retries(
                    lambda: [m.body for m in self.conversations(sid).messages.list()]
                )
                if body in bodies:
                    return
        raise AssertionError(f"could not post {body!r}")

    def conversation_of(self, identity_prefix: str) -> str:
        for conv in with_retries(lambda: self.conversations.list()):
            if conv.friendly_name == f"Assistant user {identity_prefix}":
                return str(conv.sid)
        raise LookupError(identity_prefix)


async def collect_replies(
    client: httpx.AsyncClient, user: str, expected: int, within: float = 40.0
) -> list[dict[str, str]]:
    got: list[dict[str, str]] = []
    deadline = time.monotonic() + within
    while len(got) < expected and time.monotonic() < deadline:
        response = await client.get(f"/replies/{user}", params={"wait": "1"})
        if response.status_code == 200:
            got += response.json()["replies"]
    return got


async def test_twilio_down_at_send_is_queued_then_delivered_once(
    make_server: ServerFactory,
) -> None:
    server = make_server(TWILIO_TIMEOUT_SECONDS="2")
    faults(server, rate_500=1.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        answer = (await client.post("/send/quinn", json={"msg": "are you there?"})).json()
        assert answer["status"] == "waiting"
        assert "saved" in answer["note"]
        faults(server, rate_500=0.0)
        agent = sandbox_client(server.url).conversations.v1.conversations
        deadline = time.monotonic() + 30
        bodies: list[str] = []
        while time.monotonic() < deadline:
            conversations = await asyncio.to_thread(agent.list)
            if conversations:
                bodies = [m.body for m in await asyncio.to_thread(conversations[0].messages.list)]
                if bodies:
                    break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # room for a duplicate to show up, were there one
        conversations = await asyncio.to_thread(agent.list)
        assert len(conversations) == 1
        bodies = [m.body for m in await asyncio.to_thread(conversations[0].messages.list)]
        assert bodies == ["are you there?"]


async def test_twilio_failing_at_end_is_503(server: LiveServer, client: httpx.AsyncClient) -> None:
    await client.post("/send/rita", json={"msg": "hi"})
    faults(server, rate_500=1.0)
    response = await client.post("/end/rita")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "twilio_unavailable"
    assert response.headers["Retry-After"] == "5"


async def test_fault_injected_loop_loses_and_duplicates_nothing(
    make_server: ServerFactory,
) -> None:
    server = make_server(RECONCILE_INTERVAL_SECONDS="1", TWILIO_TIMEOUT_SECONDS="2")
    faults(
        server,
        rate_429=0.1,
        rate_500=0.1,
        rate_lost_response=0.05,
        drop_webhooks=0.1,
        duplicate_webhooks=0.1,
    )
    agent = FlakyAgent(sandbox_client(server.url))
    users = [f"user{n}" for n in range(8)]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        for user in users:
            for _attempt in range(3):
                response = await client.post(f"/send/{user}", json={"msg": f"question from {user}"})
                if response.status_code == 200:
                    break
            assert response.status_code == 200, response.text
        # A message Twilio refused at /send time is in the outbox until a retry lands.
        deadline = time.monotonic() + 30
        while True:
            listed = await asyncio.to_thread(with_retries, agent.conversations.list)
            identities = {c.friendly_name: c.sid for c in listed}
            if len(identities) == len(users) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert len(identities) == len(users)
        for sid in identities.values():
            for n in range(2):
                await asyncio.to_thread(agent.reply, sid, f"answer {n} in {sid}")
        results = await asyncio.gather(*[collect_replies(client, user, 2) for user in users])

    faults(
        server, rate_429=0, rate_500=0, rate_lost_response=0, drop_webhooks=0, duplicate_webhooks=0
    )
    received = [r["body"] for replies in results for r in replies]
    assert Counter(received) == Counter(
        f"answer {n} in {sid}" for sid in identities.values() for n in range(2)
    ), "every reply handed out exactly once"
    for replies in results:
        assert len({r["body"].rsplit(" ", 1)[1] for r in replies}) == 1, "no crossed wires"
    listing = sandbox_client(server.url).conversations.v1.conversations
    for sid in identities.values():
        # A message Twilio refused at /send time sits in the outbox until a retry lands.
        deadline = time.monotonic() + 30
        while True:
            bodies = [m.body for m in listing(sid).messages.list() if m.author != "agent.kai"]
            if bodies or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert len(bodies) == 1 and bodies[0].startswith("question from"), bodies


def test_sigkill_while_replies_arrive_loses_nothing(tmp_path: Path) -> None:
    sandbox = sandbox_process(tmp_path).start()
    bridge = bridge_process(tmp_path, sandbox)
    with running(sandbox, bridge):
        bridge.start()
        answer = httpx.post(f"{bridge.url}/send/sam", json={"msg": "help"}, timeout=30).json()
        assert answer["status"] == "waiting"
        conversations = sandbox_client(sandbox.url).conversations.v1.conversations
        sid = conversations.list()[0].sid
        posted: list[str] = []

        def agent_replies() -> None:
            for n in range(30):
                message = conversations(sid).messages.create(
                    author="agent.kai", body=f"reply {n}", x_twilio_webhook_enabled="true"
                )
                posted.append(message.sid)
                time.sleep(0.03)

        typing = threading.Thread(target=agent_replies)
        typing.start()
        while len(posted) < 10:
            time.sleep(0.01)
        bridge.kill()  # mid-stream: webhooks for the next replies find nobody
        time.sleep(0.3)
        bridge.start()  # same database, same port
        typing.join()

        handed: list[str] = []
        deadline = time.monotonic() + 30
        while len(handed) < len(posted) and time.monotonic() < deadline:
            got = httpx.get(f"{bridge.url}/replies/sam", params={"wait": "1"}, timeout=30).json()
            handed += [r["id"] for r in got["replies"]]
        assert handed == posted, "every reply, once, in order"
        again = httpx.get(f"{bridge.url}/replies/sam", timeout=30).json()
        assert again["replies"] == []


def test_graceful_shutdown_answers_waiters(tmp_path: Path) -> None:
    sandbox = sandbox_process(tmp_path).start()
    bridge = bridge_process(tmp_path, sandbox, REPLY_WAIT_SECONDS="30")
    with running(sandbox, bridge):
        bridge.start()
        result: dict[str, object] = {}

        def wait_for_reply() -> None:
            response = httpx.post(f"{bridge.url}/send/tess", json={"msg": "hi"}, timeout=60)
            result["status"] = response.status_code
            result["body"] = response.json()

        waiter = threading.Thread(target=wait_for_reply)
        waiter.start()
        time.sleep(1.0)
        started = time.monotonic()
        assert bridge.terminate() == 0
        waiter.join(10)
        assert time.monotonic() - started < 10
        assert result["status"] == 200
        assert json.loads(json.dumps(result["body"]))["status"] == "waiting"


@pytest.mark.parametrize("bad", [{"rate_500": 2}, {"nonsense": 1}, {"latency_ms": "slow"}])
def test_fault_settings_are_validated(server: LiveServer, bad: dict[str, object]) -> None:
    response = httpx.put(
        f"{server.url}/sandbox/control/faults",
        json=bad,
        auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN),
    )
    assert response.status_code == 400
    assert response.json()["code"] == 20001


def test_control_needs_the_account_credentials(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/sandbox/control/stats").status_code == 401


async def test_reply_behind_a_lost_webhook_wakes_the_waiter(make_server: ServerFactory) -> None:
    """The user's own message webhook is lost, so the agent's reply arrives ahead of the
    sync mark: the reconcile that fills the gap must wake the waiting request at once."""
    server = make_server(REPLY_WAIT_SECONDS="15")
    agent = sandbox_client(server.url).conversations.v1.conversations
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        sending = asyncio.ensure_future(client.post("/send/vera", json={"msg": "first"}))
        for _ in range(200):
            listed = await asyncio.to_thread(agent.list)
            if listed:
                break
            await asyncio.sleep(0.05)
        sid = listed[0].sid
        await asyncio.to_thread(
            agent(sid).messages.create,
            author="agent.kai",
            body="hello",
            x_twilio_webhook_enabled="true",
        )
        assert (await sending).json()["status"] == "answered"
        faults(server, drop_webhooks=1.0)
        second = asyncio.ensure_future(client.post("/send/vera", json={"msg": "second"}))
        await asyncio.sleep(0.5)  # posted; its webhook went nowhere
        faults(server, drop_webhooks=0.0)
        started = time.monotonic()
        await asyncio.to_thread(
            agent(sid).messages.create,
            author="agent.kai",
            body="answer to second",
            x_twilio_webhook_enabled="true",
        )
        answer = (await second).json()
        assert [r["body"] for r in answer["replies"]] == ["answer to second"]
        assert time.monotonic() - started < 5, "woken by the reconcile, not by the timeout"


async def test_message_indexes_that_skip_numbers_lose_nothing(make_server: ServerFactory) -> None:
    """Twilio does not promise consecutive indexes: every skip looks like a missed webhook
    to the bridge, which reads the list and hands out every reply once, in order."""
    server = make_server(REPLY_WAIT_SECONDS="5")
    faults(server, skip_indexes=1.0)
    agent = Agent(twilio_client(server))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await http.post("/send/skip", json={"msg": "hello"})
        sid = agent.only_conversation()
        for n in range(5):
            await asyncio.to_thread(agent.reply, sid, f"reply {n}")
        got: list[str] = []
        for _ in range(20):
            answer = (await http.get("/replies/skip", params={"wait": "1"})).json()
            got += [reply["body"] for reply in answer["replies"]]
            if len(got) >= 5:
                break
    indexes = [m.index for m in agent.conversations(sid).messages.list(order="asc")]
    assert all(b - a > 1 for a, b in itertools.pairwise(indexes)), indexes
    assert got == [f"reply {n}" for n in range(5)]


async def test_a_close_nobody_announced_ends_the_wait_within_the_reconcile_interval(
    make_server: ServerFactory,
) -> None:
    """The agent's side closes through the REST API without asking for webhooks, as Flex
    may: /replies must still answer closed, here within the 1 s reconcile interval."""
    server = make_server(REPLY_WAIT_SECONDS="4", RECONCILE_INTERVAL_SECONDS="1")
    agent = Agent(twilio_client(server))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await http.post("/send/quiet", json={"msg": "hello"})
        sid = agent.only_conversation()
        waiting = asyncio.ensure_future(http.get("/replies/quiet", params={"wait": "4"}))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(lambda: agent.conversations(sid).update(state="closed"))
        answer = (await waiting).json()
    # Without a state read the call would have waited its 4 s and answered "waiting".
    assert answer["status"] == "closed"
    assert answer["note"].startswith("The agent ended this conversation")
