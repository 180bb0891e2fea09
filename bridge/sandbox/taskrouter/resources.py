"""JSON representations of TaskRouter resources, shaped like Twilio's (see the spec file)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.sandbox.shared.clock import iso, now
from bridge.sandbox.taskrouter.state import (
    LIVE,
    Activity,
    Record,
    Reservation,
    Task,
    TaskChannel,
    TaskQueue,
    Worker,
    Workflow,
    Workspace,
)


def _ws_url(base: str, ws: Workspace) -> str:
    return f"{base}/v1/Workspaces/{ws.sid}"


def workspace(ws: Workspace, base: str) -> dict[str, Any]:
    url = _ws_url(base, ws)
    default = ws.activities[ws.default_activity_sid]
    timeout = ws.activities[ws.timeout_activity_sid]
    return {
        "account_sid": ws.account_sid,
        "date_created": iso(ws.date_created),
        "date_updated": iso(ws.date_updated),
        "default_activity_name": default.friendly_name,
        "default_activity_sid": default.sid,
        "event_callback_url": ws.event_callback_url,
        "events_filter": ",".join(ws.events_filter) or None,
        "friendly_name": ws.friendly_name,
        "multi_task_enabled": True,
        "sid": ws.sid,
        "timeout_activity_name": timeout.friendly_name,
        "timeout_activity_sid": timeout.sid,
        "prioritize_queue_order": ws.prioritize_queue_order,
        "url": url,
        "links": {
            "activities": f"{url}/Activities",
            "task_channels": f"{url}/TaskChannels",
            "task_queues": f"{url}/TaskQueues",
            "tasks": f"{url}/Tasks",
            "workers": f"{url}/Workers",
            "workflows": f"{url}/Workflows",
            "events": f"{url}/Events",
            "statistics": f"{url}/Statistics",
            "real_time_statistics": f"{url}/RealTimeStatistics",
            "cumulative_statistics": f"{url}/CumulativeStatistics",
        },
    }


def activity(ws: Workspace, base: str, item: Activity) -> dict[str, Any]:
    url = f"{_ws_url(base, ws)}/Activities/{item.sid}"
    return {
        "account_sid": ws.account_sid,
        "available": item.available,
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "friendly_name": item.friendly_name,
        "sid": item.sid,
        "workspace_sid": ws.sid,
        "url": url,
        "links": {"workspace": _ws_url(base, ws)},
    }


def worker(ws: Workspace, base: str, item: Worker) -> dict[str, Any]:
    url = f"{_ws_url(base, ws)}/Workers/{item.sid}"
    current = ws.activities[item.activity_sid]
    return {
        "account_sid": ws.account_sid,
        "activity_name": current.friendly_name,
        "activity_sid": current.sid,
        "attributes": item.attributes,
        "available": current.available,
        "date_created": iso(item.date_created),
        "date_status_changed": iso(item.date_status_changed),
        "date_updated": iso(item.date_updated),
        "friendly_name": item.friendly_name,
        "sid": item.sid,
        "workspace_sid": ws.sid,
        "url": url,
        "links": {
            "channels": f"{url}/Channels",
            "reservations": f"{url}/Reservations",
            "statistics": f"{url}/Statistics",
            "workspace": _ws_url(base, ws),
        },
    }


def task_queue(ws: Workspace, base: str, item: TaskQueue) -> dict[str, Any]:
    url = f"{_ws_url(base, ws)}/TaskQueues/{item.sid}"
    return {
        "account_sid": ws.account_sid,
        "assignment_activity_sid": None,
        "assignment_activity_name": None,
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "friendly_name": item.friendly_name,
        "max_reserved_workers": item.max_reserved_workers,
        "reservation_activity_sid": None,
        "reservation_activity_name": None,
        "sid": item.sid,
        "target_workers": item.target_workers,
        "task_order": item.task_order,
        "url": url,
        "workspace_sid": ws.sid,
        "links": {
            "assignment_activity": None,
            "reservation_activity": None,
            "statistics": f"{url}/Statistics",
            "real_time_statistics": f"{url}/RealTimeStatistics",
            "cumulative_statistics": f"{url}/CumulativeStatistics",
            "list_statistics": f"{_ws_url(base, ws)}/TaskQueues/Statistics",
            "workspace": _ws_url(base, ws),
        },
    }


def workflow(ws: Workspace, base: str, item: Workflow) -> dict[str, Any]:
    url = f"{_ws_url(base, ws)}/Workflows/{item.sid}"
    return {
        "account_sid": ws.account_sid,
        "assignment_callback_url": item.assignment_callback_url,
        "configuration": item.configuration,
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "document_content_type": "application/json",
        "fallback_assignment_callback_url": item.fallback_assignment_callback_url,
        "friendly_name": item.friendly_name,
        "sid": item.sid,
        "task_reservation_timeout": item.task_reservation_timeout,
        "workspace_sid": ws.sid,
        "url": url,
        "links": {
            "statistics": f"{url}/Statistics",
            "real_time_statistics": f"{url}/RealTimeStatistics",
            "cumulative_statistics": f"{url}/CumulativeStatistics",
            "workspace": _ws_url(base, ws),
        },
    }


def task_channel(ws: Workspace, base: str, item: TaskChannel) -> dict[str, Any]:
    return {
        "account_sid": ws.account_sid,
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "friendly_name": item.friendly_name,
        "sid": item.sid,
        "unique_name": item.unique_name,
        "workspace_sid": ws.sid,
        "channel_optimized_routing": item.channel_optimized_routing,
        "url": f"{_ws_url(base, ws)}/TaskChannels/{item.sid}",
        "links": {"workspace": _ws_url(base, ws)},
    }


def listed_task(ws: Workspace, base: str, item: Task) -> dict[str, Any]:
    """A task as the Tasks list gives it: without its attributes, which Twilio shows only
    when one task is fetched (EvaluateTaskAttributes still filters on them)."""
    return {**task(ws, base, item), "attributes": None}


def task(ws: Workspace, base: str, item: Task) -> dict[str, Any]:
    url = f"{_ws_url(base, ws)}/Tasks/{item.sid}"
    queue = ws.queues[item.task_queue_sid]
    flow = ws.workflows[item.workflow_sid]
    channel = ws.channels[item.task_channel_sid]
    return {
        "account_sid": ws.account_sid,
        "age": item.age(now()),
        "assignment_status": item.assignment_status,
        "attributes": item.attributes,
        "addons": "{}",
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "task_queue_entered_date": iso(item.task_queue_entered_date),
        "priority": item.priority,
        "reason": item.reason,
        "sid": item.sid,
        "task_queue_sid": queue.sid,
        "task_queue_friendly_name": queue.friendly_name,
        "task_channel_sid": channel.sid,
        "task_channel_unique_name": channel.unique_name,
        "timeout": item.timeout,
        "workflow_sid": flow.sid,
        "workflow_friendly_name": flow.friendly_name,
        "workspace_sid": ws.sid,
        "url": url,
        "links": {
            "task_queue": f"{_ws_url(base, ws)}/TaskQueues/{queue.sid}",
            "workflow": f"{_ws_url(base, ws)}/Workflows/{flow.sid}",
            "workspace": _ws_url(base, ws),
            "reservations": f"{url}/Reservations",
        },
        "virtual_start_time": iso(item.date_created),
        "ignore_capacity": False,
        "routing_target": None,
    }


def reservation(ws: Workspace, base: str, item: Reservation) -> dict[str, Any]:
    """A reservation as its task's subresource."""
    return _reservation(ws, base, item, f"Tasks/{item.task_sid}")


def worker_reservation(ws: Workspace, base: str, item: Reservation) -> dict[str, Any]:
    """A reservation as its worker's subresource (what an agent's desktop reads)."""
    return _reservation(ws, base, item, f"Workers/{item.worker_sid}")


def _reservation(ws: Workspace, base: str, item: Reservation, parent: str) -> dict[str, Any]:
    url = f"{_ws_url(base, ws)}/{parent}/Reservations/{item.sid}"
    return {
        "account_sid": ws.account_sid,
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "reservation_status": item.reservation_status,
        "sid": item.sid,
        "task_sid": item.task_sid,
        "worker_name": ws.workers[item.worker_sid].friendly_name,
        "worker_sid": item.worker_sid,
        "workspace_sid": ws.sid,
        "url": url,
        "links": {
            "task": f"{_ws_url(base, ws)}/Tasks/{item.task_sid}",
            "worker": f"{_ws_url(base, ws)}/Workers/{item.worker_sid}",
            "workspace": _ws_url(base, ws),
        },
    }


# --- statistics, computed from what happened ------------------------------------------------


def queue_real_time(ws: Workspace, base: str, queue: TaskQueue) -> dict[str, Any]:
    """What is in the queue now: tasks by status and priority, the longest waiting, and
    its workers by activity."""
    moment = now()
    live = [t for t in ws.tasks.values() if t.task_queue_sid == queue.sid]
    live = [t for t in live if t.assignment_status in LIVE]
    waiting = sorted(
        (t for t in live if t.assignment_status in ("pending", "reserved")),
        key=lambda t: t.task_queue_entered_date,
    )
    by_status = {status: 0 for status in LIVE}
    by_priority: dict[str, int] = {}
    for item in live:
        by_status[item.assignment_status] += 1
        by_priority[str(item.priority)] = by_priority.get(str(item.priority), 0) + 1
    oldest = waiting[0] if waiting else None
    eligible = list(ws.workers.values())  # target_workers 1==1: every worker
    return {
        "account_sid": ws.account_sid,
        "activity_statistics": [
            {
                "sid": act.sid,
                "friendly_name": act.friendly_name,
                "workers": sum(1 for w in eligible if w.activity_sid == act.sid),
            }
            for act in ws.activities.values()
        ],
        "longest_task_waiting_age": oldest.age(moment) if oldest else 0,
        "longest_task_waiting_sid": oldest.sid if oldest else None,
        "longest_relative_task_age_in_queue": (
            int((moment - oldest.task_queue_entered_date).total_seconds()) if oldest else 0
        ),
        "longest_relative_task_sid_in_queue": oldest.sid if oldest else None,
        "task_queue_sid": queue.sid,
        "tasks_by_priority": by_priority,
        "tasks_by_status": by_status,
        "total_available_workers": sum(1 for w in eligible if ws.available(w)),
        "total_eligible_workers": len(eligible),
        "total_tasks": len(live),
        "workspace_sid": ws.sid,
        "url": f"{_ws_url(base, ws)}/TaskQueues/{queue.sid}/RealTimeStatistics",
    }


def _durations(values: list[float]) -> dict[str, int]:
    if not values:
        return {"avg": 0, "min": 0, "max": 0, "total": 0}
    return {
        "avg": round(sum(values) / len(values)),
        "min": round(min(values)),
        "max": round(max(values)),
        "total": round(sum(values)),
    }


def _split(
    thresholds: list[int], accepted: list[float], canceled: list[float]
) -> dict[str, Any] | None:
    """Tasks canceled and reservations accepted below and above each threshold (seconds
    waited), keyed by the threshold as TaskRouter keys them."""
    if not thresholds:
        return None

    def side(keep: Callable[[float], bool]) -> dict[str, int]:
        return {
            "tasks_canceled": sum(1 for w in canceled if keep(w)),
            "reservations_accepted": sum(1 for w in accepted if keep(w)),
        }

    split: dict[str, Any] = {}
    for threshold in thresholds:
        split[str(threshold)] = {
            "below": side(lambda waited: waited < threshold),  # noqa: B023 - called at once
            "above": side(lambda waited: waited >= threshold),  # noqa: B023
        }
    return split


def queue_cumulative(
    ws: Workspace,
    base: str,
    queue: TaskQueue,
    start: datetime,
    end: datetime,
    thresholds: list[int] | None = None,
) -> dict[str, Any]:
    """What happened in the queue between ``start`` and ``end``, counted from records;
    split at ``thresholds`` (SplitByWaitTime)."""
    kept: list[Record] = [
        r for r in ws.records if r.queue_sid == queue.sid and start <= r.at <= end
    ]

    def count(kind: str) -> int:
        return sum(1 for r in kept if r.kind == kind)

    accepted = [r.waited for r in kept if r.kind == "reservation.accepted" and r.waited is not None]
    canceled = [r.waited for r in kept if r.kind == "task.canceled" and r.waited is not None]
    return {
        "account_sid": ws.account_sid,
        "avg_task_acceptance_time": round(sum(accepted) / len(accepted)) if accepted else 0,
        "start_time": iso(start),
        "end_time": iso(end),
        "reservations_created": count("reservation.created"),
        "reservations_accepted": count("reservation.accepted"),
        "reservations_rejected": count("reservation.rejected"),
        "reservations_timed_out": count("reservation.timeout"),
        "reservations_canceled": count("reservation.canceled"),
        "reservations_rescinded": count("reservation.rescinded"),
        "split_by_wait_time": _split(thresholds or [], accepted, canceled),
        "task_queue_sid": queue.sid,
        "wait_duration_until_accepted": _durations(accepted),
        "wait_duration_until_canceled": _durations(canceled),
        "wait_duration_in_queue_until_accepted": _durations(accepted),
        "tasks_canceled": count("task.canceled"),
        "tasks_completed": count("task.completed"),
        "tasks_deleted": 0,
        "tasks_entered": count("task.entered"),
        "tasks_moved": 0,
        "workspace_sid": ws.sid,
        "url": f"{_ws_url(base, ws)}/TaskQueues/{queue.sid}/CumulativeStatistics",
    }
