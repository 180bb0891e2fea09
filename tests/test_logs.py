"""Structured logs: one line per event, with context, and nothing secret or private."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from twilio.rest import Client

from bridge import logs
from bridge.auth.oidc import s256
from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from tests.processes import bridge_process, running, sandbox_bridge_process, sandbox_process
from tests.test_oauth import browser_flow

API_KEY = "log-test-api-key-0123456789"
SECRET_BODY = "my card number is 4111 1111 1111 1111"


def record(message: str, **fields: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "bridge.test", "levelname": "INFO", "msg": message})
    made.fields = fields
    return made


def test_key_value_lines() -> None:
    formatter = logs.StructuredFormatter(json_lines=False, bodies=False)
    token = logs.request_id.set("req-1")
    try:
        line = formatter.format(record("user_message.stored", outbox_id=7, note="two words"))
    finally:
        logs.request_id.reset(token)
    assert "\n" not in line
    assert "event=user_message.stored" in line
    assert "request_id=req-1" in line
    assert "outbox_id=7" in line
    assert 'note="two words"' in line


def test_json_lines_redact_secrets_and_bodies() -> None:
    formatter = logs.StructuredFormatter(json_lines=True, bodies=False)
    line = formatter.format(
        record(
            "x",
            body=SECRET_BODY,
            access_token="abc",
            client_secret="def",
            authorization="Bearer ghi",
            api_key="jkl",
        )
    )
    fields = json.loads(line)
    assert fields["body"] == f"[{len(SECRET_BODY)} chars]"
    for key in ("access_token", "client_secret", "authorization", "api_key"):
        assert fields[key] == "[redacted]"
    assert SECRET_BODY not in line and "ghi" not in line


def test_bodies_only_when_asked() -> None:
    formatter = logs.StructuredFormatter(json_lines=True, bodies=True)
    assert json.loads(formatter.format(record("x", body=SECRET_BODY)))["body"] == SECRET_BODY


def test_exceptions_stay_on_one_line() -> None:
    formatter = logs.StructuredFormatter(json_lines=True, bodies=False)
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    line = formatter.format(failed)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exc"]


def _hand_off(bridge_url: str, sandbox_url: str) -> None:
    """A user's message, an agent's reply, the user's next call: through the processes."""
    twilio = Client(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    twilio.conversations.base_url = f"{sandbox_url}/sandbox/twilio"

    def answer() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = twilio.conversations.v1.conversations.list()
            if found:
                time.sleep(0.3)
                found[0].messages.create(
                    author="agent.alex", body="Reading you.", x_twilio_webhook_enabled="true"
                )
                return
            time.sleep(0.05)

    helper = threading.Thread(target=answer)
    helper.start()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    sent = httpx.post(
        f"{bridge_url}/send/alice", json={"msg": SECRET_BODY}, headers=headers, timeout=30
    )
    helper.join()
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "answered"


@pytest.mark.parametrize("bodies", ["0", "1"])
def test_a_bridge_process_logs_json_with_context_and_no_secrets(
    tmp_path: Path, bodies: str
) -> None:
    sandbox = sandbox_process(tmp_path).start()
    bridge = bridge_process(
        tmp_path,
        sandbox,
        LOG_FORMAT="json",
        LOG_MESSAGE_BODIES=bodies,
        AUTH_MODE="apikey",
        API_KEYS=API_KEY,
        REPLY_WAIT_SECONDS="10",
    )
    with running(sandbox, bridge):
        bridge.start()
        _hand_off(bridge.url, sandbox.url)
        bridge.terminate()
    text = bridge.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, text
    assert not [line for line in text.splitlines() if line.startswith(("Traceback", "ERROR"))]
    assert API_KEY not in text and SANDBOX_AUTH_TOKEN not in text
    assert bridge.env["BRIDGE_SECRET"] not in text
    assert (SECRET_BODY in text) is (bodies == "1")

    sends = [
        line
        for line in lines
        if line["event"] == "http.request" and line.get("route") == "/send/<username>"
    ]
    assert len(sends) == 1
    send = sends[0]
    assert send["status"] == 200 and len(send["request_id"]) == 16
    assert len(send["identity"]) == 64 and send["conversation"].startswith("CH")
    assert "alice" not in json.dumps(send)
    # The request's other events carry the same request id.
    same = {line["event"] for line in lines if line.get("request_id") == send["request_id"]}
    assert {"user_message.stored", "conversation.opened", "replies.handed_out"} <= same
    webhooks = [line for line in lines if line.get("route") == "/twilio/events"]
    assert webhooks and all(line["status"] == 204 for line in webhooks)


def test_debug_logs_keep_bodies_emails_verifiers_and_secrets_out(tmp_path: Path) -> None:
    """LOG_LEVEL=DEBUG: the libraries' debug lines (aiosqlite's statement parameters, the
    MCP SDK's messages) would carry all of these; the redaction promise holds anyway."""
    email = "debug.person@example.com"
    verifier = secrets.token_urlsafe(48)
    bridge = sandbox_bridge_process(tmp_path, AUTH_MODE="oauth", LOG_LEVEL="DEBUG")
    with running(bridge):
        bridge.start()
        callback = "http://localhost:9/callback"
        client = httpx.post(
            f"{bridge.url}/oauth/register",
            json={"redirect_uris": [callback], "token_endpoint_auth_method": "none"},
        ).json()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client["client_id"],
                "redirect_uri": callback,
                "state": "s1",
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            }
        )
        final = browser_flow(f"{bridge.url}/oauth/authorize?{query}", "Debug Person", email)
        code = parse_qs(urlsplit(final).query)["code"][0]
        token = httpx.post(
            f"{bridge.url}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback,
                "client_id": client["client_id"],
                "code_verifier": verifier,
            },
        ).json()["access_token"]
        sent = httpx.post(
            f"{bridge.url}/send/me",
            json={"msg": SECRET_BODY},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert sent.status_code == 200, sent.text
        bridge.terminate()
    with sqlite3.connect(tmp_path / "sandbox-bridge.db") as db:
        (secret,) = db.execute("SELECT value FROM settings WHERE key = 'bridge_secret'").fetchone()
    text = bridge.log.read_text()
    assert "event=user_message.stored" in text  # the log was written
    for private in (SECRET_BODY, email, verifier, secret, token, code):
        assert private not in text, private
