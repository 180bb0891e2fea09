"""AUTH_MODE=oauth: the bridge as the authorization server a GPT Action signs users in with,
driven by a real OAuth client (authlib) through the sandbox's OpenID Connect provider."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from bridge.app import create_app
from bridge.config import SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET
from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client

CALLBACK = "https://chatgpt.com/aip/g-0123abcd/oauth/callback"


@pytest.fixture(params=["sqlite", "postgres"])
def oauth_server(request: pytest.FixtureRequest, make_server: ServerFactory) -> LiveServer:
    """The bridge as an authorization server, its codes, tokens and clients on each
    backend in turn."""
    database = {}
    if request.param == "postgres":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return make_server(AUTH_MODE="oauth", REPLY_WAIT_SECONDS="1", **database)


_clients: list[OAuth2Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def gpt_client(method: str = "client_secret_basic", **extra: Any) -> OAuth2Client:
    """What ChatGPT does for a GPT Action with OAuth: a confidential client."""
    client = OAuth2Client(
        client_id=extra.pop("client_id", SANDBOX_OAUTH_CLIENT_ID),
        client_secret=extra.pop("client_secret", SANDBOX_OAUTH_CLIENT_SECRET),
        token_endpoint_auth_method=method,
        redirect_uri=extra.pop("redirect_uri", CALLBACK),
        scope="handoff",
        **extra,
    )
    _clients.append(client)
    return client


def location(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    return urljoin(str(response.url), response.headers["Location"])


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def sign_in_upstream(browser: httpx.Client, page_url: str, name: str, email: str) -> str:
    """Fill in the sandbox provider's sign-in form as a person would; where it sends us."""
    page = browser.get(page_url)
    assert page.status_code == 200, page.text[:500]
    form = re.search(r"<form[^>]*>(.*?)</form>", page.text, re.S | re.I)
    assert form is not None
    action = re.search(r'action="([^"]*)"', form.group(0))
    target = urljoin(page_url, html.unescape(action.group(1))) if action else page_url
    fields = {
        html.unescape(n): html.unescape(v)
        for n, v in re.findall(
            r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(0)
        )
    }
    fields.update({"name": name, "email": email})
    return location(browser.post(target, data=fields))


def consent_token(page: httpx.Response) -> str:
    found = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return html.unescape(found.group(1))


def answer_consent(browser: httpx.Client, page: httpx.Response, decision: str) -> httpx.Response:
    """Click Allow or Deny on the bridge's consent page, as the person would."""
    assert page.status_code == 200 and "Allow" in page.text, page.text[:500]
    action = urljoin(str(page.url), "/oauth/consent")
    origin = f"{urlsplit(action).scheme}://{urlsplit(action).netloc}"
    return browser.post(
        action,
        data={"consent": consent_token(page), "decision": decision},
        headers={"Origin": origin},
    )


def browser_flow(authorization_url: str, name: str, email: str, consent: str = "allow") -> str:
    """The person's trip: bridge → provider sign-in → bridge (→ the bridge's consent page,
    when it asks) → the client's callback. Returns that last URL."""
    with httpx.Client() as browser:  # keeps cookies, as a browser does
        upstream = location(browser.get(authorization_url))
        back_at_bridge = sign_in_upstream(browser, upstream, name, email)
        landing = browser.get(back_at_bridge)
        if landing.status_code == 200:  # the consent page
            landing = answer_consent(browser, landing, consent)
        return location(landing)


def authorize(server: LiveServer, client: OAuth2Client, name: str, email: str) -> str:
    """The browser's trip: bridge → provider sign-in → bridge → the GPT's callback URL."""
    url, _state = client.create_authorization_url(f"{server.url}/oauth/authorize")
    with httpx.Client() as browser:  # keeps cookies, as a browser does
        upstream = location(browser.get(url))
        assert upstream.startswith(f"{server.url}/sandbox/idp/")
        back_at_bridge = sign_in_upstream(browser, upstream, name, email)
        assert back_at_bridge.startswith(f"{server.url}/oauth/callback?")
        final = location(browser.get(back_at_bridge))
    assert final.startswith(CALLBACK + "?")
    return final


def sign_in(
    server: LiveServer,
    name: str = "Alice Smith",
    email: str = "alice@example.com",
    method: str = "client_secret_basic",
) -> dict[str, Any]:
    client = gpt_client(method)
    final = authorize(server, client, name, email)
    token: dict[str, Any] = client.fetch_token(
        f"{server.url}/oauth/token", authorization_response=final
    )
    return token


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_full_sign_in_and_handoff(oauth_server: LiveServer, method: str) -> None:
    token = sign_in(oauth_server, method=method)
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "handoff"
    assert token["expires_in"] > 0 and token["refresh_token"]
    response = httpx.post(
        f"{oauth_server.url}/send/me", json={"msg": "hello"}, headers=bearer(token), timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "waiting"


def test_token_request_as_json(oauth_server: LiveServer) -> None:
    client = gpt_client()
    final = authorize(oauth_server, client, "Alice", "alice@example.com")
    response = httpx.post(
        f"{oauth_server.url}/oauth/token",
        json={
            "grant_type": "authorization_code",
            "code": query(final)["code"],
            "redirect_uri": CALLBACK,
            "client_id": SANDBOX_OAUTH_CLIENT_ID,
            "client_secret": SANDBOX_OAUTH_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert set(response.json()) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
    }


def test_authorization_response_carries_state_and_issuer(oauth_server: LiveServer) -> None:
    client = gpt_client()
    url, state = client.create_authorization_url(f"{oauth_server.url}/oauth/authorize")
    with httpx.Client() as browser:
        final = sign_in_upstream(browser, location(browser.get(url)), "Al", "al@example.com")
        params = query(location(browser.get(final)))
    assert params["state"] == state
    assert params["iss"] == oauth_server.url


def test_refresh_rotates_and_replay_revokes(oauth_server: LiveServer) -> None:
    first = sign_in(oauth_server)
    client = gpt_client()
    second = client.refresh_token(
        f"{oauth_server.url}/oauth/token", refresh_token=first["refresh_token"]
    )
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    ok = httpx.get(f"{oauth_server.url}/replies/me", headers=bearer(second))
    assert ok.status_code == 200

    replay = httpx.post(
        f"{oauth_server.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET),
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The replay revoked the whole family, the new pair included.
    assert httpx.get(f"{oauth_server.url}/replies/me", headers=bearer(second)).status_code == 401
    again = httpx.post(
        f"{oauth_server.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=(SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET),
    )
    assert again.json()["error"] == "invalid_grant"


def test_reused_code_is_refused_and_revokes_its_tokens(oauth_server: LiveServer) -> None:
    client = gpt_client()
    final = authorize(oauth_server, client, "Alice", "alice@example.com")
    token = client.fetch_token(f"{oauth_server.url}/oauth/token", authorization_response=final)
    replay = httpx.post(
        f"{oauth_server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(final)["code"],
            "redirect_uri": CALLBACK,
        },
        auth=(SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET),
    )
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert httpx.get(f"{oauth_server.url}/replies/me", headers=bearer(token)).status_code == 401


def test_expired_code(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth", OAUTH_CODE_SECONDS="1")
    client = gpt_client()
    final = authorize(server, client, "Alice", "alice@example.com")
    time.sleep(1.5)
    response = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(final)["code"],
            "redirect_uri": CALLBACK,
        },
        auth=(SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET),
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_expired_access_token(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth", ACCESS_TOKEN_SECONDS="1")
    token = sign_in(server)
    assert httpx.get(f"{server.url}/replies/me", headers=bearer(token)).status_code == 200
    time.sleep(1.5)
    response = httpx.get(f"{server.url}/replies/me", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [(SANDBOX_OAUTH_CLIENT_ID, "wrong-secret"), ("someone-else", SANDBOX_OAUTH_CLIENT_SECRET)],
    ids=["wrong-secret", "unknown-client"],
)
def test_client_authentication_failures(
    oauth_server: LiveServer, client_id: str, secret: str
) -> None:
    client = gpt_client()
    final = authorize(oauth_server, client, "Alice", "alice@example.com")
    response = httpx.post(
        f"{oauth_server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(final)["code"],
            "redirect_uri": CALLBACK,
        },
        auth=(client_id, secret),
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_mismatched_redirect_uri_at_token(oauth_server: LiveServer) -> None:
    client = gpt_client()
    final = authorize(oauth_server, client, "Alice", "alice@example.com")
    response = httpx.post(
        f"{oauth_server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query(final)["code"],
            "redirect_uri": "https://chatgpt.com/aip/g-other/oauth/callback",
        },
        auth=(SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET),
    )
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/aip/g-0123abcd/oauth/callback",
        "https://chatgpt.com/aip/g-0123abcd/oauth/callback/../../steal",
        "https://chatgpt.com/aip/g-01/23/oauth/callback",
        "http://chatgpt.com/aip/g-0123abcd/oauth/callback",
    ],
)
def test_unknown_redirect_uri_gets_an_error_page_not_a_redirect(
    oauth_server: LiveServer, redirect_uri: str
) -> None:
    client = gpt_client(redirect_uri=redirect_uri)
    url, _ = client.create_authorization_url(f"{oauth_server.url}/oauth/authorize")
    response = httpx.get(url)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "redirect_uri" in response.text


def test_unknown_client_gets_an_error_page(oauth_server: LiveServer) -> None:
    client = gpt_client(client_id="not-our-gpt")
    url, _ = client.create_authorization_url(f"{oauth_server.url}/oauth/authorize")
    response = httpx.get(url)
    assert response.status_code == 400 and "Location" not in response.headers


def test_missing_state_and_bad_scope_redirect_with_an_error(oauth_server: LiveServer) -> None:
    base = f"{oauth_server.url}/oauth/authorize"
    common = {
        "response_type": "code",
        "client_id": SANDBOX_OAUTH_CLIENT_ID,
        "redirect_uri": CALLBACK,
    }
    no_state = query(location(httpx.get(base, params=common)))
    assert no_state["error"] == "invalid_request"
    bad_scope = query(location(httpx.get(base, params={**common, "state": "s1", "scope": "admin"})))
    assert (bad_scope["error"], bad_scope["state"]) == ("invalid_scope", "s1")
    token_flow = query(
        location(httpx.get(base, params={**common, "state": "s2", "response_type": "token"}))
    )
    assert token_flow["error"] == "unsupported_response_type"


def test_users_cannot_reach_each_other(oauth_server: LiveServer) -> None:
    alice = sign_in(oauth_server, "Alice", "alice@example.com")
    bob = sign_in(oauth_server, "Bob", "bob@example.com")
    httpx.post(
        f"{oauth_server.url}/send/me", json={"msg": "alice here"}, headers=bearer(alice), timeout=30
    )
    agent = Agent(twilio_client(oauth_server))
    sid = agent.only_conversation()
    agent.reply(sid, "for alice only")
    # Bob asks with every user name he can think of: the path is ignored.
    for name in ("me", "alice", "alice@example.com"):
        got = httpx.get(f"{oauth_server.url}/replies/{name}", headers=bearer(bob)).json()
        assert got["replies"] == [], name
    deadline = time.monotonic() + 10
    replies: list[dict[str, str]] = []
    while not replies and time.monotonic() < deadline:
        replies = httpx.get(
            f"{oauth_server.url}/replies/bob",
            headers=bearer(alice),
            params={"wait": "1"},
            timeout=30,
        ).json()["replies"]
    assert [r["body"] for r in replies] == ["for alice only"]


def test_twilio_sees_only_the_hash_unless_sharing_is_on(make_server: ServerFactory) -> None:
    private = make_server(AUTH_MODE="oauth")
    token = sign_in(private, "Alice Smith", "alice@example.com")
    httpx.post(f"{private.url}/send/me", json={"msg": "hi"}, headers=bearer(token), timeout=30)
    conversation = twilio_client(private).conversations.v1.conversations.list()[0]
    assert "alice" not in (conversation.friendly_name + conversation.attributes).lower()

    shared = make_server(AUTH_MODE="oauth", SHARE_PROFILE_WITH_AGENT="1")
    token = sign_in(shared, "Alice Smith", "alice@example.com")
    httpx.post(f"{shared.url}/send/me", json={"msg": "hi"}, headers=bearer(token), timeout=30)
    conversation = twilio_client(shared).conversations.v1.conversations.list()[0]
    assert conversation.friendly_name == "Alice Smith <alice@example.com>"
    assert '"email": "alice@example.com"' in conversation.attributes


def test_every_handoff_route_demands_a_token(oauth_server: LiveServer) -> None:
    app = create_app(oauth_server.settings)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("handoff.")]
    assert len(rules) >= 3
    for rule in rules:
        path = rule.rule.replace("<username>", "me")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            response = httpx.request(method, f"{oauth_server.url}{path}", json={"msg": "hi"})
            assert response.status_code == 401, (method, path)
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith("Bearer ")
            assert (
                f'resource_metadata="{oauth_server.url}/.well-known/oauth-protected-resource"'
                in challenge
            )


def test_metadata_documents(oauth_server: LiveServer) -> None:
    server = httpx.get(f"{oauth_server.url}/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == oauth_server.url
    assert server["authorization_endpoint"] == f"{oauth_server.url}/oauth/authorize"
    assert server["token_endpoint"] == f"{oauth_server.url}/oauth/token"
    assert set(server["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",  # public clients registered at /oauth/register (MCP clients)
    }
    resource = httpx.get(f"{oauth_server.url}/.well-known/oauth-protected-resource").json()
    assert resource["authorization_servers"] == [oauth_server.url]


def test_manifest_and_openapi_follow_the_mode(oauth_server: LiveServer) -> None:
    manifest = httpx.get(f"{oauth_server.url}/.well-known/ai-plugin.json").json()
    assert manifest["auth"]["type"] == "oauth"
    assert manifest["auth"]["client_url"] == f"{oauth_server.url}/oauth/authorize"
    assert manifest["auth"]["authorization_url"] == f"{oauth_server.url}/oauth/token"
    assert manifest["auth"]["scope"] == "handoff"
    flows = httpx.get(f"{oauth_server.url}/openapi.json").json()["components"]["securitySchemes"][
        "oauth2"
    ]["flows"]["authorizationCode"]
    assert flows["tokenUrl"] == f"{oauth_server.url}/oauth/token"
    assert flows["scopes"] == {"handoff": "Talk to a human agent on the user's behalf."}


def test_oauth_routes_exist_only_in_oauth_mode(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/oauth/authorize").status_code == 404
    assert httpx.get(f"{server.url}/.well-known/oauth-authorization-server").status_code == 404
