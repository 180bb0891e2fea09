"""The sandbox's agent console, a Flex agent desktop: its JSON API, and the page in a real
headless Chromium (several agents in several tabs).

The browser tests need Chromium at /usr/bin/chromium (``sudo apt-get install chromium``).
Without it they are skipped, except under CI (``CI`` set), where they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Dialog, Page, expect
from twilio.request_validator import RequestValidator

from bridge.config import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FLOW_SID,
    SANDBOX_WORKFLOW_SID,
    SANDBOX_WORKSPACE_SID,
)
from tests.browser import chromium
from tests.conftest import LiveServer, ServerFactory, free_port, twilio_client

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CONSOLE_API = "/sandbox/console"
TWILIO_AUTH = (SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)


@pytest.fixture
async def browser(make_server: ServerFactory) -> AsyncIterator[Browser]:
    # Depends on make_server so the browser closes (ending its event streams) before the
    # servers stop.
    async with chromium() as launched:
        yield launched


async def open_console(
    browser: Browser | BrowserContext,
    server: LiveServer,
    viewport: dict[str, int],
    errors: list[str] | None = None,
) -> Page:
    """The console, live (in a tab of ``browser``'s own, or of a shared context). Script
    errors and console errors (such as CSP violations) are collected in ``errors``."""
    page = await browser.new_page()
    await page.set_viewport_size(viewport)  # type: ignore[arg-type]
    if errors is not None:
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{server.url}/sandbox/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def sign_in(page: Page, name: str) -> None:
    await page.locator("#agent-name").fill(name)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#agent-label")).to_have_text(name)


async def send(client: httpx.AsyncClient, user: str, msg: str, **extra: str) -> dict[str, Any]:
    response = await client.post(f"/send/{user}", json={"msg": msg, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def sandbox_bodies(client: httpx.AsyncClient) -> list[str]:
    """Every message body in the emulator, read through its Twilio REST API."""
    listed = await client.get("/sandbox/twilio/v1/Conversations", auth=TWILIO_AUTH)
    bodies: list[str] = []
    for conversation in listed.json()["conversations"]:
        messages = await client.get(conversation["links"]["messages"], auth=TWILIO_AUTH)
        bodies += [m["body"] for m in messages.json()["messages"]]
    return bodies


async def until_stored(client: httpx.AsyncClient, body: str, within: float = 10.0) -> float:
    """Wait until the emulator holds a message with ``body``; when it was first seen."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if body in await sandbox_bodies(client):
            return time.monotonic()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{body!r} never reached the emulator")


async def route_directly(client: httpx.AsyncClient, body: str) -> str:
    """A conversation routed to the agents, made through the emulator's REST API alone."""
    api = "/sandbox/twilio/v1/Conversations"
    created = await client.post(api, data={"FriendlyName": "direct"}, auth=TWILIO_AUTH)
    sid: str = created.json()["sid"]
    identity = "ab" * 32
    steps = [
        ("Participants", {"Identity": identity}),
        ("Webhooks", {"Target": "studio", "Configuration.FlowSid": SANDBOX_FLOW_SID}),
        ("Messages", {"Author": identity, "Body": body}),
    ]
    for resource, data in steps:
        response = await client.post(
            f"{api}/{sid}/{resource}",
            data=data,
            auth=TWILIO_AUTH,
            headers={"X-Twilio-Webhook-Enabled": "true"},
        )
        assert response.status_code == 201, response.text
    return sid


async def desk(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"{CONSOLE_API}/desk")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


async def queue(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    conversations: list[dict[str, Any]] = (await desk(client))["conversations"]
    return conversations


async def agent(client: httpx.AsyncClient, name: str) -> str:
    """Sign an agent in through the console's API; their worker SID."""
    response = await client.post(f"{CONSOLE_API}/agents", json={"name": name})
    assert response.status_code == 200, response.text
    sid: str = response.json()["agent"]["sid"]
    return sid


async def offer_to(client: httpx.AsyncClient, worker: str, within: float = 5.0) -> str:
    """The SID of the agent's open offer, once there is one."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        offers = [o for o in (await desk(client))["offers"] if o["agent_sid"] == worker]
        if offers:
            sid: str = offers[0]["sid"]
            return sid
        await asyncio.sleep(0.05)
    raise AssertionError(f"no offer reached {worker}")


# --- in the browser --------------------------------------------------------------------------


async def test_agent_signs_in_accepts_replies_wraps_up_and_completes(
    make_server: ServerFactory, browser: Browser
) -> None:
    server = make_server(REPLY_WAIT_SECONDS="20")
    errors: list[str] = []
    page = await open_console(browser, server, DESKTOP, errors)
    await expect(page.locator("#queue-empty")).to_be_visible()
    await sign_in(page, "agent.sam")
    await expect(page.locator("#activity")).to_have_value("Available")

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        waiting = asyncio.ensure_future(
            send(
                client,
                "alice",
                "My kettle arrived broken. Can a person help?",
                context="Order 1234, a kettle delivered on Monday; the user wants a refund.",
            )
        )
        stored = await until_stored(client, "My kettle arrived broken. Can a person help?")
        offer = page.locator("#offers .offer")
        await expect(offer).to_contain_text("My kettle arrived broken", timeout=1_000)
        assert time.monotonic() - stored < 1.0
        await expect(offer.locator(".offer-expires")).to_contain_text("Offer ends in 1m")
        [routed] = await queue(client)
        user = routed["user"]
        assert len(user) == 8
        item = page.locator(f'.queue-item[data-sid="{routed["sid"]}"]')
        await expect(item).to_contain_text("waiting for an agent")
        await expect(item).to_contain_text(f"User {user}")
        await expect(item.locator(".queue-meta")).to_contain_text("#1 in Everyone")
        await expect(item.locator(".queue-meta")).to_contain_text("offered to agent.sam")

        await offer.locator(".offer-title").click()
        context = page.locator('#transcript .message[data-role="context"]')
        await expect(context.locator(".message-author")).to_have_text("Context from the assistant")
        await expect(context.locator(".message-body")).to_have_text(
            "Order 1234, a kettle delivered on Monday; the user wants a refund."
        )
        user_message = page.locator('#transcript .message[data-role="user"]')
        await expect(user_message.locator(".message-author")).to_have_text(f"User {user}")
        await expect(user_message.locator("time")).to_have_attribute("datetime", re.compile(r"Z$"))
        await expect(page.locator("#reply")).to_be_disabled()

        await page.locator("#chat-view").get_by_role("button", name="Accept").click()
        await expect(page.locator("#chat-status")).to_have_text("with agent.sam")
        await expect(item).to_contain_text("with an agent")
        await expect(page.locator("#offers-box")).to_be_hidden()
        await expect(page.locator("#reply")).to_be_focused()
        # Flex joined the agent to the conversation under their name.
        participants = (
            twilio_client(server).conversations.v1.conversations(routed["sid"]).participants.list()
        )
        assert "agent.sam" in [p.identity for p in participants]
        # The user's waiting /send heard of it at once, before any reply.
        joined = await asyncio.wait_for(waiting, timeout=10)
        assert (joined["status"], joined["replies"]) == ("waiting", [])
        assert joined["handoff"]["state"] == "with_agent"
        fetching = asyncio.ensure_future(client.get("/replies/alice", params={"wait": "10"}))

        await page.locator("#reply").fill("Hi, I'm Sam. Sorry about the kettle!")
        await page.locator("#reply").press("Shift+Enter")
        await page.locator("#reply").press_sequentially("A refund is on its way.")
        await page.locator("#reply").press("Enter")
        reply = "Hi, I'm Sam. Sorry about the kettle!\nA refund is on its way."
        answer = (await asyncio.wait_for(fetching, timeout=10)).json()
        assert answer["status"] == "answered"
        assert answer["handoff"]["agent"] == {"name": "agent.sam"}
        assert [r["body"] for r in answer["replies"]] == [reply]
        agent_message = page.locator('#transcript .message[data-role="agent"]')
        await expect(agent_message.locator(".message-author")).to_have_text("agent.sam")
        await expect(agent_message.locator(".message-body")).to_have_text(reply)
        await expect(page.locator("#reply")).to_have_value("")

        # End chat asks first (it cannot be undone): dismissed, nothing happens.
        asked: list[str] = []

        async def answer_dialog(dialog: Dialog, accept: bool) -> None:
            asked.append(dialog.message)
            await (dialog.accept() if accept else dialog.dismiss())

        page.once("dialog", lambda dialog: answer_dialog(dialog, accept=False))
        await page.get_by_role("button", name="End chat").click()
        await page.wait_for_timeout(500)  # time for an end that should not happen
        assert asked and "End this chat?" in asked[0]
        await expect(page.locator("#chat-status")).to_have_text("with agent.sam")
        task = twilio_client(server).taskrouter.v1.workspaces(SANDBOX_WORKSPACE_SID).tasks.list()[0]
        assert task.assignment_status == "assigned"
        # Confirmed, End chat wraps up: the conversation closes, the task waits for Complete.
        page.once("dialog", lambda dialog: answer_dialog(dialog, accept=True))
        await page.get_by_role("button", name="End chat").click()
        await expect(page.locator(".transcript-end")).to_be_in_viewport()
        await expect(page.locator("#chat-status")).to_have_text("agent.sam wrapping up")
        await expect(item).to_contain_text("wrapping up")
        await expect(page.locator("#reply")).to_be_disabled()
        closed = (await client.get("/replies/alice")).json()
        assert closed["status"] == "closed"
        assert closed["note"].startswith("The agent ended this conversation")
        task = twilio_client(server).taskrouter.v1.workspaces(SANDBOX_WORKSPACE_SID).tasks.list()[0]
        assert task.assignment_status == "wrapping"

        await page.get_by_role("button", name="Complete").click()
        await expect(page.locator("#chat-status")).to_have_text("closed")
        await expect(item).to_contain_text("closed")
        task = twilio_client(server).taskrouter.v1.workspaces(SANDBOX_WORKSPACE_SID).tasks.list()[0]
        assert task.assignment_status == "completed"

        # This tab stays signed in across a reload; the name is remembered for the next.
        await page.reload()
        await expect(page.locator("#agent-label")).to_have_text("agent.sam")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.locator("#agent-name")).to_have_value("agent.sam")
        await expect(page.locator("#agent-name")).to_be_focused()
        workers = twilio_client(server).taskrouter.v1.workspaces(SANDBOX_WORKSPACE_SID).workers
        [sam] = workers.list(friendly_name="agent.sam")
        assert sam.activity_name == "Offline"
    assert errors == []


async def test_agents_in_two_tabs_offers_time_out_and_are_rejected_to_the_next(
    make_server: ServerFactory, browser: Browser
) -> None:
    server = make_server(REPLY_WAIT_SECONDS="1")
    # Offers time out after 4 s, set as an operator would, through TaskRouter's API.
    twilio = twilio_client(server)
    await asyncio.to_thread(
        twilio.taskrouter.v1.workspaces(SANDBOX_WORKSPACE_SID)
        .workflows(SANDBOX_WORKFLOW_SID)
        .update,
        task_reservation_timeout=4,
    )
    errors: list[str] = []
    context = await browser.new_context()  # one browser window, two tabs
    try:
        ann = await open_console(context, server, DESKTOP, errors)
        await sign_in(ann, "agent.ann")
        bob = await open_console(context, server, DESKTOP, errors)
        await sign_in(bob, "agent.bob")
        await ann.bring_to_front()
        await expect(ann.locator("#agent-label")).to_have_text("agent.ann")

        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await send(client, "carol", "Is anyone there?")
            # Ann has been free longest, so TaskRouter offers it to her first.
            await expect(ann.locator("#offers .offer")).to_contain_text("Is anyone there?")
            await expect(bob.locator("#offers-box")).to_be_hidden()
            item = bob.locator(".queue-item").filter(has_text="Is anyone there?")
            await expect(item.locator(".queue-meta")).to_contain_text("offered to agent.ann")

            # Ann lets it time out: it goes to Bob, and Ann to the workspace's Offline.
            await expect(bob.locator("#offers .offer")).to_contain_text(
                "Is anyone there?", timeout=10_000
            )
            await expect(ann.locator("#offers-box")).to_be_hidden()
            await expect(ann.locator("#activity")).to_have_value("Offline")
            await (
                bob.locator("#offers .offer")
                .get_by_role("button", name=re.compile("^Accept"))
                .click()
            )
            await expect(bob.locator("#chat-status")).to_have_text("with agent.bob")
            await expect(
                ann.locator(".queue-item").filter(has_text="Is anyone there?")
            ).to_contain_text("with an agent")

            # Ann comes back; Bob turns the next chat down, so it goes to her.
            await ann.bring_to_front()
            await ann.locator("#activity").select_option("Available")
            await send(client, "dave", "Hello, I need a human.")
            await expect(bob.locator("#offers .offer")).to_contain_text("I need a human")
            await (
                bob.locator("#offers .offer")
                .get_by_role("button", name=re.compile("^Reject"))
                .click()
            )
            await expect(ann.locator("#offers .offer")).to_contain_text("I need a human")
            await (
                ann.locator("#offers .offer")
                .get_by_role("button", name=re.compile("^Accept"))
                .click()
            )
            await expect(ann.locator("#chat-status")).to_have_text("with agent.ann")

        reservations = twilio.taskrouter.v1.workspaces(SANDBOX_WORKSPACE_SID).workers
        [ann_worker] = reservations.list(friendly_name="agent.ann")
        statuses = sorted(
            r.reservation_status for r in reservations(ann_worker.sid).reservations.list()
        )
        assert statuses == ["accepted", "timeout"]
    finally:
        await context.close()
    assert errors == []


async def test_message_text_is_shown_literally_never_run(
    make_server: ServerFactory, browser: Browser
) -> None:
    server = make_server()
    errors: list[str] = []
    page = await open_console(browser, server, DESKTOP, errors)
    dialogs: list[str] = []
    dismissing: list[asyncio.Future[None]] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dismissing.append(asyncio.ensure_future(dialog.dismiss()))

    page.on("dialog", on_dialog)
    image = "<img src=x onerror=alert(1)>"
    script = "<script>alert(2)</script>"
    context = '<b onmouseover="alert(3)">bold</b> & friends'
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await send(client, "mallory", image, context=context)
        await send(client, "mallory", script)

    item = page.locator(".queue-item")
    await expect(item.locator(".queue-latest-body")).to_have_text(script)
    await item.click()
    bodies = page.locator("#transcript .message-body")
    await expect(bodies).to_have_text([context, image, script])
    await page.locator('#transcript .message[data-role="context"]').hover()
    await page.wait_for_timeout(300)  # give any injected handler its chance to fire
    assert await page.locator("#transcript img, #transcript script, #transcript b").count() == 0
    assert await page.locator("#queue-list img, #queue-list script").count() == 0
    assert dialogs == []
    assert errors == []


async def test_the_parts_of_a_long_message_say_which_part_they_are(
    make_server: ServerFactory, browser: Browser
) -> None:
    server = make_server(REPLY_WAIT_SECONDS="1")
    page = await open_console(browser, server, DESKTOP)
    long = " ".join(f"word{n:04d}" for n in range(360))  # 3,239 characters: three parts
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await send(client, "lena", "short first")
        await send(client, "lena", long)
    await page.locator(".queue-item").click()
    labels = page.locator("#transcript .message .message-part")
    await expect(labels).to_have_text(["part 1/3", "part 2/3", "part 3/3"])
    # The short one is a message of its own: no label.
    await expect(page.locator("#transcript .message")).to_have_count(4)
    bodies = await page.locator("#transcript .message-body").all_inner_texts()
    assert "".join(bodies[1:]) == long


async def test_new_message_appears_in_an_open_page_within_a_second(
    make_server: ServerFactory, browser: Browser
) -> None:
    server = make_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await send(client, "nora", "first message")
        page = await open_console(browser, server, DESKTOP)
        await page.locator(".queue-item").click()
        await expect(page.locator("#transcript .message")).to_have_count(1)

        waiting = asyncio.ensure_future(send(client, "nora", "second message"))
        stored = await until_stored(client, "second message")
        await page.locator("#transcript .message-body").filter(has_text="second message").wait_for()
        elapsed = time.monotonic() - stored
        await expect(page.locator(".queue-latest-body")).to_have_text("second message")
        await waiting
    assert elapsed < 1.0, f"the new message took {elapsed:.2f}s to appear"


async def test_the_desk_and_the_user_agree_on_line_and_hours(
    make_server: ServerFactory, browser: Browser
) -> None:
    today = datetime.now(UTC).date()
    hours = f"UTC; Mon-Sun 00:00-24:00; closed {today}, {today + timedelta(days=1)}"
    server = make_server(BUSINESS_HOURS=hours, QUEUE_REFRESH_SECONDS="0.2")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await send(client, "nora", "first")
        second = await send(client, "omar", "second")
        assert second["handoff"]["state"] == "after_hours"
        page = await open_console(browser, server, DESKTOP)
        banner = page.locator("#hours")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Outside business hours")
        desk = (await client.get(f"{CONSOLE_API}/desk")).json()
        assert desk["hours"] == {"open": False, "opens_at": second["handoff"]["opens_at"]}
        # The same place in line on both sides.
        omar = (await client.get("/replies/omar", params={"wait": "0.5"})).json()
        position = omar["handoff"]["queue"]["position"]
        assert position == 2
        await expect(page.locator(".queue-item").nth(1)).to_contain_text(f"#{position} in")


async def test_phone_sized_console_works_from_the_keyboard(
    make_server: ServerFactory, browser: Browser
) -> None:
    server = make_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await send(client, "olivia", "Can I change my delivery address?")
    page = await open_console(browser, server, PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await expect(page.locator(".chat-pane")).to_be_hidden()

    # Sign in from the keyboard, then Tab from Sign out to the offer, and open it.
    await page.locator("#agent-name").fill("agent.kai")
    await page.keyboard.press("Enter")
    await expect(page.locator("#agent-label")).to_have_text("agent.kai")
    await page.locator("#sign-out").focus()
    await page.keyboard.press("Tab")
    await expect(page.locator(".offer-title")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator(".queue-pane")).to_be_hidden()
    await expect(page.locator("#chat-title")).to_be_focused()
    await expect(page.locator("#transcript .message-body")).to_have_text(
        ["Can I change my delivery address?"]
    )

    # From the heading, Accept is next and the way back is just before it.
    await page.keyboard.press("Shift+Tab")
    await expect(page.locator("#back")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#accept")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#reply")).to_be_focused()
    await page.keyboard.type("Yes, which address should we use?")
    await page.keyboard.press("Enter")
    await expect(
        page.locator('#transcript .message[data-role="agent"] .message-body')
    ).to_have_text("Yes, which address should we use?")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    await page.locator("#back").click()
    await expect(page.locator(".queue-pane")).to_be_visible()
    await expect(page.locator(".queue-item")).to_be_focused()


# --- the console's HTTP API ------------------------------------------------------------------


async def test_page_is_served_with_a_strict_content_security_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/sandbox/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # scripts come from files, never inline
    script = await client.get("/sandbox/console/static/console.js")
    assert script.status_code == 200
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "innerHTML" not in script.text
    assert (await client.get("/sandbox", follow_redirects=True)).url.path == "/sandbox/"


async def test_console_errors_are_json(client: httpx.AsyncClient) -> None:
    async def post(path: str, body: object) -> httpx.Response:
        return await client.post(f"{CONSOLE_API}/{path}", json=body)

    def error(response: httpx.Response, status: int) -> str:
        assert response.status_code == status, response.text
        code: str = response.json()["error"]["code"]
        return code

    # Signing in: a name, not a user's identity hash, not the system's.
    for name in ["", "   ", "<b>", "x" * 65, "system", "ab" * 32, 7]:
        assert error(await post("agents", {"name": name}), 400) == "invalid_agent"
    not_json = await client.post(f"{CONSOLE_API}/agents", data={"name": "a"})
    assert error(not_json, 415) == "unsupported_media_type"
    assert error(await client.post(f"{CONSOLE_API}/agents", json=["x"]), 400) == "invalid_json"
    alex = await agent(client, "agent.alex")
    assert await agent(client, "agent.alex") == alex  # signing in again is the same agent
    kim = await agent(client, "agent.kim")

    unknown = "WK" + "0" * 32
    assert error(await post(f"agents/{unknown}/activity", {"activity": "Offline"}), 404) == (
        "unknown_agent"
    )
    assert error(await post("agents/nope/activity", {"activity": "Offline"}), 400) == (
        "invalid_agent"
    )
    busy = await post(f"agents/{alex}/activity", {"activity": "Busy"})
    assert error(busy, 400) == "invalid_activity"

    await send(client, "pete", "hello")
    sid = (await queue(client))[0]["sid"]
    offer = await offer_to(client, alex)  # free longest
    assert error(await post(f"offers/{offer}/accept", {"agent": kim}), 404) == "not_found"
    assert error(await post(f"offers/WR{'0' * 32}/accept", {"agent": alex}), 404) == "not_found"
    assert error(await post(f"offers/{offer}/ignore", {"agent": alex}), 404) == "not_found"
    assert error(await post(f"offers/{offer}/accept", {}), 400) == "invalid_agent"
    early = await post(f"conversations/{sid}/reply", {"agent": alex, "body": "hi"})
    assert error(early, 409) == "not_accepted"

    # Stepping away passes the offer on; the old offer can no longer be taken.
    away = await post(f"agents/{alex}/activity", {"activity": "Unavailable"})
    assert away.json()["agent"]["activity"] == "Unavailable"
    offer_kim = await offer_to(client, kim)
    assert error(await post(f"offers/{offer}/accept", {"agent": alex}), 409) == "offer_closed"
    assert (await post(f"offers/{offer_kim}/accept", {"agent": kim})).status_code == 200
    taken = await post(f"conversations/{sid}/reply", {"agent": alex, "body": "mine?"})
    assert error(taken, 409) == "not_accepted"

    empty = await post(f"conversations/{sid}/reply", {"agent": kim, "body": "   "})
    assert empty.status_code == 400
    assert empty.json()["error"] == {
        "code": "empty_reply",
        "message": "Write a reply before sending it.",
    }
    too_long = await post(f"conversations/{sid}/reply", {"agent": kim, "body": "x" * 1601})
    assert error(too_long, 400) == "body_too_long"
    assert error(await post(f"conversations/{sid}/complete", {"agent": kim}), 409) == (
        "not_wrapping"
    )
    assert error(await post(f"conversations/{sid}/end", {"agent": alex}), 409) == "not_accepted"

    assert (await post(f"conversations/{sid}/end", {"agent": kim})).status_code == 200
    for action, body in [("end", {"agent": kim}), ("reply", {"agent": kim, "body": "late"})]:
        assert error(await post(f"conversations/{sid}/{action}", body), 409) == (
            "conversation_closed"
        )
    assert (await post(f"conversations/{sid}/complete", {"agent": kim})).status_code == 200
    again = await post(f"conversations/{sid}/complete", {"agent": kim})
    assert error(again, 409) == "conversation_closed"
    missing = await post(f"conversations/CH{'0' * 32}/end", {"agent": kim})
    assert error(missing, 404) == "not_found"


async def test_console_actions_fire_signed_sdk_webhooks(make_server: ServerFactory) -> None:
    """Like the Flex UI: console actions are SDK events, sent without any opt-in header."""
    server = make_server(SANDBOX_WEBHOOK_URLS="loopback")  # the test's receiver is local
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await _fire_sdk_webhooks(client)


async def _fire_sdk_webhooks(client: httpx.AsyncClient) -> None:
    received: list[dict[str, str]] = []
    signed: list[bool] = []
    all_in = asyncio.Event()
    port = free_port()
    url = f"http://127.0.0.1:{port}/events"
    validator = RequestValidator(SANDBOX_AUTH_TOKEN)

    async def hook(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        signed.append(bool(validator.validate(url, form, signature)))
        received.append(form)
        if len(received) >= 3:
            all_in.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/events", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await send(client, "quinn", "hello")
        sid = (await queue(client))[0]["sid"]
        created = await client.post(
            f"/sandbox/twilio/v1/Conversations/{sid}/Webhooks",
            data={"Target": "webhook", "Configuration.Url": url},
            auth=TWILIO_AUTH,
        )
        assert created.status_code == 201, created.text

        alex = await agent(client, "agent.alex")
        offer = await offer_to(client, alex)
        accepted = await client.post(f"{CONSOLE_API}/offers/{offer}/accept", json={"agent": alex})
        assert accepted.status_code == 200, accepted.text
        for action, body in [
            ("reply", {"agent": alex, "body": "Hello Quinn"}),
            ("end", {"agent": alex}),
        ]:
            response = await client.post(f"{CONSOLE_API}/conversations/{sid}/{action}", json=body)
            assert response.status_code in (200, 201), response.text
        await asyncio.wait_for(all_in.wait(), timeout=5)
        await asyncio.sleep(0.2)  # and nothing more arrives
    finally:
        await runner.cleanup()

    assert len(received) == 3 and all(signed), received
    by_type = {event["EventType"]: event for event in received}
    assert sorted(by_type) == ["onConversationStateUpdated", "onMessageAdded", "onParticipantAdded"]
    assert all(event["Source"] == "SDK" for event in received)
    assert by_type["onParticipantAdded"]["Identity"] == "agent.alex"
    assert by_type["onMessageAdded"]["Body"] == "Hello Quinn"
    assert by_type["onMessageAdded"]["ClientIdentity"] == "agent.alex"
    assert by_type["onConversationStateUpdated"]["StateTo"] == "closed"


async def test_event_stream_sends_the_queue_and_ends_by_itself(
    make_server: ServerFactory,
) -> None:
    server = make_server(REPLY_WAIT_SECONDS="20")  # a long grace period on shutdown
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await route_directly(client, "hello")
        events: list[dict[str, Any]] = []
        async with client.stream("GET", f"{CONSOLE_API}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
                    break
        assert events[0]["conversations"][0]["latest"]["body"] == "hello"

        # An open stream must not hold the server up when it stops.
        stream_task = asyncio.ensure_future(client.get(f"{CONSOLE_API}/events", timeout=30))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await asyncio.to_thread(server.stop)
        stopped = time.monotonic() - started
        finished = await stream_task
    assert finished.status_code == 200
    # Hypercorn would wait up to 25 s here (reply wait + 5) for a stream that never ends.
    assert stopped < 8.0, f"stopping took {stopped:.1f}s"
