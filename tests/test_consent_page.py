"""The bridge's consent page in a real browser (Debian's Chromium, driven by Playwright):
what a person sees, that their Allow goes back to the client (the page's CSP lets the
answer's redirect leave), and that a hostile client name is shown as text."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, expect

from bridge.auth.oidc import s256
from tests.browser import chromium
from tests.conftest import ServerFactory

HOSTILE_NAME = '<img src=x onerror="alert(1)"><b>Helper</b>'


@pytest.fixture
def client_app() -> Iterator[tuple[str, list[str]]]:
    """The client's own callback page, on localhost: its URL, and the paths it got."""
    landed: list[str] = []

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            landed.append(self.path)
            body = b"<p>connected</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/callback", landed
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def browser(make_server: ServerFactory) -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def test_a_person_reads_the_consent_page_and_allows(
    make_server: ServerFactory, browser: Browser, client_app: tuple[str, list[str]]
) -> None:
    server = make_server(AUTH_MODE="oauth")
    callback, landed = client_app
    async with httpx.AsyncClient(base_url=server.url) as http:
        client = (
            await http.post(
                "/oauth/register",
                json={
                    "client_name": HOSTILE_NAME,
                    "redirect_uris": [callback],
                    "token_endpoint_auth_method": "none",
                },
            )
        ).json()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": callback,
            "state": "state-1",
            "code_challenge": s256("v" * 50),
            "code_challenge_method": "S256",
        }
    )
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    await page.goto(f"{server.url}/oauth/authorize?{query}")
    # The sandbox provider's sign-in form, as the person fills it in.
    await page.fill("#name", "Pat Example")
    await page.fill("#email", "pat@example.com")
    await page.click("button[value=sign-in]")
    # The bridge's own question, with the client's name as text, not markup.
    await expect(page.locator("#client")).to_have_text(HOSTILE_NAME)
    assert await page.locator("img").count() == 0
    await expect(page.locator("#user")).to_have_text("Pat Example (pat@example.com)")
    await expect(page.locator("#host")).to_have_text(f"http://{urlsplit(callback).netloc}")
    await page.click("button[value=allow]")
    await expect(page.locator("p")).to_have_text("connected")
    arrivals = [path for path in landed if path.startswith("/callback")]
    assert len(arrivals) == 1
    said = parse_qs(urlsplit(arrivals[0]).query)
    assert said["state"] == ["state-1"] and said["code"][0]
    assert problems == []
