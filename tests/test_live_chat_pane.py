"""The live chat pane in a real browser, inside the sandbox's MCP host: the official MCP
Apps host (AppBridge) and MCP client from npm, connected to the bridge's own /mcp, the
pane in a sandboxed iframe. Chromium drives it while the agent answers with the twilio
library, as Flex would.

Needs Chromium (``sudo apt-get install chromium``) and the host's bundle (``make
mcp-host``, which needs Node.js and npm; built here when npm is found). Without them the
tests are skipped, except under CI (``CI`` set), where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Browser, Frame, Page, expect

from bridge.sandbox.mcp_host import BUNDLE
from tests.browser import chromium, require_chromium
from tests.conftest import Agent, LiveServer, ServerFactory, twilio_client, wait_for_conversation

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "live-chat-pane.png"


def _build_bundle() -> None:
    if BUNDLE.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        message = "The MCP host's bundle is not built and npm is missing: `make mcp-host`."
        if "CI" in os.environ:
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run(["make", "mcp-host"], cwd=ROOT, check=True, capture_output=True)  # noqa: S607


@pytest.fixture
async def browser(make_server: ServerFactory) -> AsyncIterator[Browser]:
    require_chromium()
    _build_bundle()
    async with chromium() as launched:
        yield launched


async def _pane(page: Page, number: int = 0) -> Frame:
    """The pane of the ``number``-th tool call, once its page has loaded and connected."""
    frame_of = page.locator("iframe.pane").nth(number)
    await expect(frame_of).to_be_attached(timeout=15_000)
    handle = await frame_of.element_handle()
    assert handle is not None
    for _ in range(200):
        frame = await handle.content_frame()
        if frame is not None and await frame.locator("#lines").count():
            return frame
        await asyncio.sleep(0.05)
    raise AssertionError("the pane never loaded")


async def _open(browser: Browser, server: LiveServer, errors: list[str], **query: str) -> Page:
    page = await browser.new_page(viewport={"width": 1100, "height": 760})
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    params = "&".join(f"{key}={quote(value)}" for key, value in query.items())
    await page.goto(f"{server.url}/sandbox/mcp-host/?{params}")
    return page


async def _shows(frame: Frame, text: str, within: float = 10.0) -> float:
    """Wait until the pane shows ``text``; how long that took (s)."""
    started = time.monotonic()
    await frame.wait_for_function(
        "text => document.querySelector('#lines').innerText.includes(text)",
        arg=text,
        polling="raf",
        timeout=within * 1000,
    )
    return time.monotonic() - started


async def test_the_user_talks_to_the_agent_in_the_pane(
    browser: Browser, make_server: ServerFactory
) -> None:
    server = make_server(QUEUE_REFRESH_SECONDS="1")
    agent = Agent(twilio_client(server))
    errors: list[str] = []
    page = await _open(browser, server, errors, message="I need a person for my refund")
    pane = await _pane(page)
    sid = await wait_for_conversation(agent)

    # The user's message, and where they stand, as the pane shows them.
    await _shows(pane, "I need a person for my refund")
    await expect(pane.locator("#standing")).to_contain_text("Number 1 in line", timeout=15_000)

    # The agent answers: in the pane at once, without the user writing again.
    await asyncio.sleep(0.5)  # the pane is waiting for news
    replied = time.monotonic()
    await asyncio.to_thread(agent.reply, sid, "Hi, Alex here. Let me look at that refund.")
    await _shows(pane, "Let me look at that refund.")
    assert time.monotonic() - replied < 1.0, "the reply took more than a second to show"

    # The user writes to the agent from the pane: the agent reads it in Flex.
    await pane.locator("#message").fill("It was order 1234.")
    await pane.locator("#message").press("Enter")
    for _ in range(100):
        if "It was order 1234." in [b for _, b in await asyncio.to_thread(agent.messages, sid)]:
            break
        await asyncio.sleep(0.05)
    else:
        problem = await pane.locator("#problem").inner_text()
        raise AssertionError(f"the agent never got the pane's message: {problem!r} {errors}")
    await _shows(pane, "It was order 1234.")

    # Markup from the agent's side is shown as it was written, and nothing runs.
    hostile = '<img src=x onerror="window.pwned=1"><b>bold?</b> <script>window.pwned=2</script>'
    await asyncio.to_thread(agent.reply, sid, hostile)
    await _shows(pane, hostile)
    assert (
        await pane.evaluate(
            "document.querySelectorAll('#lines b, #lines img, #lines script').length"
        )
        == 0
    )
    assert await pane.evaluate("window.pwned === undefined")
    assert await page.evaluate("window.pwned === undefined")

    # The model is told what the user saw there.
    told = await page.evaluate("window.harness.modelContext")
    assert told is not None and "Let me look at that refund." in told["content"][0]["text"]

    # The pane told the host its height, and the host sized it to fit.
    height = await page.evaluate("parseInt(document.querySelector('iframe.pane').style.height)")
    content = await pane.evaluate("document.documentElement.getBoundingClientRect().height")
    assert height > 200 and abs(height - content) <= 2

    # This host shows the pane: the model is asked not to repeat what the user sees there.
    assert "do not repeat the replies" in await page.locator("#plain").inner_text()

    # The agent closes the conversation: the pane says so.
    await asyncio.to_thread(agent.close, sid)
    await _shows(pane, "The conversation has ended.")
    await expect(pane.locator("#who")).to_have_text("The conversation has ended")
    assert errors == []
    await page.close()


async def test_an_agent_at_the_flex_desk_takes_it_and_the_pane_says_who(
    browser: Browser, make_server: ServerFactory
) -> None:
    server = make_server(QUEUE_REFRESH_SECONDS="1")
    errors: list[str] = []
    page = await _open(browser, server, errors, message="My kettle arrived broken")
    pane = await _pane(page)
    await expect(pane.locator("#who")).to_have_text("No agent is available right now")
    async with httpx.AsyncClient(base_url=f"{server.url}/sandbox/console", timeout=30) as desk:
        signed_in = await desk.post("/agents", json={"name": "Alex Doe"})
        alex = signed_in.json()["agent"]["sid"]
        offers: list[dict[str, str]] = []
        for _ in range(100):  # TaskRouter offers the waiting task to the available agent
            offers = (await desk.get("/desk")).json()["offers"]
            if offers:
                break
            await asyncio.sleep(0.05)
        (offer,) = offers
        accepted = await desk.post(f"/offers/{offer['sid']}/accept", json={"agent": alex})
        assert accepted.status_code == 200
        await expect(pane.locator("#who")).to_have_text("Alex Doe is answering")
        sid = offer["conversation_sid"]
        sent = await desk.post(
            f"/conversations/{sid}/reply",
            json={"agent": alex, "body": "Sorry to hear that! Is the base or the lid broken?"},
        )
        assert sent.status_code == 201
        await _shows(pane, "Is the base or the lid broken?")
        await pane.locator("#message").fill("The lid: it will not close.")
        await pane.locator("#send").click()
        await _shows(pane, "The lid: it will not close.")
        await expect(pane.locator("li.user").last).not_to_contain_text("sending")
        if os.environ.get("UPDATE_SCREENSHOTS"):
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
        ended = await desk.post(f"/conversations/{sid}/end", json={"agent": alex})
        assert ended.status_code == 200
    await _shows(pane, "The conversation has ended.")
    assert errors == []
    await page.close()


async def test_every_pane_a_host_keeps_follows_and_plain_hosts_get_readable_colours(
    browser: Browser, make_server: ServerFactory
) -> None:
    server = make_server()
    agent = Agent(twilio_client(server))
    errors: list[str] = []
    page = await _open(browser, server, errors, message="first question", styles="none")
    first = await _pane(page, 0)
    sid = await wait_for_conversation(agent)
    # The model starts another exchange: hosts show a second pane and keep the first.
    await page.locator("#prompt").fill("second question")
    await page.locator("#prompt").press("Enter")
    second = await _pane(page, 1)
    await _shows(second, "second question")
    await asyncio.to_thread(agent.reply, sid, "One answer for both")
    await _shows(first, "One answer for both")
    await _shows(second, "One answer for both")
    # With no style variables from the host, the pane's own colours are readable.
    colours = await first.evaluate(
        "[getComputedStyle(document.body).backgroundColor,"
        " getComputedStyle(document.querySelector('#lines li.user')).backgroundColor,"
        " getComputedStyle(document.querySelector('#lines li.user')).color]"
    )
    assert colours == ["rgb(255, 255, 255)", "rgb(29, 78, 216)", "rgb(255, 255, 255)"]
    assert errors == []
    await page.close()


async def test_the_pane_follows_the_hosts_theme(
    browser: Browser, make_server: ServerFactory
) -> None:
    server = make_server()
    errors: list[str] = []
    page = await _open(browser, server, errors, message="hello", theme="dark")
    pane = await _pane(page)
    await expect(pane.locator("html")).to_have_attribute("data-theme", "dark")
    dark = await pane.evaluate("getComputedStyle(document.body).backgroundColor")
    await page.locator("#theme").select_option("light")
    await expect(pane.locator("html")).to_have_attribute("data-theme", "light")
    light = await pane.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (dark, light) == ("rgb(31, 31, 31)", "rgb(255, 255, 255)")
    assert errors == []
    await page.close()
