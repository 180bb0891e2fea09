"""The sandbox's OpenID Connect provider, driven over HTTP by authlib's OAuth 2 client.

Each flow is what a relying party and a browser do: discovery, an authorization URL with
state, nonce and a PKCE (S256) verifier, the sign-in form, the code exchange with the
client's secret, the ID token checked against the JWKS (joserfc), then userinfo.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from hypercorn.asyncio import serve
from hypercorn.config import Config
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.async_api import Route, async_playwright, expect
from quart import Quart

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from bridge.sandbox.app import create_sandbox_app
from bridge.sandbox.idp import (
    DEV_CLIENT,
    DEV_CLIENT_ID,
    DEV_CLIENT_SECRET,
    IdentityProvider,
    IdpClient,
    subject_for,
)
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.conftest import LiveServer, free_port

SCOPE = "openid profile email"
HANDLE = re.compile(r'<input type="hidden" name="handle" value="([^"]+)">')


# --- a relying party and a browser -----------------------------------------------------------


def discover(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/sandbox/idp/.well-known/openid-configuration")
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    return metadata


def relying_party(
    metadata: dict[str, Any],
    redirect_uri: str,
    *,
    auth_method: str = "client_secret_basic",
    client_id: str = DEV_CLIENT_ID,
    client_secret: str = DEV_CLIENT_SECRET,
    scope: str = SCOPE,
) -> OAuth2Client:
    return OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=auth_method,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=10,
    )


@dataclass
class Authorization:
    """An authorization request on its way: what the relying party keeps for the callback."""

    url: str
    state: str
    nonce: str
    verifier: str


def authorization(rp: OAuth2Client, metadata: dict[str, Any], **extra: str) -> Authorization:
    verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    return Authorization(url, state, nonce, verifier)


def open_sign_in(browser: httpx.Client, url: str) -> str:
    """GET the sign-in page; returns the handle its form posts back."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    match = HANDLE.search(page.text)
    assert match, page.text
    return match.group(1)


def submit(
    browser: httpx.Client, metadata: dict[str, Any], handle: str, **fields: str
) -> httpx.Response:
    return browser.post(metadata["authorization_endpoint"], data={"handle": handle, **fields})


def callback_params(response: httpx.Response, redirect_uri: str) -> dict[str, str]:
    """The query the provider redirected the browser back with (and that it went there)."""
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.split("?")[0] == redirect_uri.split("?")[0]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(
    rp: OAuth2Client,
    browser: httpx.Client,
    metadata: dict[str, Any],
    *,
    name: str = "Ada Lovelace",
    email: str = "ada@example.com",
    **extra: str,
) -> tuple[Authorization, str]:
    """Through the sign-in page; returns the request and the callback URL with the code."""
    auth = authorization(rp, metadata, **extra)
    handle = open_sign_in(browser, auth.url)
    response = submit(browser, metadata, handle, name=name, email=email)
    assert response.status_code == 303, response.text
    return auth, response.headers["location"]


def exchange(
    rp: OAuth2Client, metadata: dict[str, Any], auth: Authorization, callback: str
) -> dict[str, Any]:
    token: dict[str, Any] = rp.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        state=auth.state,
        code_verifier=auth.verifier,
    )
    return token


def verify_id_token(
    id_token: str, metadata: dict[str, Any], *, nonce: str, access_token: str
) -> dict[str, Any]:
    """Check the ID token as a relying party must (OIDC Core 3.1.3.7)."""
    keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] in {key.kid for key in keys}
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": DEV_CLIENT_ID},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        auth_time={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(token.claims)
    digest = hashlib.sha256(access_token.encode()).digest()[:16]
    assert token.claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return token.claims


@pytest.fixture
def metadata(server: LiveServer) -> dict[str, Any]:
    return discover(server.url)


@pytest.fixture
def redirect_uri(server: LiveServer) -> str:
    return f"{server.url}/oauth/callback"


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def rp(metadata: dict[str, Any], redirect_uri: str) -> Iterator[OAuth2Client]:
    with relying_party(metadata, redirect_uri) as client:
        yield client


# --- a sandbox of its own, for a provider with other clients or a clock ----------------------


class SandboxServer:
    """The sandbox app alone under Hypercorn, in a thread (as ``python -m bridge.sandbox``)."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{free_port()}"
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-server", daemon=True)

    async def _stopped(self) -> None:
        await self._stop.wait()

    def _run(self) -> None:
        config = Config()
        config.bind = [self.url.removeprefix("http://")]
        config.accesslog = None
        config.graceful_timeout = 1
        try:
            self._loop.run_until_complete(serve(self.app, config, shutdown_trigger=self._stopped))
        finally:
            self._loop.close()

    def start(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/sandbox/idp/jwks", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError("the sandbox did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


@pytest.fixture
def sandboxes() -> Iterator[list[SandboxServer]]:
    started: list[SandboxServer] = []
    yield started
    for sandbox in started:
        sandbox.stop()


def start_sandbox(started: list[SandboxServer], app: Quart) -> SandboxServer:
    sandbox = SandboxServer(app).start()
    started.append(sandbox)
    return sandbox


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- discovery and keys ----------------------------------------------------------------------


def test_discovery_document_names_the_issuer_as_reached(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/sandbox/idp/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    doc = response.json()
    issuer = f"{server.url}/sandbox/idp"
    assert doc["issuer"] == issuer
    assert doc["authorization_endpoint"] == f"{issuer}/authorize"
    assert doc["token_endpoint"] == f"{issuer}/token"
    assert doc["userinfo_endpoint"] == f"{issuer}/userinfo"
    assert doc["jwks_uri"] == f"{issuer}/jwks"
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["scopes_supported"] == ["openid", "profile", "email"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["grant_types_supported"] == ["authorization_code"]
    assert {"sub", "iss", "aud", "nonce", "name", "email", "email_verified"} <= set(
        doc["claims_supported"]
    )

    # The issuer follows the host the request used (one of those the service answers).
    port = server.settings.port
    other = httpx.get(
        f"{server.url}/sandbox/idp/.well-known/openid-configuration",
        headers={"Host": f"localhost:{port}"},
    ).json()
    assert other["issuer"] == f"http://localhost:{port}/sandbox/idp"


def test_jwks_publishes_one_public_rsa_signing_key(metadata: dict[str, Any]) -> None:
    keys = httpx.get(metadata["jwks_uri"]).json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert len(base64.urlsafe_b64decode(key["n"] + "==")) * 8 == 2048
    # The same key until the process ends.
    assert httpx.get(metadata["jwks_uri"]).json()["keys"] == keys


# --- signing in ------------------------------------------------------------------------------


def test_sign_in_with_client_secret_basic(
    rp: OAuth2Client,
    browser: httpx.Client,
    metadata: dict[str, Any],
    redirect_uri: str,
) -> None:
    auth = authorization(rp, metadata)
    query = parse_qs(urlsplit(auth.url).query)
    assert query["code_challenge_method"] == ["S256"]
    handle = open_sign_in(browser, auth.url)

    response = submit(browser, metadata, handle, name="Ada Lovelace", email="ada@example.com")
    params = callback_params(response, redirect_uri)
    assert response.status_code == 303
    assert params["state"] == auth.state
    assert set(params) == {"code", "state"}

    token = exchange(rp, metadata, auth, response.headers["location"])
    assert token["token_type"] == "Bearer"
    assert token["scope"] == SCOPE
    assert 0 < token["expires_in"] <= 3600
    claims = verify_id_token(
        token["id_token"], metadata, nonce=auth.nonce, access_token=token["access_token"]
    )
    assert claims["name"] == "Ada Lovelace"
    assert claims["email"] == "ada@example.com"
    assert claims["email_verified"] is True
    assert claims["sub"] == subject_for("ada@example.com")
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["auth_time"] <= claims["iat"] < claims["exp"]

    userinfo = rp.get(metadata["userinfo_endpoint"])
    assert userinfo.status_code == 200
    assert userinfo.json() == {
        "sub": claims["sub"],
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "email_verified": True,
    }


def test_sign_in_with_client_secret_post(
    browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    with relying_party(metadata, redirect_uri, auth_method="client_secret_post") as rp:
        auth, callback = sign_in(rp, browser, metadata, name="Grace Hopper", email="grace@navy.mil")
        token = exchange(rp, metadata, auth, callback)
        claims = verify_id_token(
            token["id_token"], metadata, nonce=auth.nonce, access_token=token["access_token"]
        )
        assert (claims["name"], claims["email"]) == ("Grace Hopper", "grace@navy.mil")
        assert rp.get(metadata["userinfo_endpoint"]).json()["sub"] == claims["sub"]


def test_token_responses_are_not_cached(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    auth, callback = sign_in(rp, browser, metadata)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = httpx.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": auth.verifier,
        },
        auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "id_token", "scope"}


def test_the_same_email_signs_in_as_the_same_subject(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any]
) -> None:
    subjects = []
    for name, email in [
        ("Ada", "ada@example.com"),
        ("Ada L.", "  ADA@Example.com "),
        ("Ada", "ada@example.org"),
    ]:
        auth, callback = sign_in(rp, browser, metadata, name=name, email=email)
        token = exchange(rp, metadata, auth, callback)
        claims = verify_id_token(
            token["id_token"], metadata, nonce=auth.nonce, access_token=token["access_token"]
        )
        subjects.append(claims["sub"])
    assert subjects[0] == subjects[1] != subjects[2]


def test_claims_follow_the_granted_scopes(
    browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    with relying_party(metadata, redirect_uri, scope="openid unknown-scope") as rp:
        auth, callback = sign_in(rp, browser, metadata)
        token = exchange(rp, metadata, auth, callback)
        assert token["scope"] == "openid"
        claims = verify_id_token(
            token["id_token"], metadata, nonce=auth.nonce, access_token=token["access_token"]
        )
        assert not {"name", "email", "email_verified"} & set(claims)
        assert rp.get(metadata["userinfo_endpoint"]).json() == {"sub": claims["sub"]}


def test_a_nonce_is_optional(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    verifier = generate_token(64)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )
    response = submit(browser, metadata, open_sign_in(browser, url), name="A", email="a@b.co")
    token = rp.fetch_token(
        metadata["token_endpoint"],
        authorization_response=response.headers["location"],
        state=state,
        code_verifier=verifier,
    )
    claims = jwt.decode(
        token["id_token"], KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    ).claims
    assert "nonce" not in claims


def test_an_authorization_request_can_be_posted(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    auth = authorization(rp, metadata)
    params = {k: v[0] for k, v in parse_qs(urlsplit(auth.url).query).items()}
    page = browser.post(metadata["authorization_endpoint"], data=params)
    assert page.status_code == 200
    match = HANDLE.search(page.text)
    assert match
    response = submit(browser, metadata, match.group(1), name="Ada", email="ada@example.com")
    token = exchange(rp, metadata, auth, response.headers["location"])
    verify_id_token(
        token["id_token"], metadata, nonce=auth.nonce, access_token=token["access_token"]
    )


# --- the sign-in page ------------------------------------------------------------------------


def test_sign_in_page_is_locked_down(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], server: LiveServer
) -> None:
    page = browser.get(authorization(rp, metadata).url)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert f"form-action 'self' {server.url}" in csp  # where the form's redirect goes
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text and "style=" not in page.text
    assert DEV_CLIENT_ID in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/sandbox/idp" in cookie and "SameSite=Lax" in cookie

    css = browser.get(f"{metadata['issuer']}/idp.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


async def test_signing_in_in_a_real_browser(server: LiveServer, metadata: dict[str, Any]) -> None:
    """Chromium shows the page with its stylesheet and no CSP violations, and follows the
    form's redirect to another origin (``form-action`` applies to it)."""
    require_chromium()
    redirect_uri = f"http://localhost:{free_port()}/oauth/callback"
    with relying_party(metadata, redirect_uri) as rp:
        auth = authorization(rp, metadata)
    arrived: list[str] = []

    async def callback(route: Route) -> None:
        arrived.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<p>Signed in</p>")

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await chromium.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.route(f"{redirect_uri}?*", callback)
            await page.goto(auth.url)
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            button = page.get_by_role("button", name="Sign in")
            assert await button.evaluate("b => getComputedStyle(b).borderRadius") == "8px"
            await page.get_by_label("Name").fill("Ada Lovelace")
            await page.get_by_label("Email address").fill("ada@example.com")
            await button.click()
            await expect(page.get_by_text("Signed in")).to_be_visible()
        finally:
            await chromium.close()
    assert errors == []
    assert len(arrived) == 1
    query = parse_qs(urlsplit(arrived[0]).query)
    assert query["state"] == [auth.state]
    assert query["code"]


def test_name_and_email_are_checked_and_escaped(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    auth = authorization(rp, metadata)
    handle = open_sign_in(browser, auth.url)

    empty = submit(browser, metadata, handle, name="  ", email="")
    assert empty.status_code == 400
    assert "Type a name." in empty.text and "Type an email address." in empty.text

    hostile = submit(browser, metadata, handle, name='<script>x</script>"', email="not-an-email")
    assert hostile.status_code == 400
    assert "<script>x" not in hostile.text
    assert "&lt;script&gt;x&lt;/script&gt;&#34;" in hostile.text
    assert 'aria-invalid="true"' in hostile.text
    assert "script-src" not in hostile.headers["content-security-policy"]

    # The same page still signs in once the fields are right.
    response = submit(browser, metadata, handle, name="Ada", email="ada@example.com")
    assert callback_params(response, redirect_uri)["state"] == auth.state


def test_a_sign_in_page_is_used_once(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any]
) -> None:
    handle = open_sign_in(browser, authorization(rp, metadata).url)
    assert submit(browser, metadata, handle, name="Ada", email="ada@example.com").is_redirect
    again = submit(browser, metadata, handle, name="Ada", email="ada@example.com")
    assert again.status_code == 400
    assert "location" not in again.headers
    assert "expired or was already used" in again.text

    forged = submit(browser, metadata, "made-up", name="Ada", email="ada@example.com")
    assert forged.status_code == 400
    assert "location" not in forged.headers


def test_a_sign_in_page_only_works_in_the_browser_that_opened_it(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any]
) -> None:
    handle = open_sign_in(browser, authorization(rp, metadata).url)
    with httpx.Client() as other_browser:
        response = submit(other_browser, metadata, handle, name="Eve", email="eve@example.com")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "another browser" in response.text
    # The page is still good where it was opened.
    assert submit(browser, metadata, handle, name="Ada", email="ada@example.com").is_redirect


def test_cancel_sends_access_denied(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    auth = authorization(rp, metadata)
    response = submit(browser, metadata, open_sign_in(browser, auth.url), action="cancel")
    params = callback_params(response, redirect_uri)
    assert params["error"] == "access_denied"
    assert params["state"] == auth.state
    assert "code" not in params


# --- refused authorization requests ----------------------------------------------------------


def test_an_unknown_client_gets_an_error_page_and_no_redirect(
    browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    with relying_party(metadata, redirect_uri, client_id="<b>intruder</b>") as rp:
        response = browser.get(authorization(rp, metadata).url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "Unknown application" in response.text
    assert "&lt;b&gt;intruder&lt;/b&gt;" in response.text and "<b>intruder" not in response.text
    assert response.headers["content-security-policy"]
    assert HANDLE.search(response.text) is None


@pytest.mark.parametrize(
    "redirect_to",
    [
        "http://evil.example/oauth/callback",
        "{server}/oauth/elsewhere",
        "{server}/oauth/callback?extra=1",
        "https://127.0.0.1:8443/oauth/callback",
        "http://user@127.0.0.1:8080/oauth/callback",
        "",
    ],
)
def test_an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(
    browser: httpx.Client, metadata: dict[str, Any], server: LiveServer, redirect_to: str
) -> None:
    with relying_party(metadata, redirect_to.format(server=server.url)) as rp:
        response = browser.get(authorization(rp, metadata).url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Invalid sign-in request" in response.text


def test_the_dev_client_takes_any_loopback_port(
    browser: httpx.Client, metadata: dict[str, Any]
) -> None:
    for uri in [
        "http://127.0.0.1:1/oauth/callback",
        "http://localhost:65535/oauth/callback",
        "http://[::1]:5002/oauth/callback",
    ]:
        with relying_party(metadata, uri) as rp:
            assert browser.get(authorization(rp, metadata).url).status_code == 200, uri


def test_missing_openid_scope_is_sent_back_as_invalid_scope(
    browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    with relying_party(metadata, redirect_uri, scope="profile email") as rp:
        auth = authorization(rp, metadata)
    response = browser.get(auth.url)
    assert response.status_code == 302
    params = callback_params(response, redirect_uri)
    assert params["error"] == "invalid_scope"
    assert params["state"] == auth.state
    assert "code" not in params


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ],
)
def test_other_bad_requests_are_sent_back_with_the_state(
    rp: OAuth2Client,
    browser: httpx.Client,
    metadata: dict[str, Any],
    redirect_uri: str,
    change: dict[str, str | None],
    error: str,
) -> None:
    auth = authorization(rp, metadata)
    params = {k: v[0] for k, v in parse_qs(urlsplit(auth.url).query).items()}
    for name, value in change.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    response = browser.get(metadata["authorization_endpoint"], params=params)
    answer = callback_params(response, redirect_uri)
    assert answer["error"] == error
    assert answer["state"] == auth.state


def test_a_repeated_parameter_is_refused(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    auth = authorization(rp, metadata)
    response = browser.get(f"{auth.url}&scope=openid")
    assert callback_params(response, redirect_uri)["error"] == "invalid_request"
    twice = browser.get(f"{auth.url}&client_id={DEV_CLIENT_ID}")
    assert twice.status_code == 400 and "location" not in twice.headers


# --- refused token requests ------------------------------------------------------------------


def test_a_wrong_code_verifier_is_invalid_grant(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any]
) -> None:
    auth, callback = sign_in(rp, browser, metadata)
    with pytest.raises(OAuthError) as refused:
        rp.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            state=auth.state,
            code_verifier=generate_token(64),
        )
    assert refused.value.error == "invalid_grant"
    # The attempt spent the code.
    with pytest.raises(OAuthError) as again:
        exchange(rp, metadata, auth, callback)
    assert again.value.error == "invalid_grant"


def test_pkce_cannot_be_dropped_or_added_at_the_token_endpoint(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str
) -> None:
    _, callback = sign_in(rp, browser, metadata)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    without = _post_token(metadata, code=code, redirect_uri=redirect_uri)
    assert (without.status_code, without.json()["error"]) == (400, "invalid_grant")

    # A code issued without a challenge refuses a verifier (a downgrade).
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"])
    assert "code_challenge" not in url
    response = submit(browser, metadata, open_sign_in(browser, url), name="A", email="a@b.co")
    code = callback_params(response, redirect_uri)["code"]
    added = _post_token(
        metadata, code=code, redirect_uri=redirect_uri, code_verifier=generate_token(64)
    )
    assert (added.status_code, added.json()["error"]) == (400, "invalid_grant")


def test_a_used_code_is_invalid_grant_and_revokes_its_tokens(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any]
) -> None:
    auth, callback = sign_in(rp, browser, metadata)
    token = exchange(rp, metadata, auth, callback)
    assert rp.get(metadata["userinfo_endpoint"]).status_code == 200

    with pytest.raises(OAuthError) as refused:
        exchange(rp, metadata, auth, callback)
    assert refused.value.error == "invalid_grant"

    revoked = httpx.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


def test_the_redirect_uri_must_match_the_authorization_request(
    rp: OAuth2Client, browser: httpx.Client, metadata: dict[str, Any], server: LiveServer
) -> None:
    auth, callback = sign_in(rp, browser, metadata)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = _post_token(
        metadata,
        code=code,
        redirect_uri="http://localhost:1/oauth/callback",
        code_verifier=auth.verifier,
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_wrong_client_secret_is_401_invalid_client(
    browser: httpx.Client, metadata: dict[str, Any], redirect_uri: str, method: str
) -> None:
    with relying_party(metadata, redirect_uri, auth_method=method) as rp:
        auth, callback = sign_in(rp, browser, metadata)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": auth.verifier,
    }
    if method == "client_secret_basic":
        response = httpx.post(
            metadata["token_endpoint"], data=form, auth=(DEV_CLIENT_ID, "not-the-secret")
        )
    else:
        response = httpx.post(
            metadata["token_endpoint"],
            data={**form, "client_id": DEV_CLIENT_ID, "client_secret": "not-the-secret"},
        )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"

    bad = relying_party(metadata, redirect_uri, auth_method=method, client_secret="nope")
    with bad, pytest.raises(OAuthError) as refused:
        exchange(bad, metadata, auth, callback)
    assert refused.value.error == "invalid_client"

    # A refused client did not spend the code.
    with relying_party(metadata, redirect_uri, auth_method=method) as rp:
        assert exchange(rp, metadata, auth, callback)["token_type"] == "Bearer"


def test_other_bad_token_requests(metadata: dict[str, Any], redirect_uri: str) -> None:
    unknown = _post_token(metadata, code="no-such-code", redirect_uri=redirect_uri)
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")

    grant = _post_token(metadata, grant_type="client_credentials")
    assert grant.json()["error"] == "unsupported_grant_type"

    missing = _post_token(metadata, redirect_uri=redirect_uri)
    assert missing.json()["error"] == "invalid_request"

    anonymous = httpx.post(
        metadata["token_endpoint"],
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": redirect_uri},
    )
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")

    both = httpx.post(
        metadata["token_endpoint"],
        data={"grant_type": "authorization_code", "client_secret": DEV_CLIENT_SECRET},
        auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")

    as_json = httpx.post(
        metadata["token_endpoint"],
        json={"grant_type": "authorization_code"},
        auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
    )
    assert as_json.json()["error"] == "invalid_request"


def _post_token(metadata: dict[str, Any], **form: str) -> httpx.Response:
    return httpx.post(
        metadata["token_endpoint"],
        data={"grant_type": "authorization_code", **form},
        auth=(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
    )


# --- userinfo --------------------------------------------------------------------------------


def test_userinfo_needs_a_valid_bearer_token(metadata: dict[str, Any]) -> None:
    missing = httpx.get(metadata["userinfo_endpoint"])
    assert missing.status_code == 401
    challenge = missing.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "error=" not in challenge

    wrong = httpx.get(metadata["userinfo_endpoint"], headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert wrong.json()["error"] == "invalid_token"


# --- lifetimes, with a clock of our own ------------------------------------------------------


def test_codes_expire_after_60_seconds(
    sandboxes: list[SandboxServer], browser: httpx.Client
) -> None:
    clock = Clock()
    app = create_sandbox_app(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    app.config["SANDBOX_IDP"] = IdentityProvider(clock=clock)
    sandbox = start_sandbox(sandboxes, app)
    metadata = discover(sandbox.url)
    redirect_uri = "http://127.0.0.1:5002/oauth/callback"

    with relying_party(metadata, redirect_uri) as rp:
        auth, callback = sign_in(rp, browser, metadata)
        clock.advance(61)
        with pytest.raises(OAuthError) as refused:
            exchange(rp, metadata, auth, callback)
        assert refused.value.error == "invalid_grant"
        assert "expired" in (refused.value.description or "")

        auth, callback = sign_in(rp, browser, metadata)
        clock.advance(59)
        token = exchange(rp, metadata, auth, callback)
        assert rp.get(metadata["userinfo_endpoint"]).status_code == 200

    clock.advance(3600)
    expired = httpx.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


# --- clients ---------------------------------------------------------------------------------


def test_the_sandbox_can_be_given_its_clients(
    sandboxes: list[SandboxServer], browser: httpx.Client
) -> None:
    partner = IdpClient("partner", "partner-secret", ("https://app.example/cb?tenant=7",))
    app = create_sandbox_app(
        SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, idp_clients={"partner": partner}
    )
    sandbox = start_sandbox(sandboxes, app)
    metadata = discover(sandbox.url)

    with relying_party(metadata, "http://127.0.0.1:5002/oauth/callback") as dev:
        assert browser.get(authorization(dev, metadata).url).status_code == 400

    with relying_party(
        metadata,
        "https://app.example/cb?tenant=7",
        client_id="partner",
        client_secret="partner-secret",
    ) as rp:
        auth = authorization(rp, metadata)
        page = browser.get(auth.url)
        assert "form-action 'self' https://app.example" in page.headers["content-security-policy"]
        match = HANDLE.search(page.text)
        assert match
        response = submit(browser, metadata, match.group(1), name="Ada", email="ada@example.com")
        location = response.headers["location"]
        assert location.startswith("https://app.example/cb?tenant=7&code=")
        claims = jwt.decode(
            exchange(rp, metadata, auth, location)["id_token"],
            KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json()),
        ).claims
        assert claims["aud"] == "partner"

    provider: IdentityProvider = app.config["SANDBOX_IDP"]
    provider.register_client(DEV_CLIENT)
    with relying_party(metadata, "http://localhost:8000/oauth/callback") as dev:
        assert browser.get(authorization(dev, metadata).url).status_code == 200


def test_clients_are_checked_when_registered() -> None:
    with pytest.raises(ValueError, match="client_id"):
        IdentityProvider({"a": IdpClient("b", "secret", ("https://b.example/cb",))})
    with pytest.raises(ValueError, match="fragment"):
        IdpClient("a", "secret", ("https://a.example/cb#top",))
    with pytest.raises(ValueError, match="redirect_uris"):
        IdpClient("a", "secret", ())


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("http://127.0.0.1/oauth/callback", True),
        ("http://127.0.0.1:5002/oauth/callback", True),
        ("http://localhost:8080/oauth/callback", True),
        ("http://[::1]:8080/oauth/callback", True),
        ("http://127.0.0.1:5002/oauth/callback/", False),
        ("http://127.0.0.1:5002/oauth/callback?next=/", False),
        ("http://127.0.0.1:5002/oauth/callback#x", False),
        ("http://127.0.0.2:5002/oauth/callback", False),
        ("http://localhost.evil.example:80/oauth/callback", False),
        ("http://127.0.0.1:0/oauth/callback", False),
        ("http://127.0.0.1:99999/oauth/callback", False),
        ("http://127.0.0.1:x/oauth/callback", False),
        ("https://localhost:8443/oauth/callback", False),
    ],
)
def test_the_dev_client_redirect_rule(uri: str, allowed: bool) -> None:
    assert DEV_CLIENT.allows_redirect(uri) is allowed
