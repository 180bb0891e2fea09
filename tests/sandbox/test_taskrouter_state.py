"""The TaskRouter workspace model: assignment as TaskRouter does it, time passed in."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bridge.config import SANDBOX_ACCOUNT_SID
from bridge.sandbox.shared.clock import now
from bridge.sandbox.shared.errors import EmulatorError
from bridge.sandbox.taskrouter.state import Task, Workspace, WorkspaceEvent


@pytest.fixture
def workspace() -> Workspace:
    return Workspace(SANDBOX_ACCOUNT_SID)


def chat_task(workspace: Workspace, **attributes: object) -> Task:
    workflow = next(iter(workspace.workflows.values()))
    return workspace.create_task(
        workflow_sid=workflow.sid,
        attributes=json.dumps(attributes),
        task_channel="chat",
        priority=None,
        timeout=None,
    )


def status(task: Task) -> str:
    """Read afresh (the model changes it under the test's feet)."""
    return task.assignment_status


def events(workspace: Workspace) -> list[str]:
    return [event.event_type for event in workspace.events]


def test_a_new_workspace_is_set_up_like_flex(workspace: Workspace) -> None:
    names = {a.friendly_name: a.available for a in workspace.activities.values()}
    assert names == {"Offline": False, "Available": True, "Unavailable": False}
    assert workspace.activities[workspace.default_activity_sid].friendly_name == "Offline"
    assert "chat" in {c.unique_name for c in workspace.channels.values()}
    (queue,) = workspace.queues.values()
    (workflow,) = workspace.workflows.values()
    assert workflow.queue_sid() == queue.sid


def test_a_task_waits_until_a_worker_is_available_then_runs_its_course(
    workspace: Workspace,
) -> None:
    alex = workspace.add_worker("alex", None, None)  # Offline
    task = chat_task(workspace, conversation_sid="CH1")
    assert status(task) == "pending"
    workspace.set_activity(alex, workspace.activity_named("Available").sid)
    assert status(task) == "reserved"
    (reservation,) = workspace.reservations.values()
    assert (reservation.worker_sid, reservation.reservation_status) == (alex.sid, "pending")
    workspace.answer_reservation(reservation, "accepted")
    assert (task.assignment_status, reservation.reservation_status) == ("assigned", "accepted")
    workspace.update_task(task, assignment_status="wrapping")
    assert (task.assignment_status, reservation.reservation_status) == ("wrapping", "wrapping")
    workspace.update_task(task, assignment_status="completed", reason="done")
    assert (task.assignment_status, reservation.reservation_status) == ("completed", "completed")
    assert events(workspace) == [
        "task.created",
        "task-queue.entered",
        "worker.activity.update",
        "reservation.created",
        "reservation.accepted",
        "reservation.wrapup",
        "task.wrapup",
        "reservation.completed",
        "task.completed",
    ]


def test_a_rejected_or_unanswered_offer_goes_to_the_next_worker(workspace: Workspace) -> None:
    available = workspace.activity_named("Available").sid
    alex = workspace.add_worker("alex", None, available)
    kim = workspace.add_worker("kim", None, available)
    task = chat_task(workspace)
    first = next(r for r in workspace.reservations.values() if r.reservation_status == "pending")
    workspace.answer_reservation(first, "rejected")
    second = next(r for r in workspace.reservations.values() if r.reservation_status == "pending")
    assert {first.worker_sid, second.worker_sid} == {alex.sid, kim.sid}
    workspace.run_timers(now() + timedelta(seconds=121))
    assert second.reservation_status == "timeout"
    late = workspace.workers[second.worker_sid]
    assert workspace.activities[late.activity_sid].friendly_name == "Offline"
    assert task.assignment_status == "pending"  # nobody left who has not passed it over


def test_capacity_one_chat_at_a_time_and_queue_order(workspace: Workspace) -> None:
    alex = workspace.add_worker("alex", None, workspace.activity_named("Available").sid)
    first = chat_task(workspace)
    second = chat_task(workspace)
    urgent = workspace.create_task(
        workflow_sid=first.workflow_sid,
        attributes="{}",
        task_channel="chat",
        priority=10,
        timeout=None,
    )
    assert status(first) == "reserved"  # the first, before the later ones
    assert status(second) == status(urgent) == "pending"
    (offer,) = [r for r in workspace.reservations.values() if r.worker_sid == alex.sid]
    workspace.answer_reservation(offer, "accepted")
    workspace.update_task(first, assignment_status="completed")
    assert status(urgent) == "reserved"  # priority before age
    assert status(second) == "pending"


def test_canceling_and_timing_out(workspace: Workspace) -> None:
    waiting = chat_task(workspace)
    workspace.update_task(waiting, assignment_status="canceled", reason="user left")
    assert waiting.assignment_status == "canceled"
    with pytest.raises(EmulatorError):
        workspace.update_task(waiting, assignment_status="completed")
    stale = workspace.create_task(
        workflow_sid=waiting.workflow_sid,
        attributes="{}",
        task_channel="chat",
        priority=None,
        timeout=60,
    )
    workspace.run_timers(now() + timedelta(seconds=61))
    assert stale.assignment_status == "canceled" and stale.reason == "Task TTL Exceeded"
    assert "workflow.timeout" in events(workspace)


def test_event_parameters_name_the_task_and_worker(workspace: Workspace) -> None:
    heard: list[WorkspaceEvent] = []
    workspace.subscribe(heard.append)
    alex = workspace.add_worker(
        "alex", '{"team": "support"}', workspace.activity_named("Available").sid
    )
    task = chat_task(workspace, conversation_sid="CH9")
    accepted = next(e for e in heard if e.event_type == "reservation.created")
    assert accepted.params["WorkerName"] == "alex" and accepted.params["TaskSid"] == task.sid
    assert json.loads(accepted.params["TaskAttributes"]) == {"conversation_sid": "CH9"}
    assert accepted.params["TaskChannelUniqueName"] == "chat"
    assert accepted.params["WorkerSid"] == alex.sid
