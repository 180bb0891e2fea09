"""What a newcomer's browser and an API client find: ``/`` (a page, or JSON), the
interactive API reference at ``/docs`` (rendered in a real Chromium, no CDN), the OpenAPI
document shown rather than saved, and one 404 everywhere."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from bridge.errors import NOT_FOUND
from tests.browser import chromium
from tests.conftest import LiveServer

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_client_gets_json_at_the_root(server: LiveServer) -> None:
    answer = httpx.get(f"{server.url}/", headers={"Accept": "application/json"})
    assert answer.status_code == 200
    about = answer.json()
    assert about["service"] == "flex-bridge"
    assert about["mode"] == "sandbox"
    assert about["status"] == "ready"
    assert about["links"]["api_reference"].endswith("/docs")
    assert about["links"]["agent_console"].endswith("/sandbox/")
    assert httpx.get(f"{server.url}/").json() == about  # */* is a client too


def test_a_person_gets_a_page_at_the_root(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in ("Flex Bridge", "/sandbox/", "/docs", "/mcp", "Sandbox mode", ">ready<"):
        assert text in page.text
    assert "<script" not in page.text


def test_the_openapi_document_displays_in_a_browser(server: LiveServer) -> None:
    shown = httpx.get(f"{server.url}/openapi.yaml", headers=BROWSER)
    assert shown.headers["content-type"].startswith("text/plain")
    assert shown.headers["content-disposition"].startswith("inline")
    assert shown.text.startswith("openapi: 3.1.0")
    fetched = httpx.get(f"{server.url}/openapi.yaml")
    assert fetched.headers["content-type"].startswith("application/yaml")
    assert fetched.text == shown.text


@pytest.mark.parametrize(
    "path", ["/nope", "/sandbox/nope", "/sandbox/mcp-host/nope", "/mcp/nope", "/docs/static/x.js"]
)
def test_one_404_everywhere(server: LiveServer, path: str) -> None:
    missing = httpx.get(f"{server.url}{path}")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": NOT_FOUND}}


def test_the_docs_files_come_from_the_package_and_nothing_else(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"):
        assert httpx.get(f"{server.url}/docs/static/{name}").status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no other origin named
    # Files the package has but the page does not use are not served either.
    for other in ("LICENSE", "swagger-ui.js", "index.css", "swagger-initializer.js"):
        assert httpx.get(f"{server.url}/docs/static/{other}").status_code == 404


async def test_the_api_reference_renders_and_lists_every_operation(server: LiveServer) -> None:
    errors: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"{server.url}/docs")
        await expect(page.locator(".info .title")).to_contain_text("Flex Bridge", timeout=15_000)
        for path in ("/send/{username}", "/replies/{username}", "/end/{username}"):
            await expect(page.locator(f'.opblock-summary-path[data-path="{path}"]')).to_be_visible()
        await page.close()
    assert errors == []


def test_the_mcp_endpoint_with_a_trailing_slash_still_leads_to_it(server: LiveServer) -> None:
    moved = httpx.post(f"{server.url}/mcp/", json={}, headers={"Accept": "application/json"})
    assert moved.status_code == 307
    assert moved.headers["location"].endswith("/mcp")
