"""Where a waiting user stands, end to end: several users and TaskRouter workers through
real HTTP and the real ``twilio`` library as the agents' desktops. Positions move as
agents accept, the usual wait appears only with history, after-hours and nobody-available
answers, and the choice once nobody accepts in time (canceling the task in TaskRouter)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from twilio.rest import Client

from tests.conftest import LiveServer, ServerFactory, twilio_client
from tests.test_flex_routing import workspace

FAST = {"ROUTING": "interactions", "QUEUE_REFRESH_SECONDS": "0.2", "REPLY_WAIT_SECONDS": "1"}


def closed_today() -> str:
    today = datetime.now(UTC).date()
    return f"UTC; Mon-Sun 00:00-24:00; closed {today}, {today + timedelta(days=1)}"


def sign_in(twilio: Client, name: str) -> str:
    """A worker in Available, as an agent signing in to Flex."""
    ws = workspace(twilio)
    available = ws.activities.list(friendly_name="Available")[0].sid
    return str(ws.workers.create(friendly_name=name, activity_sid=available).sid)


def accept_next(twilio: Client, worker_sid: str) -> str:
    """Accept the worker's pending offer; the task's SID."""
    ws = workspace(twilio)
    (offer,) = ws.workers(worker_sid).reservations.list(reservation_status="pending")
    ws.workers(worker_sid).reservations(offer.sid).update(reservation_status="accepted")
    return str(offer.task_sid)


def complete(twilio: Client, task_sid: str) -> None:
    workspace(twilio).tasks(task_sid).update(assignment_status="completed")


def pending_offers(twilio: Client, worker_sid: str) -> list[Any]:
    reservations = workspace(twilio).workers(worker_sid).reservations
    return list(reservations.list(reservation_status="pending"))


async def offered(twilio: Client, worker_sid: str) -> None:
    for _ in range(100):
        if await asyncio.to_thread(pending_offers, twilio, worker_sid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no offer reached the worker")


async def standing(http: httpx.AsyncClient, user: str, **wanted: Any) -> dict[str, Any]:
    """The user's handoff status, once it says what is wanted (a waiting call keeps the
    queue figures fresh while it waits)."""
    handoff: dict[str, Any] = {}
    for _ in range(40):
        answer: dict[str, Any] = (await http.get(f"/replies/{user}", params={"wait": "0.5"})).json()
        handoff = answer["handoff"]
        queue = handoff["queue"] or {}
        if all(handoff.get(k, queue.get(k)) == v for k, v in wanted.items()):
            return answer
    raise AssertionError(f"{user} never stood at {wanted}: last {handoff}")


async def test_positions_move_as_agents_accept_and_the_wait_needs_history(
    make_server: ServerFactory,
) -> None:
    server = make_server(**FAST)
    twilio = twilio_client(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for user in ("ann", "bob", "cy"):
            sent = (await http.post(f"/send/{user}", json={"msg": f"{user} needs help"})).json()
            assert sent["status"] == "waiting"
        # Nobody signed in: in line, in order, nobody available, no history to quote.
        for position, user in enumerate(("ann", "bob", "cy"), start=1):
            answer = await standing(http, user, position=position)
            assert answer["handoff"]["state"] == "no_agents"
            assert answer["handoff"]["queue"]["agents_available"] == 0
            assert answer["handoff"]["queue"]["expected_wait_seconds"] is None
            assert "No agent of the support team is available right now" in answer["note"]
        cy = await standing(http, "cy", position=3)
        assert "third in line" in cy["note"]

        alex = await asyncio.to_thread(sign_in, twilio, "alex")
        await offered(twilio, alex)
        # Offered, not yet accepted: still first in line; an agent is available now.
        ann = await standing(http, "ann", position=1, agents_available=1)
        assert ann["handoff"]["state"] == "queued"
        first = await asyncio.to_thread(accept_next, twilio, alex)
        await standing(http, "ann", state="with_agent")
        await standing(http, "bob", position=1)
        await standing(http, "cy", position=2)

        # History builds up: five accepted tasks in the queue's last hour.
        await asyncio.to_thread(complete, twilio, first)
        for user in ("dee", "eve"):
            await http.post(f"/send/{user}", json={"msg": "hello"})
        for _ in range(4):
            await offered(twilio, alex)
            task = await asyncio.to_thread(accept_next, twilio, alex)
            await asyncio.to_thread(complete, twilio, task)
        await http.post("/send/fay", json={"msg": "me too"})
        fay: dict[str, Any] = {}
        for _ in range(40):  # the history is read less often than the line
            fay = (await http.get("/replies/fay", params={"wait": "0.5"})).json()
            if fay["handoff"]["queue"] and fay["handoff"]["queue"]["expected_wait_seconds"]:
                break
        wait = fay["handoff"]["queue"]["expected_wait_seconds"]
        assert 0 <= wait["low"] <= wait["high"] <= 60  # these agents answered in seconds
        assert "Lately an agent usually picked up within" in fay["note"]


async def test_after_hours_the_message_is_taken_with_the_opening_time(
    make_server: ServerFactory,
) -> None:
    server = make_server(**FAST, BUSINESS_HOURS=closed_today())
    twilio = twilio_client(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        sent = (await http.post("/send/ann", json={"msg": "Are you there?"})).json()
        assert sent["status"] == "waiting"
        assert sent["handoff"]["state"] == "after_hours"
        opens = datetime.now(UTC).date() + timedelta(days=2)
        assert sent["handoff"]["opens_at"] == f"{opens}T00:00:00Z"
        assert "closed now and opens on" in sent["note"]
        # Taken: the conversation and its task exist for the team's morning.
        tasks = await asyncio.to_thread(lambda: workspace(twilio).tasks.list())
        assert [t.assignment_status for t in tasks] == ["pending"]


async def test_after_hours_decline_sends_nothing(make_server: ServerFactory) -> None:
    server = make_server(**FAST, BUSINESS_HOURS=closed_today(), UNAVAILABLE_POLICY="decline")
    twilio = twilio_client(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        sent = (await http.post("/send/ann", json={"msg": "Are you there?"})).json()
    assert sent["status"] == "unavailable"
    assert sent["handoff"]["state"] == "after_hours"
    assert "Nothing was sent" in sent["note"]
    assert await asyncio.to_thread(lambda: twilio.conversations.v1.conversations.list()) == []


async def test_nobody_signed_in_and_decline_sends_nothing_until_someone_is(
    make_server: ServerFactory,
) -> None:
    server = make_server(**FAST, UNAVAILABLE_POLICY="decline")
    twilio = twilio_client(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        sent = (await http.post("/send/ann", json={"msg": "Hello?"})).json()
        assert (sent["status"], sent["handoff"]["state"]) == ("unavailable", "no_agents")
        assert "No agent of the support team is available right now" in sent["note"]
        await asyncio.to_thread(sign_in, twilio, "alex")
        await asyncio.sleep(0.3)  # past the cached answer
        again = (await http.post("/send/ann", json={"msg": "Hello?"})).json()
        assert again["status"] == "waiting"


async def choices_offered(http: httpx.AsyncClient, user: str) -> dict[str, Any]:
    answer: dict[str, Any] = (await http.get(f"/replies/{user}", params={"wait": "3"})).json()
    assert answer["handoff"]["choices"] == [
        "keep_waiting",
        "leave_message",
        "continue_with_assistant",
    ], answer
    return answer


async def test_nobody_accepts_in_time_and_the_user_carries_on_with_the_assistant(
    make_server: ServerFactory,
) -> None:
    server = make_server(**{**FAST, "ASSIGNMENT_TIMEOUT_SECONDS": "1", "REPLY_WAIT_SECONDS": "5"})
    twilio = twilio_client(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await http.post("/send/ann", json={"msg": "Hello?"})
        answer = await choices_offered(http, "ann")
        assert "chooseNextStep" in answer["note"]
        done = (await http.post("/choose/ann", json={"choice": "continue_with_assistant"})).json()
        assert (done["status"], done["closed_by"]) == ("closed", "user")
        (task,) = await asyncio.to_thread(lambda: workspace(twilio).tasks.list())
        assert task.assignment_status == "canceled"
        assert task.reason == "The user chose to continue with the assistant"
        (conversation,) = await asyncio.to_thread(twilio.conversations.v1.conversations.list)
        assert conversation.state == "closed"


async def test_leaving_a_message_keeps_the_task_for_an_agent_later(
    make_server: ServerFactory,
) -> None:
    server = make_server(**{**FAST, "ASSIGNMENT_TIMEOUT_SECONDS": "1", "REPLY_WAIT_SECONDS": "5"})
    twilio = twilio_client(server)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await http.post("/send/ann", json={"msg": "Please call me back"})
        await choices_offered(http, "ann")
        left = (await http.post("/choose/ann", json={"choice": "leave_message"})).json()
        assert (left["status"], left["handoff"]["choice"]) == ("waiting", "leave_message")
        assert "left their message" in left["note"]
        later = (await http.get("/replies/ann", params={"wait": "1.5"})).json()
        assert later["handoff"]["choices"] is None  # not asked again
        alex = await asyncio.to_thread(sign_in, twilio, "alex")
        await offered(twilio, alex)
        await asyncio.to_thread(accept_next, twilio, alex)
        await standing(http, "ann", state="with_agent")


async def test_choose_refuses_what_it_cannot_do(make_server: ServerFactory) -> None:
    server: LiveServer = make_server(**FAST)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        nothing = await http.post("/choose/ann", json={"choice": "keep_waiting"})
        assert nothing.status_code == 409
        assert nothing.json()["error"]["code"] == "nothing_to_choose"
        await http.post("/send/ann", json={"msg": "hi"})
        for body in ({"choice": "later"}, {"choice": None}, {}, {"choice": ["keep_waiting"]}):
            refused = await http.post("/choose/ann", json=body)
            assert refused.status_code == 400, body
            assert refused.json()["error"]["code"] == "invalid_choice"
        not_json = await http.post("/choose/ann", content=b"keep_waiting")
        assert not_json.status_code == 400
        assert not_json.json()["error"]["code"] == "invalid_json"
        # Refusals changed nothing: still waiting, nothing chosen.
        seen = (await http.get("/replies/ann")).json()
        assert seen["status"] == "waiting" and seen["handoff"]["choice"] is None
