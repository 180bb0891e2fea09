"""Hostile input against a live bridge, over real HTTP.

Two kinds: requests generated from openapi.yaml (valid and invalid) for every documented
operation, each answer checked against the contract; and arbitrary form bodies at
POST /twilio/events, signed correctly or not, checked against the SQLite file itself.
"""

from __future__ import annotations

import sqlite3
import string
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from bridge.config import load_settings
from tests.conftest import Agent, LiveServer, sandbox_env, twilio_client

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "bridge" / "assets" / "openapi.yaml"

#: Enough examples per operation and per property to find what hides in the obvious
#: corners, few enough that the module runs in seconds; fixed so that CI runs repeat.
EXAMPLES = 50
HYPOTHESIS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)


def start_server(directory: Path) -> LiveServer:
    """A sandbox bridge whose waits end almost at once, and whose rate limit never hits."""
    env = sandbox_env(
        directory,
        REPLY_WAIT_SECONDS="0.05",
        RATE_LIMIT_PER_MINUTE="10000",
        RECONCILE_INTERVAL_SECONDS="86400",
    )
    return LiveServer(load_settings(env)).start()


# --- the documented API, generated from its contract -----------------------------------------

schema = schemathesis.openapi.from_path(
    OPENAPI_PATH,
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",  # valid and invalid requests
                "max-examples": EXAMPLES,
                "deterministic": True,
                "database": "none",
            }
        }
    ),
)

CONTRACT_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("api"))
    yield server
    server.stop()


def test_served_contract_is_openapi_yaml(api_server: LiveServer) -> None:
    """What the operations are generated from is what the bridge serves, but for servers."""
    expected: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text("utf-8"))
    expected["servers"] = [{"url": api_server.settings.public_url}]
    served = httpx.get(f"{api_server.url}/openapi.yaml")
    assert served.status_code == 200
    assert yaml.safe_load(served.text) == expected
    assert httpx.get(f"{api_server.url}/openapi.json").json() == expected


@schema.parametrize()
@HYPOTHESIS
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case[Any], api_server: LiveServer
) -> None:
    case.call_and_validate(base_url=api_server.url, checks=CONTRACT_CHECKS)


BODY_TYPES = st.sampled_from(
    [None, "application/json", "application/json; charset=latin-1", "text/plain"]
)


@pytest.mark.parametrize("path", ["/send/{username}", "/end/{username}", "/choose/{username}"])
@given(body=st.binary(max_size=200), content_type=BODY_TYPES)
@HYPOTHESIS
def test_raw_bodies_keep_the_contract(
    api_server: LiveServer, path: str, body: bytes, content_type: str | None
) -> None:
    """Bytes that are not JSON, or not even UTF-8, where the operations read JSON or nothing."""
    case = schema[path]["POST"].Case(path_parameters={"username": "raw.body"})
    headers = {} if content_type is None else {"Content-Type": content_type}
    # Each on a connection of its own: a body the route does not read may cost the
    # connection, which is not what this checks.
    response = httpx.post(api_server.url + case.formatted_path, content=body, headers=headers)
    try:
        case.validate_response(response, checks=CONTRACT_CHECKS)
    except FailureGroup as failure:
        failure.add_note(f"Sent: POST {case.formatted_path}, {headers}, body {body!r}")
        raise


# --- POST /twilio/events, arbitrary forms ----------------------------------------------------

FIELD_NAMES = (
    "EventType",
    "ConversationSid",
    "MessageSid",
    "Index",
    "Author",
    "Body",
    "DateCreated",
    "Source",
    "StateFrom",
    "StateTo",
    "ParticipantSid",
    "Identity",
    "AccountSid",
    "ChatServiceSid",
    "Attributes",
    "RetryCount",
)
EVENT_TYPES = (
    "onMessageAdded",
    "onConversationStateUpdated",
    "onParticipantAdded",
    "onConversationRemoved",
    "onMessageUpdated",
    "onMessageRemoved",
)
#: Indexes int() reads but SQLite's 64-bit integers do not hold, and near misses.
ODD_INDEXES = (
    str(2**63 - 1),
    str(2**63),
    str(-(2**63) - 1),
    "9" * 400,
    " 1 ",
    "1_0",
    "+1",
    "\uff11",  # FULLWIDTH DIGIT ONE
    "1e3",
    "NaN",
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
#: What an HTTP header value can carry (h11 refuses control characters and edge spaces).
HEADER_TEXT = st.text(string.ascii_letters + string.digits + "+/=-_.", min_size=1, max_size=60)
ELSEWHERE = "https://elsewhere.example/twilio/events"

Pairs = list[tuple[str, str]]


def sid(prefix: str) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: prefix + h)


def field_value(name: str, conversation: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    if name == "ConversationSid":
        return conversation
    special: dict[str, st.SearchStrategy[str]] = {
        "EventType": st.sampled_from(EVENT_TYPES),
        "MessageSid": sid("IM"),
        "Index": st.integers(-(2**70), 2**70).map(str) | st.sampled_from(ODD_INDEXES),
        "Author": st.sampled_from(("agent.alex", "system")),
        "StateFrom": st.sampled_from(("active", "inactive", "closed")),
        "StateTo": st.sampled_from(("active", "inactive", "closed")),
    }
    return special[name] | TEXT if name in special else TEXT


@st.composite
def event_forms(
    draw: st.DrawFn,
    conversation: st.SearchStrategy[str],
    always: Sequence[str] = (),
    event_type: str | None = None,
) -> Pairs:
    """A form as Twilio might send it, with any field missing, repeated, odd or added."""
    pairs: Pairs = []
    for name in FIELD_NAMES:
        if name in always or draw(st.booleans()):
            pairs.append((name, draw(field_value(name, conversation))))
    if event_type is not None:
        pairs = [(name, value) for name, value in pairs if name != "EventType"]
        pairs.append(("EventType", event_type))
    pairs += draw(st.lists(st.tuples(TEXT, TEXT), max_size=4))
    repeat: bool = draw(st.booleans())
    if pairs and repeat:
        pairs.append((draw(st.sampled_from([name for name, _ in pairs])), draw(TEXT)))
    return list(draw(st.permutations(pairs)))


query_strings = st.lists(st.tuples(TEXT, TEXT), max_size=2).map(urlencode)


def signature(token: str, url: str, pairs: Pairs) -> str:
    """X-Twilio-Signature for a form of ``pairs`` (repeated names too) posted to ``url``."""
    return str(RequestValidator(token).compute_signature(url, MultiDict(pairs)))


def post_form(
    http: httpx.Client, pairs: Pairs, query: str, signed_with: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed_with is not None:
        headers["X-Twilio-Signature"] = signed_with
    path = f"/twilio/events?{query}" if query else "/twilio/events"
    return http.post(path, content=urlencode(pairs).encode(), headers=headers)


def assert_refused(response: httpx.Response, sent: object) -> None:
    assert response.status_code == 403, (sent, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "invalid_signature"


Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def snapshot(database: Path) -> Snapshot:
    """Every row of conversations and agent_messages, read from the file, read-only."""
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
        conversations = db.execute("SELECT * FROM conversations ORDER BY id").fetchall()
        messages = db.execute("SELECT * FROM agent_messages ORDER BY message_sid").fetchall()
    db.close()
    return conversations, messages


@dataclass(frozen=True)
class Scene:
    """A bridge with one conversation it opened, answered by an agent, and at rest."""

    server: LiveServer
    http: httpx.Client
    token: str
    ours: str  # the conversation the bridge opened
    foreign: str  # a conversation in the same Twilio account the bridge did not open
    before: Snapshot

    @property
    def signed_url(self) -> str:
        return self.server.settings.webhook_url


def settled(database: Path, within: float = 15.0) -> Snapshot:
    """The store once an agent reply is in and nothing has changed for a while."""
    deadline = time.monotonic() + within
    last, steady_since = snapshot(database), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = snapshot(database)
        if now != last:
            last, steady_since = now, time.monotonic()
        elif last[1] and time.monotonic() - steady_since >= 0.5:
            return last
    raise TimeoutError(f"the store did not settle: {last}")


def set_scene(server: LiveServer) -> Scene:
    http = httpx.Client(base_url=server.url, timeout=30)
    agent = Agent(twilio_client(server))
    sent = http.post("/send/hostile.owner", json={"msg": "I need a human", "context": "test"})
    assert sent.status_code == 200, sent.text
    ours = agent.only_conversation()
    agent.join(ours)
    agent.reply(ours, "Hello, a human here.")
    foreign = str(agent.conversations.create(friendly_name="opened elsewhere").sid)
    before = settled(server.settings.database_path)
    with sqlite3.connect(f"{server.settings.database_path.as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("SELECT sid FROM conversations").fetchall() == [(ours,)]
    db.close()
    return Scene(server, http, server.settings.twilio_auth_token, ours, foreign, before)


def running_scene(directory: Path) -> Iterator[Scene]:
    server = start_server(directory)
    try:
        scene = set_scene(server)
        yield scene
        scene.http.close()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield from running_scene(tmp_path_factory.mktemp("events"))


@pytest.fixture(scope="module")
def own_scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    yield from running_scene(tmp_path_factory.mktemp("own-events"))


@given(data=st.data(), query=query_strings)
@HYPOTHESIS
def test_signed_events_about_other_conversations_are_taken_and_ignored(
    scene: Scene, data: st.DataObject, query: str
) -> None:
    pairs = data.draw(
        event_forms(st.sampled_from([scene.foreign]) | sid("CH") | TEXT, always=["ConversationSid"])
    )
    assume(scene.ours not in [value for name, value in pairs if name == "ConversationSid"])
    url = f"{scene.signed_url}?{query}" if query else scene.signed_url
    response = post_form(scene.http, pairs, query, signature(scene.token, url, pairs))
    assert 200 <= response.status_code < 300, (query, pairs, response.status_code, response.text)
    assert snapshot(scene.server.settings.database_path) == scene.before, (query, pairs)


def forgery(how: str, data: st.DataObject, scene: Scene, url: str, pairs: Pairs) -> str | None:
    """An X-Twilio-Signature that is missing, or wrong in one way."""
    if how == "none":
        return None
    if how == "garbage":
        return data.draw(HEADER_TEXT)
    if how == "token":
        return signature(data.draw(TEXT.filter(lambda t: t != scene.token)), url, pairs)
    if how == "url":
        return signature(scene.token, ELSEWHERE, pairs)
    if how == "body":
        return signature(scene.token, url, [*pairs, ("Body", data.draw(TEXT))])
    assert how == "query"
    return signature(scene.token, f"{scene.signed_url}?forged=1", pairs)


@given(data=st.data(), query=query_strings)
@HYPOTHESIS
def test_unsigned_or_forged_events_are_refused(
    scene: Scene, data: st.DataObject, query: str
) -> None:
    """Whatever they say, and about whichever conversation, even the bridge's own."""
    pairs = data.draw(event_forms(st.sampled_from([scene.ours, scene.foreign]) | sid("CH") | TEXT))
    url = f"{scene.signed_url}?{query}" if query else scene.signed_url
    how = data.draw(st.sampled_from(["none", "garbage", "token", "url", "body", "query"]))
    forged = forgery(how, data, scene, url, pairs)
    assume(forged != signature(scene.token, url, pairs))
    response = post_form(scene.http, pairs, query, forged)
    assert_refused(response, (how, forged, query, pairs))
    assert snapshot(scene.server.settings.database_path) == scene.before, (how, query, pairs)


@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            None,
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "application/json",
            "text/plain",
            "multipart/form-data; boundary=hostile",
        ]
    ),
    forged=st.none() | HEADER_TEXT,
)
@HYPOTHESIS
def test_unsigned_raw_bodies_are_refused(
    scene: Scene, body: bytes, content_type: str | None, forged: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    if forged is not None:
        headers["X-Twilio-Signature"] = forged
    # Each on a connection of its own: a body the route does not read may cost the
    # connection, which is not what this checks.
    response = httpx.post(f"{scene.server.url}/twilio/events", content=body, headers=headers)
    assert_refused(response, (headers, body))
    assert snapshot(scene.server.settings.database_path) == scene.before, (headers, body)


OWN_EVENT_FIELDS = (
    "EventType",
    "ConversationSid",
    "MessageSid",
    "Index",
    "Author",
    "Body",
    "StateTo",
)


@pytest.mark.parametrize("event_type", ["onMessageAdded", "onConversationStateUpdated", None])
@given(data=st.data())
@HYPOTHESIS
def test_signed_events_about_its_own_conversation_never_fail(
    own_scene: Scene, event_type: str | None, data: st.DataObject
) -> None:
    """Signed means sent by Twilio: whatever the fields say, the answer is a 2xx."""
    pairs = data.draw(
        event_forms(st.just(own_scene.ours), always=OWN_EVENT_FIELDS, event_type=event_type)
    )
    response = post_form(
        own_scene.http, pairs, "", signature(own_scene.token, own_scene.signed_url, pairs)
    )
    assert 200 <= response.status_code < 300, (pairs, response.status_code, response.text)
