"""What operators rely on: /healthz, /readyz, /metrics, request ids, CORS and headers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import SANDBOX_AUTH_TOKEN, load_settings
from bridge.server import hypercorn_config
from tests.conftest import (
    Agent,
    LiveServer,
    ServerFactory,
    free_port,
    real_mode,
    wait_for_conversation,
)
from tests.signing import twilio_signature

METRICS_TOKEN = "metrics-token-0123456789-abcdef"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus exposition, keyed by name and sorted labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"store": "ok", "twilio": "ok", "wakeups": "ok"},
    }
    assert ready.headers["Cache-Control"] == "no-store"


def test_not_ready_while_twilio_cannot_be_reached(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """Real mode against an address nothing listens on: alive, but not ready."""
    nowhere = f"http://127.0.0.1:{free_port()}/twilio"
    bridge = make_server(**real_mode(nowhere, tmp_path, TWILIO_TIMEOUT_SECONDS="2"))
    assert httpx.get(f"{bridge.url}/healthz").status_code == 200
    ready = httpx.get(f"{bridge.url}/readyz", timeout=10)
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["store"] == "ok"
    assert "unreachable" in body["checks"]["twilio"]
    # A load balancer asks about the process itself: it still takes and queues messages.
    own = httpx.get(f"{bridge.url}/readyz", params={"checks": "store,wakeups"}, timeout=10)
    assert own.status_code == 200
    assert own.json() == {"status": "ready", "checks": {"store": "ok", "wakeups": "ok"}}


@pytest.mark.parametrize("asked", ["bogus", "", "store,twilio,nope", "store;wakeups", "x" * 5000])
async def test_readiness_refuses_checks_it_does_not_know(
    client: httpx.AsyncClient, asked: str
) -> None:
    refused = await client.get("/readyz", params={"checks": asked})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_checks"


async def test_readiness_checks_each_named_check_once(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz", params={"checks": "wakeups, store,wakeups"})
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"wakeups": "ok", "store": "ok"}


def test_twilio_refusing_the_credentials_is_not_ready(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    sandbox = make_server()
    bridge = make_server(
        **real_mode(f"{sandbox.url}/sandbox/twilio", tmp_path, TWILIO_AUTH_TOKEN="wrong-token")
    )
    ready = httpx.get(f"{bridge.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert "refused" in ready.json()["checks"]["twilio"]


async def test_metrics_follow_a_hand_off(
    server: LiveServer, client: httpx.AsyncClient, agent: Agent
) -> None:
    before = samples((await client.get("/metrics")).text)
    assert value(before, "flexbridge_handoffs_started_total") == 0

    waiting = asyncio.create_task(client.post("/send/alice", json={"msg": "I need a human"}))
    sid = await wait_for_conversation(agent)
    await asyncio.sleep(0.2)
    await asyncio.to_thread(agent.reply, sid, "Hello, Alex here.")
    answer = (await waiting).json()
    assert answer["status"] == "answered"

    forged = await client.post(
        "/twilio/events", data={"EventType": "onMessageAdded"}, headers={"X-Twilio-Signature": "x"}
    )
    assert forged.status_code == 403

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    assert value(found, "flexbridge_handoffs_started_total") == 1
    assert value(found, "flexbridge_user_messages_received_total") == 1
    assert value(found, "flexbridge_user_messages_posted_total") == 1
    assert value(found, "flexbridge_agent_messages_received_total", source="webhook") == 1
    assert value(found, "flexbridge_replies_delivered_total") == 1
    assert value(found, "flexbridge_reply_wait_seconds_count", outcome="answered") == 1
    assert value(found, "flexbridge_webhook_signature_failures_total") == 1
    assert value(found, "flexbridge_webhooks_received_total", event="onMessageAdded") >= 1
    assert (
        value(found, "flexbridge_twilio_calls_total", operation="post_message", outcome="ok") == 1
    )
    assert (
        value(found, "flexbridge_twilio_calls_total", operation="create_conversation", outcome="ok")
        == 1
    )
    assert value(found, "flexbridge_open_conversations") == 1
    assert value(found, "flexbridge_outbox_depth") == 0
    assert value(found, "flexbridge_waiting_requests") == 0


async def test_a_waiting_request_shows_in_the_gauge(
    server: LiveServer, client: httpx.AsyncClient, agent: Agent
) -> None:
    first = asyncio.create_task(client.post("/send/bob", json={"msg": "hello"}))
    await wait_for_conversation(agent)
    await first
    waiting = asyncio.create_task(client.get("/replies/bob", params={"wait": 1}))
    await asyncio.sleep(0.3)
    found = samples((await client.get("/metrics")).text)
    assert value(found, "flexbridge_waiting_requests") == 1
    assert (await waiting).json()["status"] == "waiting"


def test_metrics_token(make_server: ServerFactory) -> None:
    server = make_server(METRICS_TOKEN=METRICS_TOKEN)
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unauthorized")
    right = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200 and "flexbridge_handoffs_started_total" in right.text
    # Non-ASCII bytes in the token (compare_digest refuses such str): a 401, not a 500.
    hostile = httpx.get(
        f"{server.url}/metrics", headers={b"Authorization": "Bearer métriques-ü".encode()}
    )
    assert (hostile.status_code, hostile.json()["error"]["code"]) == (401, "unauthorized")


async def test_request_ids(client: httpx.AsyncClient) -> None:
    fresh = await client.get("/healthz")
    assert len(fresh.headers["X-Request-Id"]) == 16
    kept = await client.get("/healthz", headers={"X-Request-Id": "lb-1234.abc"})
    assert kept.headers["X-Request-Id"] == "lb-1234.abc"
    odd = await client.get("/healthz", headers={"X-Request-Id": "no spaces <or> markup"})
    assert odd.headers["X-Request-Id"] != "no spaces <or> markup"


async def test_no_cors_by_default(client: httpx.AsyncClient) -> None:
    origin = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    preflight = await client.options("/send/alice", headers=origin)
    assert "Access-Control-Allow-Origin" not in preflight.headers
    plain = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers


def test_cors_for_configured_origins_only(make_server: ServerFactory) -> None:
    server = make_server(CORS_ORIGINS="https://app.example.com")
    preflight = httpx.options(
        f"{server.url}/send/alice",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Origin" in preflight.headers["Vary"]
    other = httpx.options(
        f"{server.url}/send/alice",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_security_headers(client: httpx.AsyncClient, server: LiveServer) -> None:
    api = await client.get("/healthz")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    page = await client.get("/sandbox/")
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_oauth_pages_carry_security_headers(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth")
    page = httpx.get(f"{server.url}/oauth/authorize", params={"client_id": "unknown"})
    assert page.status_code == 400 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_signed_webhook_for_an_unknown_conversation_is_counted_not_stored(
    server: LiveServer,
) -> None:
    url = f"{server.settings.public_url}/twilio/events"
    form = {"EventType": "onMessageAdded", "ConversationSid": "CH" + "9" * 32, "Index": "0"}
    response = httpx.post(
        url,
        data=form,
        headers={"X-Twilio-Signature": twilio_signature(SANDBOX_AUTH_TOKEN, url, form)},
    )
    assert response.status_code == 204
    found = samples(httpx.get(f"{server.url}/metrics").text)
    assert value(found, "flexbridge_webhooks_received_total", event="not_ours") == 1


def test_hypercorn_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {"KEEP_ALIVE_SECONDS": "30", "REPLY_WAIT_SECONDS": "20", "DATABASE_URL": "sqlite:///x.db"}
    )
    config = hypercorn_config(settings)
    assert config.keep_alive_timeout == 30
    assert config.graceful_timeout == 25  # the longest wait, plus 5 s
    assert config.backlog >= 1024
    assert config.h11_max_incomplete_size == 16 * 1024
