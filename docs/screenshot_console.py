"""Take docs/console.png: the sandbox's agent console with a realistic demo in it.

Starts Flex Bridge in sandbox mode on a free port (with a throwaway database), lets a few
users reach the support team through ``/send``, has an agent sign in, accept, answer, end
and complete chats in the console itself, and saves a 1280x800 screenshot taken with
Chromium.

    .venv/bin/python docs/screenshot_console.py [--output docs/console.png]

Needs Playwright (in the ``test`` extra) and Chromium at /usr/bin/chromium
(``sudo apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.config import load_settings  # noqa: E402
from bridge.server import serve  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}


class Service:
    """Flex Bridge in sandbox mode, served from a background thread."""

    def __init__(self, database: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.settings = load_settings(
            {
                "PORT": str(port),
                "DATABASE_URL": f"sqlite:///{database}",
                "REPLY_WAIT_SECONDS": "1",
                "POLL_INTERVAL_SECONDS": "0.2",
            }
        )
        self.url = f"http://127.0.0.1:{port}"
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(serve(self.settings, shutdown_trigger=self._stop.wait))
        self._loop.close()

    def __enter__(self) -> Service:
        self._thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the service did not start")

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def send(http: httpx.Client, user: str, msg: str, context: str | None = None) -> None:
    payload = {"msg": msg} if context is None else {"msg": msg, "context": context}
    response = http.post(f"/send/{user}", json=payload)
    response.raise_for_status()


def open_latest(page: Page, text: str) -> None:
    page.locator(".queue-item").filter(has_text=text).click()
    expect(page.locator("#transcript .message-body").last).to_have_text(text)


def accept_and_reply(page: Page, reply: str) -> None:
    page.locator("#accept").click()
    expect(page.locator("#reply")).to_be_enabled()
    page.locator("#reply").fill(reply)
    page.locator("#reply").press("Enter")
    expect(page.locator('#transcript .message[data-role="agent"] .message-body').last).to_have_text(
        reply
    )


def demo(page: Page, http: httpx.Client) -> None:
    page.locator("#agent-name").fill("Alex")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#agent-label")).to_have_text("Alex")

    # A chat that is already over.
    send(http, "dan", "How do I reset my password? The link in the email has expired.")
    open_latest(page, "How do I reset my password? The link in the email has expired.")
    accept_and_reply(page, "I've sent you a fresh reset link; it works for the next hour.")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="End chat").click()
    page.get_by_role("button", name="Complete").click()
    expect(page.locator("#chat-status")).to_have_text("closed")

    # The chat on screen: context from the assistant, the user, the agent, the user again.
    first = "Hi, my kettle arrived with a cracked base. Can I get a refund, please?"
    send(
        http,
        "alice",
        first,
        context=(
            "Order #48213: an electric kettle delivered on Monday. The user reports a cracked "
            "base and has asked twice for a refund, which the assistant cannot issue."
        ),
    )
    open_latest(page, first)
    accept_and_reply(
        page,
        "Hello, I'm Alex from the support team, and I'm sorry about the kettle. I've started a "
        "full refund for order #48213; it reaches your card within 3-5 business days.",
    )
    send(http, "alice", "Thank you! Do I need to send the broken kettle back?")

    # Two users more, offered to the agent.
    send(http, "bob", "Can I still change the delivery address on my order?")
    time.sleep(1.5)
    send(http, "carol", "I was charged twice for my subscription this month.")

    open_latest(page, "Thank you! Do I need to send the broken kettle back?")
    page.locator("#reply").fill("No need: please recycle it. ")
    page.locator("#reply").focus()
    time.sleep(1.2)  # let the waiting times tick past zero


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "console.png")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(
            "Chromium is missing: install it with `sudo apt-get install chromium`.", file=sys.stderr
        )
        return 1
    with (
        tempfile.TemporaryDirectory() as tmp,
        Service(Path(tmp) / "bridge.db") as service,
        sync_playwright() as playwright,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            page.goto(f"{service.url}/sandbox/")
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            demo(page, http)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.output))
        finally:
            browser.close()  # ends the page's event stream before the service stops
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
