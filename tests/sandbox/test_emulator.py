"""The Conversations emulator, driven by the real ``twilio`` library, checked against the spec."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FLOW_SID
from bridge.sandbox.conversations.state import Account
from bridge.sandbox.shared.clock import now, parse_duration
from tests.conftest import LiveServer, ServerFactory, free_port, twilio_client
from tests.sandbox.spec import assert_matches

CONV = "/v1/Conversations/{Sid}"
CONVS = "/v1/Conversations"
PARTS = "/v1/Conversations/{ConversationSid}/Participants"
MSGS = "/v1/Conversations/{ConversationSid}/Messages"
HOOKS = "/v1/Conversations/{ConversationSid}/Webhooks"


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    """The embedded sandbox, allowed to deliver webhooks to this machine's test receivers
    and to the example URL these tests attach."""
    return make_server(SANDBOX_WEBHOOK_URLS="loopback,https://example.com/events")


@pytest.fixture
def twilio(server: LiveServer) -> Client:
    return twilio_client(server)


@pytest.fixture
def raw(server: LiveServer) -> Iterator[httpx.Client]:
    """Plain HTTP with the sandbox credentials, to see exactly what goes over the wire."""
    with httpx.Client(
        base_url=f"{server.url}/sandbox/twilio",
        auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN),
    ) as client:
        yield client


def rest_error(excinfo: pytest.ExceptionInfo[TwilioRestException]) -> tuple[int, int | None]:
    return int(excinfo.value.status), excinfo.value.code


# --- authentication and errors --------------------------------------------------------------


def test_wrong_credentials_are_refused_with_20003(server: LiveServer) -> None:
    intruder = Client(SANDBOX_ACCOUNT_SID, "not-the-token")
    intruder.conversations.base_url = f"{server.url}/sandbox/twilio"
    with pytest.raises(TwilioRestException) as excinfo:
        intruder.conversations.v1.conversations.create(friendly_name="x")
    assert rest_error(excinfo) == (401, 20003)

    body = httpx.get(f"{server.url}/sandbox/twilio/v1/Conversations").json()
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_unknown_conversation_is_20404(twilio: Client, raw: httpx.Client) -> None:
    with pytest.raises(TwilioRestException) as excinfo:
        twilio.conversations.v1.conversations("CH" + "f" * 32).fetch()
    assert rest_error(excinfo) == (404, 20404)
    response = raw.get("/v1/Nowhere")
    assert response.status_code == 404
    assert response.json()["code"] == 20404
    wrong_method = raw.put("/v1/Conversations")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == 20004


def test_list_of_a_missing_conversation_raises_the_plain_twilio_exception(twilio: Client) -> None:
    # List calls go through Page.process_response, which raises TwilioException, not
    # TwilioRestException: the bridge's client translates both.
    with pytest.raises(TwilioException):
        twilio.conversations.v1.conversations("CH" + "f" * 32).messages.list()


# --- conversations --------------------------------------------------------------------------


def test_conversation_create_fetch_update_and_list(twilio: Client, raw: httpx.Client) -> None:
    conversations = twilio.conversations.v1.conversations
    created = conversations.create(
        friendly_name="Support",
        unique_name="user-1",
        attributes='{"a": 1}',
        timers_inactive="PT5M",
        timers_closed="PT1H",
    )
    assert re.fullmatch(r"CH[0-9a-f]{32}", created.sid)
    assert created.state == "active"
    assert created.timers["date_inactive"] and created.timers["date_closed"]
    assert conversations("user-1").fetch().sid == created.sid

    updated = conversations(created.sid).update(friendly_name="Renamed", state="inactive")
    assert (updated.friendly_name, updated.state) == ("Renamed", "inactive")
    other = conversations.create(friendly_name="Other")
    assert [c.sid for c in conversations.list(state="inactive")] == [created.sid]
    assert {c.sid for c in conversations.list()} == {created.sid, other.sid}

    assert_matches(raw.get(f"/v1/Conversations/{created.sid}").json(), CONV, "get", 200)
    assert_matches(raw.get("/v1/Conversations").json(), CONVS, "get", 200)
    response = raw.post("/v1/Conversations", data={"FriendlyName": "raw"})
    assert response.status_code == 201
    assert_matches(response.json(), CONVS, "post", 201)


def test_unique_name_taken_is_50353(twilio: Client) -> None:
    twilio.conversations.v1.conversations.create(unique_name="taken")
    with pytest.raises(TwilioRestException) as excinfo:
        twilio.conversations.v1.conversations.create(unique_name="taken")
    assert rest_error(excinfo) == (409, 50353)


def test_bad_parameters_are_refused(twilio: Client) -> None:
    conversations = twilio.conversations.v1.conversations
    with pytest.raises(TwilioRestException) as excinfo:
        conversations.create(attributes="{not json")
    assert rest_error(excinfo)[0] == 400
    with pytest.raises(TwilioRestException) as excinfo:
        conversations.create(timers_inactive="PT30S")  # the minimum is one minute
    assert rest_error(excinfo)[0] == 400


def test_closed_is_final_and_refuses_messages_with_50377(twilio: Client) -> None:
    conversations = twilio.conversations.v1.conversations
    sid = conversations.create().sid
    conversations(sid).update(state="closed")
    with pytest.raises(TwilioRestException) as excinfo:
        conversations(sid).messages.create(author="someone", body="hello?")
    assert rest_error(excinfo) == (409, 50377)
    with pytest.raises(TwilioRestException) as excinfo:
        conversations(sid).update(state="active")
    assert rest_error(excinfo)[0] == 409


def test_a_message_wakes_an_inactive_conversation(twilio: Client) -> None:
    conversations = twilio.conversations.v1.conversations
    sid = conversations.create(state="inactive").sid
    conversations(sid).messages.create(author="user", body="hi")
    assert conversations(sid).fetch().state == "active"


def test_timers_move_conversations_to_inactive_then_closed() -> None:
    account = Account(SANDBOX_ACCOUNT_SID)
    conv = account.create_conversation(
        friendly_name=None,
        unique_name=None,
        attributes=None,
        state=None,
        timer_inactive=timedelta(minutes=1),
        timer_closed=timedelta(minutes=10),
    )
    start = conv.last_activity
    states = []
    for after in (timedelta(seconds=59), timedelta(minutes=1), timedelta(minutes=10)):
        account.run_timers(start + after)
        states.append(conv.state)
    assert states == ["active", "inactive", "closed"]
    assert now() >= start


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1M", timedelta(minutes=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT90S", timedelta(seconds=90)),
        ("P", None),
        ("PT", None),
        ("1M", None),
    ],
)
def test_iso_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


# --- participants and webhooks --------------------------------------------------------------


def test_participants_create_list_delete_and_duplicate_50433(
    twilio: Client, raw: httpx.Client
) -> None:
    conversation = twilio.conversations.v1.conversations(
        twilio.conversations.v1.conversations.create().sid
    )
    participant = conversation.participants.create(identity="hash-1", attributes='{"r": 1}')
    assert re.fullmatch(r"MB[0-9a-f]{32}", participant.sid)
    with pytest.raises(TwilioRestException) as excinfo:
        conversation.participants.create(identity="hash-1")
    assert rest_error(excinfo) == (409, 50433)
    assert [p.identity for p in conversation.participants.list()] == ["hash-1"]
    path = f"/v1/Conversations/{conversation._solution['sid']}/Participants"
    assert_matches(raw.get(path).json(), PARTS, "get", 200)
    conversation.participants(participant.sid).delete()
    assert conversation.participants.list() == []


def test_webhooks_create_list_delete(twilio: Client, raw: httpx.Client) -> None:
    sid = twilio.conversations.v1.conversations.create().sid
    webhooks = twilio.conversations.v1.conversations(sid).webhooks
    studio = webhooks.create(
        target="studio",
        configuration_flow_sid=SANDBOX_FLOW_SID,
        configuration_filters=["onMessageAdded"],
    )
    hook = webhooks.create(
        target="webhook",
        configuration_url="https://example.com/events",
        configuration_method="post",
        configuration_filters=["onMessageAdded", "onConversationStateUpdated"],
    )
    assert re.fullmatch(r"WH[0-9a-f]{32}", hook.sid)
    assert studio.configuration == {"flow_sid": SANDBOX_FLOW_SID, "filters": ["onMessageAdded"]}
    assert hook.configuration["filters"] == ["onMessageAdded", "onConversationStateUpdated"]
    assert {w.target for w in webhooks.list()} == {"studio", "webhook"}
    assert_matches(raw.get(f"/v1/Conversations/{sid}/Webhooks").json(), HOOKS, "get", 200)
    webhooks(hook.sid).delete()
    assert [w.sid for w in webhooks.list()] == [studio.sid]
    with pytest.raises(TwilioRestException) as excinfo:
        webhooks.create(target="carrier-pigeon")
    assert rest_error(excinfo)[0] == 400


# --- messages and paging --------------------------------------------------------------------


def test_messages_order_and_paging_with_absolute_urls(
    server: LiveServer, twilio: Client, raw: httpx.Client
) -> None:
    sid = twilio.conversations.v1.conversations.create().sid
    messages = twilio.conversations.v1.conversations(sid).messages
    created = [messages.create(author="u", body=f"m{n}", attributes="{}") for n in range(7)]
    assert [m.index for m in created] == list(range(7))
    assert all(re.fullmatch(r"IM[0-9a-f]{32}", m.sid) for m in created)

    # The library follows meta.next_page_url, which must be absolute and on this server.
    assert [m.body for m in messages.list(page_size=3)] == [f"m{n}" for n in range(7)]
    assert [m.body for m in messages.list(order="desc", page_size=2)] == [
        f"m{n}" for n in reversed(range(7))
    ]

    first = raw.get(f"/v1/Conversations/{sid}/Messages", params={"PageSize": 3}).json()
    assert_matches(first, MSGS, "get", 200)
    meta = first["meta"]
    assert meta["url"].startswith(f"{server.url}/sandbox/twilio/v1/Conversations/{sid}/Messages?")
    assert meta["previous_page_url"] is None
    second = raw.get(meta["next_page_url"]).json()
    assert [m["body"] for m in second["messages"]] == ["m3", "m4", "m5"]
    last = raw.get(second["meta"]["next_page_url"]).json()
    assert [m["body"] for m in last["messages"]] == ["m6"]
    assert last["meta"]["next_page_url"] is None

    response = raw.post(f"/v1/Conversations/{sid}/Messages", data={"Author": "u", "Body": "x"})
    assert response.status_code == 201
    assert_matches(response.json(), MSGS, "post", 201)


def test_message_author_defaults_to_system_and_links_participant(twilio: Client) -> None:
    conversation = twilio.conversations.v1.conversations(
        twilio.conversations.v1.conversations.create().sid
    )
    participant = conversation.participants.create(identity="agent.alex")
    system = conversation.messages.create(body="note")
    agent = conversation.messages.create(author="agent.alex", body="hi")
    assert (system.author, system.participant_sid) == ("system", None)
    assert agent.participant_sid == participant.sid


def test_message_body_over_1600_characters_is_refused(twilio: Client) -> None:
    sid = twilio.conversations.v1.conversations.create().sid
    with pytest.raises(TwilioRestException) as excinfo:
        twilio.conversations.v1.conversations(sid).messages.create(author="u", body="x" * 1601)
    assert rest_error(excinfo)[0] == 400


# --- webhooks fire as Twilio's do -------------------------------------------------------------


class Receiver:
    """A real HTTP endpoint that records the webhooks it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append((dict(request.headers), {k: str(v) for k, v in form.items()}))
        self.arrived.set()
        return web.Response(text="ok")

    async def next(self, within: float = 5.0) -> tuple[dict[str, str], dict[str, str]]:
        await asyncio.wait_for(self.arrived.wait(), within)
        self.arrived.clear()
        return self.requests[-1]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/events", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", found.port)
    await site.start()
    yield found
    await runner.cleanup()


async def test_webhooks_are_signed_form_posts_only_when_enabled(
    twilio: Client, receiver: Receiver
) -> None:
    conversations = twilio.conversations.v1.conversations

    def setup() -> str:
        sid = conversations.create().sid
        conversations(sid).webhooks.create(
            target="webhook",
            configuration_url=receiver.url,
            configuration_method="post",
            configuration_filters=[
                "onMessageAdded",
                "onConversationStateUpdated",
                "onParticipantAdded",
            ],
        )
        # Without X-Twilio-Webhook-Enabled a REST action fires nothing.
        conversations(sid).messages.create(author="quiet", body="no webhook for me")
        return str(sid)

    sid = await asyncio.to_thread(setup)
    await asyncio.sleep(0.3)
    assert receiver.requests == []
    hook_sid = (await asyncio.to_thread(lambda: conversations(sid).webhooks.list()))[0].sid

    message = await asyncio.to_thread(
        lambda: conversations(sid).messages.create(
            author="user-hash", body="hello & welcome", x_twilio_webhook_enabled="true"
        )
    )
    headers, form = await receiver.next()
    validator = RequestValidator(SANDBOX_AUTH_TOKEN)
    assert validator.validate(receiver.url, form, headers["X-Twilio-Signature"])
    assert not validator.validate(
        receiver.url, {**form, "Body": "tampered"}, headers["X-Twilio-Signature"]
    )
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    expected: dict[str, Any] = {
        "EventType": "onMessageAdded",
        "ConversationSid": sid,
        "MessageSid": message.sid,
        "Index": "1",
        "Author": "user-hash",
        "Body": "hello & welcome",
        "Source": "API",
        "AccountSid": SANDBOX_ACCOUNT_SID,
        "WebhookSid": hook_sid,  # a scoped webhook names itself
    }
    assert {k: form[k] for k in expected} == expected
    assert len(headers["I-Twilio-Idempotency-Token"]) >= 16

    await asyncio.to_thread(
        lambda: conversations(sid).participants.create(
            identity="agent.alex", x_twilio_webhook_enabled="true"
        )
    )
    _, form = await receiver.next()
    assert (form["EventType"], form["Identity"]) == ("onParticipantAdded", "agent.alex")

    await asyncio.to_thread(
        lambda: conversations(sid).update(state="closed", x_twilio_webhook_enabled="true")
    )
    _, form = await receiver.next()
    assert (form["EventType"], form["StateFrom"], form["StateTo"], form["Reason"]) == (
        "onConversationStateUpdated",
        "active",
        "closed",
        "API",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", form["StateUpdated"])


async def test_a_repeated_webhook_carries_the_same_idempotency_token(
    server: LiveServer, twilio: Client, receiver: Receiver
) -> None:
    conversations = twilio.conversations.v1.conversations
    sid = await asyncio.to_thread(lambda: conversations.create().sid)
    await asyncio.to_thread(
        lambda: conversations(sid).webhooks.create(
            target="webhook",
            configuration_url=receiver.url,
            configuration_filters=["onMessageAdded"],
        )
    )
    async with httpx.AsyncClient(auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)) as http:
        set_faults = await http.put(
            f"{server.url}/sandbox/control/faults", json={"duplicate_webhooks": 1.0}
        )
        set_faults.raise_for_status()
    await asyncio.to_thread(
        lambda: conversations(sid).messages.create(
            author="u", body="twice", x_twilio_webhook_enabled="true"
        )
    )
    for _ in range(50):
        if len(receiver.requests) >= 2:
            break
        await asyncio.sleep(0.05)
    tokens = [headers["I-Twilio-Idempotency-Token"] for headers, _ in receiver.requests]
    assert len(tokens) == 2 and tokens[0] == tokens[1]


async def test_webhook_filters_limit_what_fires(twilio: Client, receiver: Receiver) -> None:
    conversations = twilio.conversations.v1.conversations

    def setup() -> None:
        sid = conversations.create().sid
        conversations(sid).webhooks.create(
            target="webhook",
            configuration_url=receiver.url,
            configuration_filters=["onConversationStateUpdated"],
        )
        conversations(sid).messages.create(author="u", body="x", x_twilio_webhook_enabled="true")
        conversations(sid).update(state="closed", x_twilio_webhook_enabled="true")

    await asyncio.to_thread(setup)
    _, form = await receiver.next()
    await asyncio.sleep(0.2)
    assert [f["EventType"] for _, f in receiver.requests] == ["onConversationStateUpdated"]
    assert form["EventType"] == "onConversationStateUpdated"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/events",  # elsewhere
        "http://169.254.169.254/latest/meta-data",  # a cloud metadata service
        "http://127.0.0.1:1/x",  # this machine, not allowed when embedded by default
    ],
)
def test_webhook_urls_are_only_the_bridges_own_by_default(
    make_server: ServerFactory, url: str
) -> None:
    server = make_server()
    twilio = twilio_client(server)
    sid = twilio.conversations.v1.conversations.create().sid
    with pytest.raises(TwilioRestException) as refused:
        twilio.conversations.v1.conversations(sid).webhooks.create(
            target="webhook", configuration_url=url, configuration_filters=["onMessageAdded"]
        )
    assert refused.value.status == 400
    own = twilio.conversations.v1.conversations(sid).webhooks.create(
        target="webhook",
        configuration_url=server.settings.webhook_url,
        configuration_filters=["onMessageAdded"],
    )
    assert own.sid.startswith("WH")


def test_lists_refuse_a_page_size_over_twilios_maximum(twilio: Client, raw: httpx.Client) -> None:
    """Webhooks are listed at most 5 at a time, the rest at most 100 (the API description)."""
    sid = twilio.conversations.v1.conversations.create().sid
    assert raw.get(f"/v1/Conversations/{sid}/Webhooks", params={"PageSize": 5}).status_code == 200
    refused = raw.get(f"/v1/Conversations/{sid}/Webhooks", params={"PageSize": 50})
    assert refused.status_code == 400 and refused.json()["code"] == 20001
    assert raw.get("/v1/Conversations", params={"PageSize": 100}).status_code == 200
    assert raw.get("/v1/Conversations", params={"PageSize": 101}).status_code == 400
    # The twilio library pages through the rest: 5 webhooks, listed 2 at a time.
    webhooks = twilio.conversations.v1.conversations(sid).webhooks
    for n in range(5):
        webhooks.create(target="webhook", configuration_url=f"https://example.com/events/{n}")
    assert len(webhooks.list(page_size=2)) == 5


def test_a_closed_conversation_refuses_every_update(twilio: Client) -> None:
    conversations = twilio.conversations.v1.conversations
    sid = conversations.create().sid
    conversations(sid).update(state="closed")
    for change in ({"state": "closed"}, {"friendly_name": "again"}, {"state": "active"}):
        with pytest.raises(TwilioRestException) as refused:
            conversations(sid).update(**change)
        assert refused.value.code == 50377


async def test_get_webhooks_are_signed_over_the_url_as_requested(twilio: Client) -> None:
    """A GET webhook is signed over the full URL, query included, exactly as it arrives."""
    arrived: list[tuple[str, str]] = []
    done = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        arrived.append((str(request.url), request.headers.get("X-Twilio-Signature", "")))
        done.set()
        return web.Response(text="ok")

    port = free_port()
    app = web.Application()
    app.router.add_get("/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        url = f"http://127.0.0.1:{port}/events?team=a%2Fb&x=1"
        conversations = twilio.conversations.v1.conversations
        sid = await asyncio.to_thread(lambda: conversations.create().sid)
        await asyncio.to_thread(
            lambda: conversations(sid).webhooks.create(
                target="webhook",
                configuration_url=url,
                configuration_method="get",
                configuration_filters=["onMessageAdded"],
            )
        )
        await asyncio.to_thread(
            lambda: conversations(sid).messages.create(
                author="u", body="a b/c & d", x_twilio_webhook_enabled="true"
            )
        )
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await runner.cleanup()
    requested, signature = arrived[0]
    assert requested.startswith(url + "&")
    assert RequestValidator(SANDBOX_AUTH_TOKEN).validate(requested, {}, signature)
