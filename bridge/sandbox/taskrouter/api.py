"""The TaskRouter v1 REST API subset Flex routing uses, at ``/sandbox/taskrouter/v1``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from quart import Response, current_app, jsonify, request

from bridge.sandbox.outbound import WebhookTargets
from bridge.sandbox.shared.clock import now
from bridge.sandbox.shared.errors import check_json_attributes, invalid, not_found
from bridge.sandbox.shared.rest import base_url, created, listing, no_content, read_form, twilio_api
from bridge.sandbox.taskrouter import resources
from bridge.sandbox.taskrouter.expressions import matches
from bridge.sandbox.taskrouter.state import Reservation, Task, Workspace

T = TypeVar("T")

#: Where a client points ``client.taskrouter.base_url``.
API_PREFIX = "/sandbox/taskrouter"
api = twilio_api("taskrouter_api", f"{API_PREFIX}/v1")
MAX_PAGE = 1000
EVENT_TYPES = (
    "task.created",
    "task.canceled",
    "task.completed",
    "task.wrapup",
    "task-queue.entered",
    "reservation.created",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.canceled",
    "reservation.wrapup",
    "reservation.completed",
    "worker.activity.update",
    "workflow.timeout",
)


def _base() -> str:
    return base_url(API_PREFIX)


def _workspace(sid: str) -> Workspace:
    ws: Workspace = current_app.config["SANDBOX_WORKSPACE"]
    if sid != ws.sid:
        raise not_found(f"/Workspaces/{sid}")
    return ws


def _listing(
    ws: Workspace,
    key: str,
    items: Sequence[T],
    render: Callable[[Workspace, str, T], dict[str, Any]],
    path: str,
    filters: dict[str, str] | None = None,
) -> Response:
    base = _base()
    return listing(
        key,
        items,
        lambda item: render(ws, base, item),
        f"{base}/v1/Workspaces/{ws.sid}/{path}",
        maximum=MAX_PAGE,
        filters=filters,
    )


def _whole(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(f"{name} must be a whole number") from None


# --- workspaces -----------------------------------------------------------------------------


@api.get("/Workspaces")
async def list_workspaces() -> Response:
    ws: Workspace = current_app.config["SANDBOX_WORKSPACE"]
    base = _base()
    return listing(
        "workspaces",
        [ws],
        lambda item: resources.workspace(item, base),
        f"{base}/v1/Workspaces",
        maximum=MAX_PAGE,
    )


@api.get("/Workspaces/<sid>")
async def fetch_workspace(sid: str) -> Response:
    return jsonify(resources.workspace(_workspace(sid), _base()))


@api.post("/Workspaces/<sid>")
async def update_workspace(sid: str) -> Response:
    ws = _workspace(sid)
    form = await read_form()
    url = form.get("EventCallbackUrl")
    if url is not None:
        targets: WebhookTargets = current_app.config["SANDBOX_WEBHOOK_TARGETS"]
        if url and not targets.allows(url):
            raise invalid(
                "EventCallbackUrl is not one this sandbox delivers to: only the bridge's own "
                "URLs (and loopback URLs for the stand-alone sandbox); add more with "
                "SANDBOX_WEBHOOK_URLS"
            )
        ws.event_callback_url = url or None
    if "EventsFilter" in form:
        wanted = [e.strip() for e in form["EventsFilter"].split(",") if e.strip()]
        unknown = [e for e in wanted if e not in EVENT_TYPES]
        if unknown:
            raise invalid(f"Invalid EventsFilter: {', '.join(unknown)}")
        ws.events_filter = wanted
    if form.get("FriendlyName"):
        ws.friendly_name = form["FriendlyName"]
    for name, attribute in (
        ("DefaultActivitySid", "default_activity_sid"),
        ("TimeoutActivitySid", "timeout_activity_sid"),
    ):
        if form.get(name):
            if form[name] not in ws.activities:
                raise invalid(f"{name} {form[name]} does not exist in this workspace")
            setattr(ws, attribute, form[name])
    ws.date_updated = now()
    return jsonify(resources.workspace(ws, _base()))


# --- activities, channels, queues, workflows --------------------------------------------------


@api.get("/Workspaces/<ws_sid>/Activities")
async def list_activities(ws_sid: str) -> Response:
    ws = _workspace(ws_sid)
    name = request.args.get("FriendlyName")
    items = [a for a in ws.activities.values() if name is None or a.friendly_name == name]
    return _listing(ws, "activities", items, resources.activity, "Activities")


@api.get("/Workspaces/<ws_sid>/Activities/<sid>")
async def fetch_activity(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    found = ws.activities.get(sid)
    if found is None:
        raise not_found(f"/Workspaces/{ws.sid}/Activities/{sid}")
    return jsonify(resources.activity(ws, _base(), found))


@api.get("/Workspaces/<ws_sid>/TaskChannels")
async def list_task_channels(ws_sid: str) -> Response:
    ws = _workspace(ws_sid)
    return _listing(
        ws, "channels", list(ws.channels.values()), resources.task_channel, "TaskChannels"
    )


@api.get("/Workspaces/<ws_sid>/TaskChannels/<sid>")
async def fetch_task_channel(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    for channel in ws.channels.values():
        if sid in (channel.sid, channel.unique_name):
            return jsonify(resources.task_channel(ws, _base(), channel))
    raise not_found(f"/Workspaces/{ws.sid}/TaskChannels/{sid}")


@api.get("/Workspaces/<ws_sid>/TaskQueues")
async def list_task_queues(ws_sid: str) -> Response:
    ws = _workspace(ws_sid)
    name = request.args.get("FriendlyName")
    items = [q for q in ws.queues.values() if name is None or q.friendly_name == name]
    return _listing(ws, "task_queues", items, resources.task_queue, "TaskQueues")


def _queue(ws: Workspace, sid: str) -> Any:
    found = ws.queues.get(sid)
    if found is None:
        raise not_found(f"/Workspaces/{ws.sid}/TaskQueues/{sid}")
    return found


@api.get("/Workspaces/<ws_sid>/TaskQueues/<sid>")
async def fetch_task_queue(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    return jsonify(resources.task_queue(ws, _base(), _queue(ws, sid)))


@api.get("/Workspaces/<ws_sid>/TaskQueues/<sid>/RealTimeStatistics")
async def task_queue_real_time_statistics(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    return jsonify(resources.queue_real_time(ws, _base(), _queue(ws, sid)))


@api.get("/Workspaces/<ws_sid>/TaskQueues/<sid>/CumulativeStatistics")
async def task_queue_cumulative_statistics(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    start, end = _window()
    thresholds = _thresholds(request.args.get("SplitByWaitTime"))
    return jsonify(resources.queue_cumulative(ws, _base(), _queue(ws, sid), start, end, thresholds))


def _thresholds(raw: str | None) -> list[int]:
    """SplitByWaitTime: comma-separated whole seconds."""
    if not raw:
        return []
    try:
        found = [int(piece) for piece in raw.split(",")]
    except ValueError:
        raise invalid("SplitByWaitTime must list whole seconds, comma-separated") from None
    if any(t < 0 for t in found):
        raise invalid("SplitByWaitTime thresholds must not be negative")
    return found


def _window() -> tuple[datetime, datetime]:
    """The statistics' interval: Minutes back from now, or StartDate/EndDate; 15 minutes
    by default, as TaskRouter."""
    end = now()
    minutes = _whole(request.args.get("Minutes"), "Minutes")
    if minutes is not None:
        if minutes < 0:
            raise invalid("Minutes must not be negative")
        return end - timedelta(minutes=minutes), end
    start_raw, end_raw = request.args.get("StartDate"), request.args.get("EndDate")
    try:
        start = datetime.fromisoformat(start_raw) if start_raw else end - timedelta(minutes=15)
        finish = datetime.fromisoformat(end_raw) if end_raw else end
    except ValueError:
        raise invalid("StartDate and EndDate must be ISO 8601 date-times") from None
    if start.tzinfo is None or finish.tzinfo is None:
        raise invalid("StartDate and EndDate must carry a time zone (Z)")
    return start, finish


@api.get("/Workspaces/<ws_sid>/Workflows")
async def list_workflows(ws_sid: str) -> Response:
    ws = _workspace(ws_sid)
    name = request.args.get("FriendlyName")
    items = [w for w in ws.workflows.values() if name is None or w.friendly_name == name]
    return _listing(ws, "workflows", items, resources.workflow, "Workflows")


@api.get("/Workspaces/<ws_sid>/Workflows/<sid>")
async def fetch_workflow(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    found = ws.workflows.get(sid)
    if found is None:
        raise not_found(f"/Workspaces/{ws.sid}/Workflows/{sid}")
    return jsonify(resources.workflow(ws, _base(), found))


@api.post("/Workspaces/<ws_sid>/Workflows/<sid>")
async def update_workflow(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    found = ws.workflows.get(sid)
    if found is None:
        raise not_found(f"/Workspaces/{ws.sid}/Workflows/{sid}")
    form = await read_form()
    ws.update_workflow(
        found,
        friendly_name=form.get("FriendlyName") or None,
        configuration=form.get("Configuration") or None,
        task_reservation_timeout=_whole(
            form.get("TaskReservationTimeout"), "TaskReservationTimeout"
        ),
    )
    return jsonify(resources.workflow(ws, _base(), found))


# --- workers --------------------------------------------------------------------------------


@api.post("/Workspaces/<ws_sid>/Workers")
async def create_worker(ws_sid: str) -> tuple[Response, int]:
    ws = _workspace(ws_sid)
    form = await read_form()
    worker = ws.add_worker(
        form.get("FriendlyName", ""), form.get("Attributes"), form.get("ActivitySid")
    )
    return created(resources.worker(ws, _base(), worker))


@api.get("/Workspaces/<ws_sid>/Workers")
async def list_workers(ws_sid: str) -> Response:
    ws = _workspace(ws_sid)
    args = request.args
    items = list(ws.workers.values())
    if args.get("FriendlyName"):
        items = [w for w in items if w.friendly_name == args["FriendlyName"]]
    if args.get("ActivitySid"):
        items = [w for w in items if w.activity_sid == args["ActivitySid"]]
    if args.get("ActivityName"):
        items = [
            w for w in items if ws.activities[w.activity_sid].friendly_name == args["ActivityName"]
        ]
    if args.get("Available") is not None:
        wanted = args["Available"].lower() in ("true", "1")
        items = [w for w in items if ws.available(w) == wanted]
    return _listing(ws, "workers", items, resources.worker, "Workers")


@api.get("/Workspaces/<ws_sid>/Workers/<sid>")
async def fetch_worker(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    return jsonify(resources.worker(ws, _base(), ws.worker(sid)))


@api.post("/Workspaces/<ws_sid>/Workers/<sid>")
async def update_worker(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    worker = ws.worker(sid)
    form = await read_form()
    if form.get("Attributes") is not None:
        worker.attributes = check_json_attributes(form["Attributes"])
    if form.get("FriendlyName"):
        worker.friendly_name = form["FriendlyName"]
    if form.get("ActivitySid"):
        reject = form.get("RejectPendingReservations", "").lower() == "true"
        ws.set_activity(worker, form["ActivitySid"], reject_pending=reject)
    worker.date_updated = now()
    return jsonify(resources.worker(ws, _base(), worker))


@api.delete("/Workspaces/<ws_sid>/Workers/<sid>")
async def delete_worker(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    worker = ws.worker(sid)
    del ws.workers[worker.sid]
    return no_content()


@api.get("/Workspaces/<ws_sid>/Workers/<sid>/Reservations")
async def list_worker_reservations(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    worker = ws.worker(sid)
    status = request.args.get("ReservationStatus")
    items = [
        r
        for r in ws.reservations.values()
        if r.worker_sid == worker.sid and (status is None or r.reservation_status == status)
    ]
    return _listing(
        ws,
        "reservations",
        items,
        resources.worker_reservation,
        f"Workers/{worker.sid}/Reservations",
    )


def _worker_reservation(ws: Workspace, worker_sid: str, sid: str) -> Reservation:
    worker = ws.worker(worker_sid)
    found = ws.reservations.get(sid)
    if found is None or found.worker_sid != worker.sid:
        raise not_found(f"/Workspaces/{ws.sid}/Workers/{worker.sid}/Reservations/{sid}")
    return found


@api.get("/Workspaces/<ws_sid>/Workers/<worker_sid>/Reservations/<sid>")
async def fetch_worker_reservation(ws_sid: str, worker_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    reservation = _worker_reservation(ws, worker_sid, sid)
    return jsonify(resources.worker_reservation(ws, _base(), reservation))


@api.post("/Workspaces/<ws_sid>/Workers/<worker_sid>/Reservations/<sid>")
async def update_worker_reservation(ws_sid: str, worker_sid: str, sid: str) -> Response:
    """How an agent's desktop answers an offer: accepted or rejected (with the activity
    the worker moves to, when given)."""
    ws = _workspace(ws_sid)
    reservation = _worker_reservation(ws, worker_sid, sid)
    return jsonify(resources.worker_reservation(ws, _base(), await _answer(ws, reservation)))


# --- tasks and their reservations -----------------------------------------------------------


@api.post("/Workspaces/<ws_sid>/Tasks")
async def create_task(ws_sid: str) -> tuple[Response, int]:
    ws = _workspace(ws_sid)
    form = await read_form()
    task = ws.create_task(
        workflow_sid=form.get("WorkflowSid"),
        attributes=form.get("Attributes"),
        task_channel=form.get("TaskChannel"),
        priority=_whole(form.get("Priority"), "Priority"),
        timeout=_whole(form.get("Timeout"), "Timeout"),
    )
    return created(resources.task(ws, _base(), task))


@api.get("/Workspaces/<ws_sid>/Tasks")
async def list_tasks(ws_sid: str) -> Response:
    ws = _workspace(ws_sid)
    args = request.args
    items = list(ws.tasks.values())
    statuses = args.getlist("AssignmentStatus")
    if statuses:
        wanted = {s for raw in statuses for s in raw.split(",")}
        items = [t for t in items if t.assignment_status in wanted]
    for name, attribute in (("TaskQueueSid", "task_queue_sid"), ("WorkflowSid", "workflow_sid")):
        if args.get(name):
            items = [t for t in items if getattr(t, attribute) == args[name]]
    if args.get("TaskQueueName"):
        items = [
            t for t in items if ws.queues[t.task_queue_sid].friendly_name == args["TaskQueueName"]
        ]
    if args.get("WorkflowName"):
        items = [
            t for t in items if ws.workflows[t.workflow_sid].friendly_name == args["WorkflowName"]
        ]
    priority = _whole(args.get("Priority"), "Priority")
    if priority is not None:
        items = [t for t in items if t.priority == priority]
    expression = args.get("EvaluateTaskAttributes")
    if expression:
        items = [t for t in items if matches(expression, json.loads(t.attributes))]
    # Stable sorts, last key first: the first pair in Ordering decides, the next break
    # ties. Dates have whole seconds: within one, tasks go by the order they were made.
    made = {sid: number for number, sid in enumerate(ws.tasks)}
    keys: dict[str, Callable[[Task], Any]] = {
        "DateCreated": lambda t: (t.date_created, made[t.sid]),
        "Priority": lambda t: t.priority,
        # A task's virtual start time is when it was created, unless set (never, here).
        "VirtualStartTime": lambda t: (t.date_created, made[t.sid]),
    }
    for attribute, descending in reversed(_ordering(args.get("Ordering"))):
        items.sort(key=keys[attribute], reverse=descending)
    return _listing(ws, "tasks", items, resources.listed_task, "Tasks")


ORDERING_ATTRIBUTES = ("DateCreated", "Priority", "VirtualStartTime")


def _ordering(raw: str | None) -> list[tuple[str, bool]]:
    """``Attribute:Order`` pairs, comma-separated (by default DateCreated ascending)."""
    if not raw:
        return [("DateCreated", False)]
    pairs: list[tuple[str, bool]] = []
    for part in raw.split(","):
        attribute, _, order = part.strip().partition(":")
        if attribute not in ORDERING_ATTRIBUTES or order not in ("asc", "desc"):
            raise invalid(
                "Ordering must be Attribute:Order pairs, Attribute one of DateCreated, "
                "Priority, VirtualStartTime and Order asc or desc"
            )
        pairs.append((attribute, order == "desc"))
    names = {attribute for attribute, _ in pairs}
    if {"DateCreated", "VirtualStartTime"} <= names or len(names) < len(pairs):
        raise invalid("Ordering may not pair DateCreated with VirtualStartTime, or repeat one")
    return pairs


@api.get("/Workspaces/<ws_sid>/Tasks/<sid>")
async def fetch_task(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    return jsonify(resources.task(ws, _base(), ws.task(sid)))


@api.post("/Workspaces/<ws_sid>/Tasks/<sid>")
async def update_task(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    form = await read_form()
    task = ws.update_task(
        ws.task(sid),
        assignment_status=form.get("AssignmentStatus"),
        reason=form.get("Reason"),
        attributes=form.get("Attributes"),
        priority=_whole(form.get("Priority"), "Priority"),
    )
    return jsonify(resources.task(ws, _base(), task))


@api.delete("/Workspaces/<ws_sid>/Tasks/<sid>")
async def delete_task(ws_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    task = ws.task(sid)
    if task.assignment_status in ("pending", "reserved"):
        ws.update_task(task, assignment_status="canceled", reason="deleted")
    del ws.tasks[task.sid]
    return no_content()


@api.get("/Workspaces/<ws_sid>/Tasks/<task_sid>/Reservations")
async def list_task_reservations(ws_sid: str, task_sid: str) -> Response:
    ws = _workspace(ws_sid)
    task = ws.task(task_sid)
    status = request.args.get("ReservationStatus")
    items = [
        r
        for r in ws.reservations.values()
        if r.task_sid == task.sid and (status is None or r.reservation_status == status)
    ]
    return _listing(
        ws, "reservations", items, resources.reservation, f"Tasks/{task.sid}/Reservations"
    )


@api.get("/Workspaces/<ws_sid>/Tasks/<task_sid>/Reservations/<sid>")
async def fetch_task_reservation(ws_sid: str, task_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    return jsonify(resources.reservation(ws, _base(), ws.reservation(ws.task(task_sid), sid)))


@api.post("/Workspaces/<ws_sid>/Tasks/<task_sid>/Reservations/<sid>")
async def update_task_reservation(ws_sid: str, task_sid: str, sid: str) -> Response:
    ws = _workspace(ws_sid)
    reservation = ws.reservation(ws.task(task_sid), sid)
    return jsonify(resources.reservation(ws, _base(), await _answer(ws, reservation)))


async def _answer(ws: Workspace, reservation: Reservation) -> Reservation:
    form = await read_form()
    status = form.get("ReservationStatus")
    if not status:
        raise invalid("Missing required parameter ReservationStatus in the post body")
    activity = form.get("WorkerActivitySid")
    if activity:
        ws.known_activity(activity)  # refused before anything changes
    ws.answer_reservation(reservation, status)
    if activity:
        ws.set_activity(ws.worker(reservation.worker_sid), activity)
    return reservation
