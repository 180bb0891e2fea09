"""What the start-up banner tells the person who started the service, in each auth mode,
and the sandbox's signed-in page its OAuth link leads to."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx

from bridge.cli import banner
from bridge.config import SANDBOX_OAUTH_CLIENT_ID, load_settings
from tests.conftest import ServerFactory, real_mode, sandbox_env
from tests.test_oauth import browser_flow


def test_the_sandbox_banner_sends_a_newcomer_to_the_console_first(tmp_path: Path) -> None:
    said = banner(load_settings(sandbox_env(tmp_path)))
    assert "agent console" in said and "open it first" in said
    assert "/docs" in said and "/mcp" in said
    assert "curl -s -X POST" in said
    assert "ALLOW_INSECURE_NO_AUTH" not in said


def test_a_real_twilio_token_is_never_printed(tmp_path: Path) -> None:
    token = "f" * 32
    env = real_mode("http://127.0.0.1:9/twilio", tmp_path, TWILIO_AUTH_TOKEN=token, SANDBOX="1")
    said = banner(load_settings(env))
    assert token not in said and "(TWILIO_AUTH_TOKEN)" in said


def test_without_auth_outside_the_sandbox_the_banner_warns_loudly(tmp_path: Path) -> None:
    settings = load_settings(
        real_mode(
            "http://127.0.0.1:9/twilio", tmp_path, AUTH_MODE="none", ALLOW_INSECURE_NO_AUTH="1"
        )
    )
    said = banner(settings)
    assert "!!" in said and "anyone who reaches this address can send as any" in said


def test_with_api_keys_the_banner_shows_the_header_to_send(tmp_path: Path) -> None:
    said = banner(
        load_settings(
            sandbox_env(tmp_path, AUTH_MODE="apikey", API_KEYS="Zq8rT2mVx9LpW4nB7cKd3FhJ")
        )
    )
    assert "Authorization: Bearer YOUR_API_KEY" in said


def test_in_oauth_mode_the_banner_link_signs_in_and_shows_the_next_call(
    make_server: ServerFactory,
) -> None:
    server = make_server(AUTH_MODE="oauth", REPLY_WAIT_SECONDS="1")
    said = banner(server.settings)
    assert f"dev client        {SANDBOX_OAUTH_CLIENT_ID}" in said
    (authorize,) = re.findall(r"(http://\S+/oauth/authorize\?\S+)", said)
    landed = browser_flow(authorize, "Ann Example", "ann@example.com")
    assert landed.startswith(f"{server.url}/oauth/signed-in?code=")
    page = httpx.get(landed)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    token_match = re.search(r'<pre id="token">([^<]+)</pre>', page.text)
    assert token_match is not None
    token = html.unescape(token_match.group(1))
    call = html.unescape(re.search(r'<pre id="next">([^<]+)</pre>', page.text).group(1))  # type: ignore[union-attr]
    assert f"Authorization: Bearer {token}" in call
    # The call the page shows works as shown.
    sent = httpx.post(
        f"{server.url}/send/me",
        headers={"Authorization": f"Bearer {token}"},
        json={"msg": "I need a human, please"},
        timeout=30,
    )
    assert sent.status_code == 200 and sent.json()["status"] == "waiting"
    # The code was used: the page cannot be replayed into another token.
    assert httpx.get(landed).status_code == 400


def test_with_a_secret_of_its_own_the_page_shows_the_exchange_instead(
    make_server: ServerFactory,
) -> None:
    secret = "Own-client-secret-0123456789abcdef"
    server = make_server(AUTH_MODE="oauth", OAUTH_CLIENT_SECRET=secret)
    (authorize,) = re.findall(r"(http://\S+/oauth/authorize\?\S+)", banner(server.settings))
    landed = browser_flow(authorize, "Ann Example", "ann@example.com")
    page = httpx.get(landed)
    assert page.status_code == 200 and "<style>" in page.text
    assert "access_token" not in page.text and secret not in page.text
    exchange = re.search(r'<pre id="exchange">([^<]+)</pre>', page.text)
    assert exchange is not None
    call = html.unescape(exchange.group(1))
    assert "YOUR_CLIENT_SECRET" in call
    code = re.search(r"-d code=(\S+)", call)
    assert code is not None
    token = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code.group(1),
            "redirect_uri": f"{server.url}/oauth/signed-in",
        },
        auth=(SANDBOX_OAUTH_CLIENT_ID, secret),
    )
    assert token.status_code == 200 and token.json()["access_token"]


def test_outside_the_sandbox_there_is_no_signed_in_page(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    sandbox = make_server()
    bridge = make_server(
        **real_mode(
            f"{sandbox.url}/sandbox/twilio",
            tmp_path,
            AUTH_MODE="oauth",
            OAUTH_CLIENT_ID="gpt-prod",
            OAUTH_CLIENT_SECRET="Prod-client-secret-0123456789abcdef",
            OIDC_ISSUER=f"{sandbox.url}/sandbox/idp",
            OIDC_CLIENT_ID="flex-bridge-dev",
            OIDC_CLIENT_SECRET="flex-bridge-dev-secret",
        )
    )
    assert httpx.get(f"{bridge.url}/oauth/signed-in?code=x").status_code == 404
    assert "/oauth/signed-in" not in banner(bridge.settings)


def test_the_signed_in_page_refuses_what_is_not_a_fresh_code(make_server: ServerFactory) -> None:
    server = make_server(AUTH_MODE="oauth")
    for query in ("", "?error=access_denied", "?code=forged"):
        page = httpx.get(f"{server.url}/oauth/signed-in{query}")
        assert page.status_code == 400
        assert "<script" not in page.text
    hostile = httpx.get(f"{server.url}/oauth/signed-in", params={"error": "<b>x</b>"})
    assert "<b>" not in hostile.text and "&lt;b&gt;" in hostile.text
