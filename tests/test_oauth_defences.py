"""The authorization server as an attacker meets it: open registration, redirect tricks,
forged consent, racing replays, hostile text, floods. Each test fails without its fix."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bridge.auth.oidc import s256
from bridge.auth.store import ClientRow, PendingSignIn
from bridge.config import SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET
from bridge.stores.postgres import PostgresStore, open_postgres_store
from bridge.stores.sqlite import SqliteStore, open_sqlite_store
from tests.conftest import LiveServer, ServerFactory
from tests.test_oauth import (
    CALLBACK,
    answer_consent,
    bearer,
    browser_flow,
    gpt_client,
    location,
    query,
    sign_in,
    sign_in_upstream,
)

ATTACKER = "https://attacker.example/cb"


@pytest.fixture
def oauth_server(make_server: ServerFactory) -> LiveServer:
    return make_server(AUTH_MODE="oauth", REPLY_WAIT_SECONDS="1")


def register(server: LiveServer, redirect_uri: str = ATTACKER, **extra: object) -> dict[str, str]:
    response = httpx.post(
        f"{server.url}/oauth/register",
        json={
            "client_name": "Totally ChatGPT",
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    registered: dict[str, str] = response.json()
    return registered


def authorize_url(
    server: LiveServer, client_id: str, redirect_uri: str = ATTACKER, **extra: str
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "st-1",
        "code_challenge": s256(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{server.url}/oauth/authorize?{urlencode(params)}"


def to_consent_page(
    browser: httpx.Client, url: str, name: str = "Victim", email: str = "victim@example.com"
) -> httpx.Response:
    upstream = location(browser.get(url))
    return browser.get(sign_in_upstream(browser, upstream, name, email))


# --- 1. no confused deputy ------------------------------------------------------------------


def test_an_unvetted_client_gets_the_consent_page_not_a_code(oauth_server: LiveServer) -> None:
    attacker = register(oauth_server)
    with httpx.Client() as victim:
        page = to_consent_page(victim, authorize_url(oauth_server, attacker["client_id"]))
    assert page.status_code == 200
    assert "Location" not in page.headers
    assert "Totally ChatGPT" in page.text and "attacker.example" in page.text
    assert "Victim (victim@example.com)" in page.text
    assert "code=" not in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "form-action 'self' https://attacker.example" in csp
    assert page.headers["X-Frame-Options"] == "DENY"


def test_deny_sends_no_code_and_allow_is_remembered_per_person_and_client(
    oauth_server: LiveServer,
) -> None:
    client = register(oauth_server)
    with httpx.Client() as browser:
        denied = answer_consent(
            browser,
            to_consent_page(browser, authorize_url(oauth_server, client["client_id"])),
            "deny",
        )
        said = query(location(denied))
        assert said["error"] == "access_denied" and "code" not in said
        allowed = answer_consent(
            browser,
            to_consent_page(browser, authorize_url(oauth_server, client["client_id"])),
            "allow",
        )
        assert "code" in query(location(allowed))
        # Asked once per person and client: the same person is not asked again...
        again = to_consent_page(browser, authorize_url(oauth_server, client["client_id"]))
        assert "code" in query(location(again))
        # ...another person is,
        other = to_consent_page(
            browser, authorize_url(oauth_server, client["client_id"]), "Other", "other@example.com"
        )
        assert other.status_code == 200 and "Allow" in other.text
        # ...and so is the same person for another client.
        second = register(oauth_server)
        fresh = to_consent_page(browser, authorize_url(oauth_server, second["client_id"]))
        assert fresh.status_code == 200 and "Allow" in fresh.text


def test_the_consent_answer_must_come_from_the_browser_that_signed_in(
    oauth_server: LiveServer,
) -> None:
    client = register(oauth_server)
    with httpx.Client() as victim:
        page = to_consent_page(victim, authorize_url(oauth_server, client["client_id"]))
    token = page.text.split('name="consent" value="', 1)[1].split('"', 1)[0]
    # Another browser (the attacker's) posts the victim's consent token: refused.
    with httpx.Client() as attacker:
        forged = attacker.post(
            f"{oauth_server.url}/oauth/consent", data={"consent": token, "decision": "allow"}
        )
    assert forged.status_code == 403 and "Location" not in forged.headers


def test_a_cross_site_consent_post_is_refused(oauth_server: LiveServer) -> None:
    client = register(oauth_server)
    with httpx.Client() as browser:
        page = to_consent_page(browser, authorize_url(oauth_server, client["client_id"]))
        token = page.text.split('name="consent" value="', 1)[1].split('"', 1)[0]
        forged = browser.post(
            f"{oauth_server.url}/oauth/consent",
            data={"consent": token, "decision": "allow"},
            headers={"Origin": "https://attacker.example"},
        )
        assert forged.status_code == 403 and "Location" not in forged.headers
        # The person's own answer still counts, once.
        assert "code" in query(location(answer_consent(browser, page, "allow")))
        replayed = answer_consent(browser, page, "allow")
        assert replayed.status_code == 400 and "expired" in replayed.text


def test_the_callback_must_come_from_the_browser_that_started(oauth_server: LiveServer) -> None:
    client = gpt_client()
    url, _state = client.create_authorization_url(f"{oauth_server.url}/oauth/authorize")
    with httpx.Client() as starter:
        upstream = location(starter.get(url))
        back = sign_in_upstream(starter, upstream, "Al", "al@example.com")
    with httpx.Client() as other:  # no sign-in cookie
        page = other.get(back)
    assert page.status_code == 400 and "Location" not in page.headers
    assert "another browser" in page.text


def test_clients_trusted_by_setting_skip_the_consent_page(make_server: ServerFactory) -> None:
    claude = "https://claude.ai/api/mcp/auth_callback"
    server = make_server(AUTH_MODE="oauth", OAUTH_TRUSTED_CLIENTS="gpt,claude")
    trusted = register(server, claude)
    final = browser_flow(authorize_url(server, trusted["client_id"], claude), "A", "a@example.com")
    assert final.startswith(claude + "?") and "code" in query(final)
    # A client that adds any other redirect URI is not trusted.
    mixed = register(server, claude, redirect_uris=[claude, ATTACKER])
    with httpx.Client() as browser:
        page = to_consent_page(browser, authorize_url(server, mixed["client_id"], claude))
    assert page.status_code == 200 and "Allow" in page.text


def test_the_gpt_client_can_be_made_to_ask_too(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth", OAUTH_TRUSTED_CLIENTS="")
    url, _state = gpt_client().create_authorization_url(f"{server.url}/oauth/authorize")
    with httpx.Client() as browser:
        page = to_consent_page(browser, url)
    assert page.status_code == 200 and "the configured GPT" in page.text


# --- 2. no open redirect --------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"response_type": "token"},
        {"state": ""},
        {"scope": "admin"},
        {"code_challenge": "x"},
        {"code_challenge_method": "plain"},
        {"resource": "https://elsewhere.example/mcp"},
        {"state": "s" * 513},
    ],
)
def test_bad_parameters_for_an_unvetted_client_get_a_page_not_a_redirect(
    oauth_server: LiveServer, bad: dict[str, str]
) -> None:
    client = register(oauth_server)
    response = httpx.get(authorize_url(oauth_server, client["client_id"], **bad))
    assert response.status_code == 400, response.text
    assert "Location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def test_bad_parameters_for_the_trusted_gpt_client_go_back_to_it(oauth_server: LiveServer) -> None:
    url, _ = gpt_client().create_authorization_url(
        f"{oauth_server.url}/oauth/authorize", state="s" * 600
    )
    said = query(location(httpx.get(url)))
    assert said["error"] == "invalid_request" and "state" not in said  # not echoed


# --- 3. exact redirect URIs -------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["\n", "\r\n", "\t", " ", "\x00", "\x7f", "%0A"])
def test_redirect_uris_match_exactly(oauth_server: LiveServer, tail: str) -> None:
    client = register(oauth_server)
    for client_id, uri in ((client["client_id"], ATTACKER), (SANDBOX_OAUTH_CLIENT_ID, CALLBACK)):
        response = httpx.get(
            f"{oauth_server.url}/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": uri + tail,
                "state": "s",
            },
        )
        assert response.status_code == 400, (tail, response.text[:200])
        assert "Location" not in response.headers


@pytest.mark.parametrize(
    "uri",
    [
        ATTACKER + "\n",
        "https://attacker.example/c b",
        "https://attacker.example/\tcb",
        "https://attacker.example/" + "x" * 600,
    ],
)
def test_registration_refuses_redirect_uris_with_hidden_characters(
    oauth_server: LiveServer, uri: str
) -> None:
    response = httpx.post(f"{oauth_server.url}/oauth/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


# --- 4. floods --------------------------------------------------------------------------------


def test_registration_is_rate_limited_and_bounded(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth", OAUTH_REGISTER_PER_MINUTE="2")
    registered = register(server, client_name="n" * 5000)
    assert len(registered["client_name"]) == 100
    register(server)
    refused = httpx.post(f"{server.url}/oauth/register", json={"redirect_uris": [ATTACKER]})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"] == "too_many_requests"
    too_many = httpx.post(
        f"{server.url}/oauth/register",
        json={"redirect_uris": [f"https://a.example/{n}" for n in range(11)]},
    )
    assert too_many.status_code in (400, 429)


def test_sign_ins_started_are_rate_limited(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth", OAUTH_AUTHORIZE_PER_MINUTE="2")
    url, _ = gpt_client().create_authorization_url(f"{server.url}/oauth/authorize")
    assert httpx.get(url).status_code == 302
    assert httpx.get(url).status_code == 302
    refused = httpx.get(url)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_abandoned_sign_ins_and_unused_clients_expire(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    store: SqliteStore | PostgresStore
    if backend == "sqlite":
        store = await open_sqlite_store(tmp_path / "oauth.db")
    else:
        store = await open_postgres_store(request.getfixturevalue("postgres_url"))
    try:
        now = time.time()
        pending = PendingSignIn(
            "up-1", "c", "https://x.example/cb", "s", "handoff", "n", "v", None, None, now, "b"
        )
        await store.save_pending(pending)
        await store.purge_abandoned(now + 1)
        assert await store.take_pending("up-1", 600) is None
        for client_id in ("unused", "used"):
            await store.save_client(
                ClientRow(client_id, None, "none", ("https://x.example/cb",), {})
            )
        await store.touch_client("used")
        await store.purge_clients(unused_since=time.time() + 1, idle_since=now - 1)
        assert await store.find_client("unused") is None
        assert await store.find_client("used") is not None
    finally:
        await store.close()


# --- 5. replays racing the legitimate request ---------------------------------------------------


async def _race(server: LiveServer, form: dict[str, str]) -> list[httpx.Response]:
    auth = (SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET)
    async with httpx.AsyncClient(base_url=server.url, auth=auth, timeout=30) as http:
        return list(await asyncio.gather(*(http.post("/oauth/token", data=form) for _ in range(2))))


async def _still_alive(server: LiveServer, won: dict[str, str]) -> int:
    """How many of the winner's access and refresh tokens still work."""
    auth = (SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET)
    async with httpx.AsyncClient(base_url=server.url, auth=auth) as http:
        access = await http.get("/replies/me", headers=bearer(won), auth=None)
        refresh = await http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": won["refresh_token"]},
        )
    return (access.status_code == 200) + (refresh.status_code == 200)


async def test_a_raced_refresh_replay_leaves_no_token_alive(oauth_server: LiveServer) -> None:
    alive = 0
    for _ in range(15):
        token = await asyncio.to_thread(sign_in, oauth_server)
        answers = await _race(
            oauth_server, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
        )
        for answer in answers:
            if answer.status_code == 200:
                alive += await _still_alive(oauth_server, answer.json())
    assert alive == 0


async def test_a_raced_code_replay_leaves_no_token_alive(oauth_server: LiveServer) -> None:
    alive = 0
    for _ in range(10):
        final = await asyncio.to_thread(
            browser_flow,
            gpt_client().create_authorization_url(f"{oauth_server.url}/oauth/authorize")[0],
            "Racer",
            "racer@example.com",
        )
        form = {
            "grant_type": "authorization_code",
            "code": query(final)["code"],
            "redirect_uri": CALLBACK,
        }
        for answer in await _race(oauth_server, form):
            if answer.status_code == 200:
                alive += await _still_alive(oauth_server, answer.json())
    assert alive == 0


# --- 6. hostile text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials", [("clïent", "secret"), (SANDBOX_OAUTH_CLIENT_ID, "sécret"), ("💥", "💥")]
)
def test_non_ascii_client_credentials_are_refused_cleanly(
    oauth_server: LiveServer, credentials: tuple[str, str]
) -> None:
    for send in ("form", "basic"):
        if send == "form":
            data = {"client_id": credentials[0], "client_secret": credentials[1]}
            response = httpx.post(
                f"{oauth_server.url}/oauth/token", data={"grant_type": "refresh_token", **data}
            )
        else:
            response = httpx.post(
                f"{oauth_server.url}/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": "x"},
                auth=(credentials[0].encode(), credentials[1].encode()),
            )
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"


def test_lone_surrogates_in_json_get_a_clear_400(oauth_server: LiveServer) -> None:
    raw = b'{"grant_type": "refresh_token", "refresh_token": "\\ud800"}'
    token = httpx.post(
        f"{oauth_server.url}/oauth/token",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"


def test_a_non_ascii_code_verifier_or_challenge_is_refused_cleanly(
    oauth_server: LiveServer,
) -> None:
    client = register(oauth_server, "http://localhost:9/cb")
    response = httpx.get(
        authorize_url(
            oauth_server, client["client_id"], "http://localhost:9/cb", code_challenge="é" * 43
        )
    )
    assert response.status_code == 400


def test_a_signed_in_persons_flow_still_works_end_to_end(oauth_server: LiveServer) -> None:
    token = sign_in(oauth_server)
    assert httpx.get(f"{oauth_server.url}/replies/me", headers=bearer(token)).status_code == 200
