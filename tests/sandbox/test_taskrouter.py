"""TaskRouter in the sandbox, driven by the real ``twilio`` library as Flex tooling drives
Twilio, checked against TaskRouter's API description."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bridge.config import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN
from tests.conftest import LiveServer, ServerFactory, free_port
from tests.sandbox.spec import assert_matches

WS = "/v1/Workspaces/{Sid}"
TASK = "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}"


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server(SANDBOX_WEBHOOK_URLS="loopback")


@pytest.fixture
def taskrouter(server: LiveServer) -> Client:
    client = Client(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    client.taskrouter.base_url = f"{server.url}/sandbox/taskrouter"
    return client


@pytest.fixture
def raw(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.url}/sandbox/taskrouter",
        auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN),
    ) as client:
        yield client


def test_the_workspace_is_flex_shaped_and_matches_the_spec(
    taskrouter: Client, raw: httpx.Client
) -> None:
    (workspace,) = taskrouter.taskrouter.v1.workspaces.list()
    ws = taskrouter.taskrouter.v1.workspaces(workspace.sid)
    assert {a.friendly_name for a in ws.activities.list()} == {
        "Offline",
        "Available",
        "Unavailable",
    }
    assert "chat" in {c.unique_name for c in ws.task_channels.list()}
    (queue,) = ws.task_queues.list()
    (workflow,) = ws.workflows.list()
    assert (
        json.loads(workflow.configuration)["task_routing"]["default_filter"]["queue"] == queue.sid
    )
    base = f"/v1/Workspaces/{workspace.sid}"
    assert_matches(raw.get(base).json(), WS, "get", 200, "taskrouter")
    for path, spec_path in (
        ("/Activities", "/v1/Workspaces/{WorkspaceSid}/Activities"),
        ("/TaskQueues", "/v1/Workspaces/{WorkspaceSid}/TaskQueues"),
        ("/Workflows", "/v1/Workspaces/{WorkspaceSid}/Workflows"),
        ("/TaskChannels", "/v1/Workspaces/{WorkspaceSid}/TaskChannels"),
    ):
        assert_matches(raw.get(base + path).json(), spec_path, "get", 200, "taskrouter")


def test_a_task_from_pending_to_completed_through_the_library(
    taskrouter: Client, raw: httpx.Client
) -> None:
    (workspace,) = taskrouter.taskrouter.v1.workspaces.list()
    ws = taskrouter.taskrouter.v1.workspaces(workspace.sid)
    available = ws.activities.list(friendly_name="Available")[0].sid
    (workflow,) = ws.workflows.list()
    (queue,) = ws.task_queues.list()
    alex = ws.workers.create(friendly_name="alex", attributes=json.dumps({"full_name": "Alex"}))
    assert alex.activity_name == "Offline" and not alex.available
    task = ws.tasks.create(
        workflow_sid=workflow.sid,
        task_channel="chat",
        attributes=json.dumps({"conversation_sid": "CH" + "1" * 32}),
    )
    assert task.assignment_status == "pending"
    waiting = ws.task_queues(queue.sid).real_time_statistics().fetch()
    assert waiting.tasks_by_status["pending"] == 1 and waiting.total_available_workers == 0
    assert waiting.longest_task_waiting_sid == task.sid

    ws.workers(alex.sid).update(activity_sid=available)
    assert ws.tasks(task.sid).fetch().assignment_status == "reserved"
    (offer,) = ws.tasks(task.sid).reservations.list()
    assert (offer.worker_name, offer.reservation_status) == ("alex", "pending")
    accepted = ws.tasks(task.sid).reservations(offer.sid).update(reservation_status="accepted")
    assert accepted.reservation_status == "accepted"
    assert ws.tasks(task.sid).fetch().assignment_status == "assigned"
    ws.tasks(task.sid).update(assignment_status="wrapping")
    done = ws.tasks(task.sid).update(assignment_status="completed", reason="resolved")
    assert (done.assignment_status, done.reason) == ("completed", "resolved")

    base = f"/v1/Workspaces/{workspace.sid}"
    assert_matches(raw.get(f"{base}/Tasks/{task.sid}").json(), TASK, "get", 200, "taskrouter")
    assert_matches(
        raw.get(f"{base}/Tasks/{task.sid}/Reservations").json(),
        "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations",
        "get",
        200,
        "taskrouter",
    )
    assert_matches(
        raw.get(f"{base}/Workers/{alex.sid}").json(),
        "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}",
        "get",
        200,
        "taskrouter",
    )
    real_time = raw.get(f"{base}/TaskQueues/{queue.sid}/RealTimeStatistics").json()
    assert_matches(
        real_time,
        "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics",
        "get",
        200,
        "taskrouter",
    )
    assert real_time["total_tasks"] == 0 and real_time["total_available_workers"] == 1
    cumulative = raw.get(f"{base}/TaskQueues/{queue.sid}/CumulativeStatistics").json()
    assert_matches(
        cumulative,
        "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/CumulativeStatistics",
        "get",
        200,
        "taskrouter",
    )
    assert (cumulative["tasks_entered"], cumulative["tasks_completed"]) == (1, 1)
    assert (cumulative["reservations_created"], cumulative["reservations_accepted"]) == (1, 1)
    mine = raw.get(f"{base}/Workers/{alex.sid}/Reservations/{offer.sid}").json()
    assert_matches(
        mine,
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations/{Sid}",
        "get",
        200,
        "taskrouter",
    )
    assert mine["url"].endswith(f"/Workers/{alex.sid}/Reservations/{offer.sid}")


def test_an_agent_answers_offers_through_their_worker(taskrouter: Client) -> None:
    (workspace,) = taskrouter.taskrouter.v1.workspaces.list()
    ws = taskrouter.taskrouter.v1.workspaces(workspace.sid)
    activity = {a.friendly_name: a.sid for a in ws.activities.list()}
    (workflow,) = ws.workflows.list()
    alex = ws.workers.create(friendly_name="alex", activity_sid=activity["Available"])
    sam = ws.workers.create(friendly_name="sam")
    task = ws.tasks.create(workflow_sid=workflow.sid, task_channel="chat")
    (offer,) = ws.workers(alex.sid).reservations.list(reservation_status="pending")
    with pytest.raises(TwilioRestException) as elsewhere:
        ws.workers(sam.sid).reservations(offer.sid).fetch()  # not sam's to answer
    assert elsewhere.value.status == 404
    with pytest.raises(TwilioRestException):
        ws.workers(alex.sid).reservations(offer.sid).update(
            reservation_status="rejected", worker_activity_sid="WA" + "9" * 32
        )
    assert ws.tasks(task.sid).fetch().assignment_status == "reserved"  # nothing changed
    rejected = (
        ws.workers(alex.sid)
        .reservations(offer.sid)
        .update(reservation_status="rejected", worker_activity_sid=activity["Unavailable"])
    )
    assert rejected.reservation_status == "rejected"
    assert ws.workers(alex.sid).fetch().activity_name == "Unavailable"
    assert ws.tasks(task.sid).fetch().assignment_status == "pending"
    ws.workers(sam.sid).update(activity_sid=activity["Available"])
    (second,) = ws.workers(sam.sid).reservations.list(reservation_status="pending")
    ws.workers(sam.sid).reservations(second.sid).update(reservation_status="accepted")
    assert ws.tasks(task.sid).fetch().assignment_status == "assigned"


def test_refusals_are_twilio_errors(taskrouter: Client) -> None:
    (workspace,) = taskrouter.taskrouter.v1.workspaces.list()
    ws = taskrouter.taskrouter.v1.workspaces(workspace.sid)
    with pytest.raises(TwilioRestException) as missing:
        taskrouter.taskrouter.v1.workspaces("WS" + "9" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)
    (workflow,) = ws.workflows.list()
    task = ws.tasks.create(workflow_sid=workflow.sid, task_channel="chat")
    with pytest.raises(TwilioRestException) as refused:
        ws.tasks(task.sid).update(assignment_status="completed")  # never assigned
    assert refused.value.status == 400
    with pytest.raises(TwilioRestException):
        ws.tasks.create(workflow_sid=workflow.sid, attributes="{not json")


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/taskrouter-events"
        self.events: list[tuple[dict[str, str], dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.events.append((dict(request.headers), {k: str(v) for k, v in form.items()}))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/taskrouter-events", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    yield found
    await runner.cleanup()


async def test_event_callbacks_are_signed_and_filtered(
    taskrouter: Client, receiver: Receiver
) -> None:
    def drive() -> None:
        (workspace,) = taskrouter.taskrouter.v1.workspaces.list()
        ws = taskrouter.taskrouter.v1.workspaces(workspace.sid)
        ws.update(
            event_callback_url=receiver.url,
            events_filter="task.created,reservation.accepted,task.wrapup,task.completed",
        )
        available = ws.activities.list(friendly_name="Available")[0].sid
        (workflow,) = ws.workflows.list()
        ws.workers.create(friendly_name="kim", activity_sid=available)
        task = ws.tasks.create(workflow_sid=workflow.sid, task_channel="chat")
        (offer,) = ws.tasks(task.sid).reservations.list()
        ws.tasks(task.sid).reservations(offer.sid).update(reservation_status="accepted")
        ws.tasks(task.sid).update(assignment_status="wrapping")
        ws.tasks(task.sid).update(assignment_status="completed")

    await asyncio.to_thread(drive)
    for _ in range(100):
        if len(receiver.events) >= 4:
            break
        await asyncio.sleep(0.05)
    validator = RequestValidator(SANDBOX_AUTH_TOKEN)
    kinds = [form["EventType"] for _, form in receiver.events]
    assert sorted(kinds) == sorted(
        ["task.created", "reservation.accepted", "task.wrapup", "task.completed"]
    )
    for headers, form in receiver.events:
        assert validator.validate(receiver.url, form, headers["X-Twilio-Signature"])
        assert form["AccountSid"] == SANDBOX_ACCOUNT_SID and form["TaskSid"].startswith("WT")
    accepted = next(
        form for _, form in receiver.events if form["EventType"] == "reservation.accepted"
    )
    assert accepted["WorkerName"] == "kim" and accepted["ReservationSid"].startswith("WR")


def test_an_event_callback_url_elsewhere_is_refused(make_server: ServerFactory) -> None:
    server = make_server()  # embedded: only the bridge's own URLs
    client = Client(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    client.taskrouter.base_url = f"{server.url}/sandbox/taskrouter"
    (workspace,) = client.taskrouter.v1.workspaces.list()
    with pytest.raises(TwilioRestException) as refused:
        client.taskrouter.v1.workspaces(workspace.sid).update(
            event_callback_url="http://169.254.169.254/latest"
        )
    assert refused.value.status == 400


def test_tasks_are_found_by_their_attributes(taskrouter: Client, raw: httpx.Client) -> None:
    (workspace,) = taskrouter.taskrouter.v1.workspaces.list()
    ws = taskrouter.taskrouter.v1.workspaces(workspace.sid)
    (workflow,) = ws.workflows.list()
    made = {
        name: ws.tasks.create(
            workflow_sid=workflow.sid,
            task_channel="chat",
            attributes=json.dumps(attributes),
        ).sid
        for name, attributes in {
            "ann": {"conversationSid": "CH1", "customer": {"tier": "gold"}, "skills": ["fr"]},
            "bob": {"conversationSid": "CH2", "customer": {"tier": "silver"}, "priority": 5},
        }.items()
    }

    def found(expression: str, **more: object) -> set[str]:
        listed = ws.tasks.list(evaluate_task_attributes=expression, **more)
        return {name for name, sid in made.items() if sid in {t.sid for t in listed}}

    assert found('conversationSid == "CH1"') == {"ann"}
    assert found("conversationSid == 'CH2'") == {"bob"}
    assert found('customer.tier IN ["gold", "platinum"]') == {"ann"}
    assert found('skills HAS "fr" OR priority > 3') == {"ann", "bob"}
    assert found('(conversationSid == "CH1" and priority > 3) || missing == null') == {
        "ann",
        "bob",
    }
    assert found('customer.tier NOT IN ["gold"]') == {"bob"}
    assert found('conversationSid == "CH1"', assignment_status=["canceled"]) == set()
    for broken in ('conversationSid == "CH1', "conversationSid ==", "(a == 1", "a = 1", "a ~ 1"):
        refused = raw.get(
            f"/v1/Workspaces/{workspace.sid}/Tasks", params={"EvaluateTaskAttributes": broken}
        )
        assert refused.status_code == 400, broken
        assert refused.json()["code"] == 20001


def test_tasks_are_listed_in_the_ordering_asked_for(taskrouter: Client, raw: httpx.Client) -> None:
    (workspace,) = taskrouter.taskrouter.v1.workspaces.list()
    ws = taskrouter.taskrouter.v1.workspaces(workspace.sid)
    (workflow,) = ws.workflows.list()
    made = [
        ws.tasks.create(workflow_sid=workflow.sid, task_channel="chat", priority=priority).sid
        for priority in (0, 5, 0, 5)
    ]
    first, urgent, third, last = made

    def order(ordering: str | None = None, **more: object) -> list[str]:
        listed = ws.tasks.list(ordering=ordering, **more) if ordering else ws.tasks.list(**more)
        return [t.sid for t in listed]

    assert order() == made  # oldest first
    assert order("DateCreated:desc") == made[::-1]
    assert order("Priority:desc,DateCreated:asc") == [urgent, last, first, third]
    assert order("Priority:asc,VirtualStartTime:desc") == [third, first, last, urgent]
    assert order(priority=5) == [urgent, last]
    assert order(task_queue_name="Everyone", workflow_name="Assign to Anyone") == made
    assert order(task_queue_name="Nobody") == []
    for broken in ("Priority", "Priority:up", "Age:asc", "DateCreated:asc,VirtualStartTime:asc"):
        refused = raw.get(f"/v1/Workspaces/{workspace.sid}/Tasks", params={"Ordering": broken})
        assert refused.status_code == 400, broken
        assert refused.json()["code"] == 20001
