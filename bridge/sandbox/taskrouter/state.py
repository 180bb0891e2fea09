"""In-memory model of a TaskRouter workspace: the emulator's single source of truth for
Flex routing (workers and their activities, queues, workflows, tasks, reservations).

Every change goes through :class:`Workspace`, which assigns work the way TaskRouter does:
a pending task is offered to an available worker of its queue as a reservation; the worker
accepts (the task is assigned), rejects, or lets the offer time out (the task goes to the
next worker, the worker to the workspace's timeout activity); an assigned task is wrapped
up and completed, or a waiting one canceled. Each step is an event (``task.created``,
``reservation.accepted``, ``task.wrapup``...) for the event callback, and is recorded for
the cumulative statistics. Time is passed in (``run_timers``), so tests can move it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bridge.sandbox.shared.clock import iso, new_sid, now
from bridge.sandbox.shared.errors import EmulatorError, check_json_attributes, invalid, not_found

TaskStatus = Literal["pending", "reserved", "assigned", "wrapping", "completed", "canceled"]
ReservationStatus = Literal[
    "pending", "accepted", "rejected", "timeout", "canceled", "rescinded", "wrapping", "completed"
]
#: Tasks still in their queue, waiting or being worked.
LIVE: tuple[TaskStatus, ...] = ("pending", "reserved", "assigned", "wrapping")
#: TaskRouter's default: a reservation not answered in 120 s times out.
DEFAULT_RESERVATION_TIMEOUT = 120
MAX_RESERVATION_TIMEOUT = 86400
DEFAULT_TASK_TIMEOUT = 86400
MAX_ATTRIBUTES_BYTES = 16 * 1024  # TaskRouter's limit on a task's attributes


@dataclass
class Activity:
    sid: str
    friendly_name: str
    available: bool
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)


@dataclass
class Worker:
    sid: str
    friendly_name: str
    attributes: str
    activity_sid: str
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)
    date_status_changed: datetime = field(default_factory=now)
    #: Tasks at once per task channel (Flex's default for chat is 1).
    capacity: dict[str, int] = field(default_factory=lambda: {"chat": 1, "default": 1})


@dataclass
class TaskQueue:
    sid: str
    friendly_name: str
    target_workers: str = "1==1"
    task_order: Literal["FIFO", "LIFO"] = "FIFO"
    max_reserved_workers: int = 1
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)


@dataclass
class Workflow:
    sid: str
    friendly_name: str
    configuration: str
    task_reservation_timeout: int = DEFAULT_RESERVATION_TIMEOUT
    assignment_callback_url: str | None = None
    fallback_assignment_callback_url: str | None = None
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)

    def queue_sid(self) -> str:
        """The queue its tasks go to: the configuration's default filter's."""
        try:
            routing = json.loads(self.configuration)["task_routing"]
            return str(routing["default_filter"]["queue"])
        except (ValueError, KeyError, TypeError):
            raise invalid("Workflow configuration has no task_routing.default_filter") from None


@dataclass
class TaskChannel:
    sid: str
    friendly_name: str
    unique_name: str
    channel_optimized_routing: bool = False
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)


@dataclass
class Task:
    sid: str
    attributes: str
    assignment_status: TaskStatus
    priority: int
    timeout: int
    task_queue_sid: str
    workflow_sid: str
    task_channel_sid: str
    date_created: datetime
    date_updated: datetime
    task_queue_entered_date: datetime
    reason: str | None = None
    #: Workers who turned it down (rejected or let the offer time out): not offered again.
    passed_over: set[str] = field(default_factory=set)
    assigned_at: datetime | None = None

    def age(self, moment: datetime) -> int:
        return int((moment - self.date_created).total_seconds())


@dataclass
class Reservation:
    sid: str
    task_sid: str
    worker_sid: str
    reservation_status: ReservationStatus
    date_created: datetime
    date_updated: datetime
    expires: datetime


@dataclass(frozen=True)
class WorkspaceEvent:
    """Something the event callback may be told about (TaskRouter's event types)."""

    sid: str
    event_type: str
    description: str
    resource_type: Literal["task", "reservation", "worker", "workflow"]
    resource_sid: str
    date: datetime
    params: dict[str, str]


Listener = Callable[[WorkspaceEvent], None]


@dataclass
class Record:
    """What the cumulative statistics count: one happening to a task, at a time."""

    kind: str  # task.entered, task.completed, task.canceled, reservation.<status>
    task_sid: str
    queue_sid: str
    workflow_sid: str
    at: datetime
    waited: float | None = None  # seconds in queue, when accepted or canceled


class Workspace:
    def __init__(
        self,
        account_sid: str,
        friendly_name: str = "Flex Task Assignment",
        *,
        sid: str | None = None,
        workflow_sid: str | None = None,
        event_callback_url: str | None = None,
    ) -> None:
        """The workspace Flex sets up. ``sid`` and ``workflow_sid`` fix the SIDs (so a
        bridge can be configured with them before the sandbox starts); by default they are
        random, as Twilio's are."""
        self.account_sid = account_sid
        self.sid = sid or new_sid("WS")
        self.friendly_name = friendly_name
        self.date_created = self.date_updated = now()
        self.event_callback_url = event_callback_url
        self.events_filter: list[str] = []
        self.prioritize_queue_order: Literal["FIFO", "LIFO"] = "FIFO"
        self.activities: dict[str, Activity] = {}
        self.workers: dict[str, Worker] = {}
        self.queues: dict[str, TaskQueue] = {}
        self.workflows: dict[str, Workflow] = {}
        self.channels: dict[str, TaskChannel] = {}
        self.tasks: dict[str, Task] = {}
        self.reservations: dict[str, Reservation] = {}
        self.events: list[WorkspaceEvent] = []
        self.records: list[Record] = []
        self._listeners: list[Listener] = []
        offline = self._activity("Offline", available=False)
        self.default_activity_sid = offline.sid
        self.timeout_activity_sid = offline.sid
        self._activity("Available", available=True)
        self._activity("Unavailable", available=False)
        for name in ("default", "voice", "chat", "sms", "video", "email"):
            self.add_channel(name, name.capitalize())
        queue = self.add_queue("Everyone")
        self.add_workflow(
            "Assign to Anyone",
            json.dumps({"task_routing": {"filters": [], "default_filter": {"queue": queue.sid}}}),
            sid=workflow_sid,
        )

    # --- events ---------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(
        self,
        event_type: str,
        description: str,
        resource_type: Literal["task", "reservation", "worker", "workflow"],
        resource_sid: str,
        params: dict[str, str],
    ) -> None:
        event = WorkspaceEvent(
            sid=new_sid("EV"),
            event_type=event_type,
            description=description,
            resource_type=resource_type,
            resource_sid=resource_sid,
            date=now(),
            params=params,
        )
        self.events.append(event)
        for listener in self._listeners:
            listener(event)

    # --- set-up ---------------------------------------------------------------------------

    def _activity(self, name: str, *, available: bool) -> Activity:
        activity = Activity(new_sid("WA"), name, available)
        self.activities[activity.sid] = activity
        return activity

    def activity_named(self, name: str) -> Activity:
        for activity in self.activities.values():
            if activity.friendly_name == name:
                return activity
        raise not_found(f"/Activities?FriendlyName={name}")

    def add_channel(self, unique_name: str, friendly_name: str) -> TaskChannel:
        channel = TaskChannel(new_sid("TC"), friendly_name, unique_name)
        self.channels[channel.sid] = channel
        return channel

    def channel(self, sid_or_unique_name: str) -> TaskChannel:
        for channel in self.channels.values():
            if sid_or_unique_name in (channel.sid, channel.unique_name):
                return channel
        raise invalid(f"TaskChannel {sid_or_unique_name!r} does not exist in this workspace")

    def add_queue(self, friendly_name: str, target_workers: str = "1==1") -> TaskQueue:
        queue = TaskQueue(new_sid("WQ"), friendly_name, target_workers)
        self.queues[queue.sid] = queue
        return queue

    def add_workflow(
        self, friendly_name: str, configuration: str, *, sid: str | None = None
    ) -> Workflow:
        workflow = Workflow(sid or new_sid("WW"), friendly_name, configuration)
        if workflow.queue_sid() not in self.queues:
            raise invalid("Workflow configuration names a TaskQueue that does not exist")
        self.workflows[workflow.sid] = workflow
        return workflow

    def update_workflow(
        self,
        workflow: Workflow,
        *,
        friendly_name: str | None = None,
        configuration: str | None = None,
        task_reservation_timeout: int | None = None,
    ) -> Workflow:
        if task_reservation_timeout is not None:
            if not 1 <= task_reservation_timeout <= MAX_RESERVATION_TIMEOUT:
                raise invalid(
                    f"TaskReservationTimeout must be between 1 and {MAX_RESERVATION_TIMEOUT}"
                )
            workflow.task_reservation_timeout = task_reservation_timeout
        if configuration is not None:
            changed = Workflow(workflow.sid, workflow.friendly_name, configuration)
            if changed.queue_sid() not in self.queues:
                raise invalid("Workflow configuration names a TaskQueue that does not exist")
            workflow.configuration = configuration
        if friendly_name is not None:
            workflow.friendly_name = friendly_name
        workflow.date_updated = now()
        return workflow

    # --- workers --------------------------------------------------------------------------

    def add_worker(
        self, friendly_name: str, attributes: str | None, activity_sid: str | None
    ) -> Worker:
        if not friendly_name:
            raise invalid("Missing required parameter FriendlyName in the post body")
        if any(w.friendly_name == friendly_name for w in self.workers.values()):
            raise EmulatorError(409, 20001, f"Worker {friendly_name!r} already exists")
        activity = self.known_activity(activity_sid or self.default_activity_sid)
        worker = Worker(
            new_sid("WK"), friendly_name, check_json_attributes(attributes), activity.sid
        )
        self.workers[worker.sid] = worker
        self._assign()
        return worker

    def worker(self, sid: str) -> Worker:
        found = self.workers.get(sid)
        if found is None:
            raise not_found(f"/Workspaces/{self.sid}/Workers/{sid}")
        return found

    def known_activity(self, sid: str) -> Activity:
        activity = self.activities.get(sid)
        if activity is None:
            raise invalid(f"Activity {sid} does not exist in this workspace")
        return activity

    def set_activity(
        self, worker: Worker, activity_sid: str, *, reject_pending: bool = False
    ) -> Worker:
        """Move the worker to an activity; with ``reject_pending`` (an unavailable one
        only, as Twilio allows) their open offers are rejected, going to the next worker."""
        activity = self.known_activity(activity_sid)
        if reject_pending:
            if activity.available:
                raise invalid(
                    "RejectPendingReservations is only valid with an unavailable Activity"
                )
            for reservation in list(self.reservations.values()):
                if (
                    reservation.worker_sid == worker.sid
                    and reservation.reservation_status == "pending"
                ):
                    self.answer_reservation(reservation, "rejected")
        if activity.sid == worker.activity_sid:
            return worker
        before = self.activities[worker.activity_sid]
        worker.activity_sid = activity.sid
        worker.date_updated = worker.date_status_changed = now()
        self._emit(
            "worker.activity.update",
            f"Worker {worker.friendly_name} updated to {activity.friendly_name} Activity",
            "worker",
            worker.sid,
            {
                **self._worker_params(worker),
                "WorkerPreviousActivitySid": before.sid,
                "WorkerPreviousActivityName": before.friendly_name,
            },
        )
        self._assign()
        return worker

    def available(self, worker: Worker) -> bool:
        return self.activities[worker.activity_sid].available

    def _load(self, worker: Worker, channel_sid: str) -> int:
        """Tasks of a channel the worker holds: offered, assigned or wrapping up."""
        held = 0
        for reservation in self.reservations.values():
            if reservation.worker_sid != worker.sid:
                continue
            if reservation.reservation_status not in ("pending", "accepted", "wrapping"):
                continue
            if self.tasks[reservation.task_sid].task_channel_sid == channel_sid:
                held += 1
        return held

    def free_for(self, worker: Worker, channel: TaskChannel) -> bool:
        capacity = worker.capacity.get(channel.unique_name, worker.capacity.get("default", 1))
        return self.available(worker) and self._load(worker, channel.sid) < capacity

    # --- tasks ----------------------------------------------------------------------------

    def create_task(
        self,
        *,
        workflow_sid: str | None,
        attributes: str | None,
        task_channel: str | None,
        priority: int | None,
        timeout: int | None,
    ) -> Task:
        if not workflow_sid:
            raise invalid("Missing required parameter WorkflowSid in the post body")
        workflow = self.workflows.get(workflow_sid)
        if workflow is None:
            raise invalid(f"Workflow {workflow_sid} does not exist in this workspace")
        checked = check_json_attributes(attributes)
        if len(checked.encode()) > MAX_ATTRIBUTES_BYTES:
            raise invalid(f"Attributes must be at most {MAX_ATTRIBUTES_BYTES} bytes")
        channel = self.channel(task_channel or "default")
        created = now()
        task = Task(
            sid=new_sid("WT"),
            attributes=checked,
            assignment_status="pending",
            priority=priority if priority is not None else 0,
            timeout=timeout if timeout is not None else DEFAULT_TASK_TIMEOUT,
            task_queue_sid=workflow.queue_sid(),
            workflow_sid=workflow.sid,
            task_channel_sid=channel.sid,
            date_created=created,
            date_updated=created,
            task_queue_entered_date=created,
        )
        self.tasks[task.sid] = task
        self._record("task.entered", task)
        self._emit("task.created", "Task created", "task", task.sid, self._task_params(task))
        self._emit(
            "task-queue.entered",
            f"Task {task.sid} entered TaskQueue {self.queues[task.task_queue_sid].friendly_name}",
            "task",
            task.sid,
            self._task_params(task),
        )
        self._assign()
        return task

    def task(self, sid: str) -> Task:
        found = self.tasks.get(sid)
        if found is None:
            raise not_found(f"/Workspaces/{self.sid}/Tasks/{sid}")
        return found

    def update_task(
        self,
        task: Task,
        *,
        assignment_status: str | None = None,
        reason: str | None = None,
        attributes: str | None = None,
        priority: int | None = None,
    ) -> Task:
        if attributes is not None:
            task.attributes = check_json_attributes(attributes)
        if priority is not None:
            task.priority = priority
        if assignment_status is not None:
            self._move(task, assignment_status, reason)
        task.date_updated = now()
        self._assign()
        return task

    def _move(self, task: Task, status: str, reason: str | None) -> None:
        allowed: dict[str, tuple[str, ...]] = {
            "canceled": ("pending", "reserved"),
            "wrapping": ("assigned",),
            "completed": ("assigned", "wrapping"),
        }
        if status not in allowed:
            raise invalid(f"Invalid AssignmentStatus: {status!r}")
        if task.assignment_status not in allowed[status]:
            raise EmulatorError(
                400,
                20001,
                f"Cannot change a {task.assignment_status} task to {status}",
            )
        task.reason = reason
        held = self._live_reservation(task)
        if status == "canceled":
            task.assignment_status = "canceled"
            if held is not None:
                self._end_reservation(held, "canceled")
            self._record("task.canceled", task, waited=self._waited(task))
            self._emit("task.canceled", "Task canceled", "task", task.sid, self._task_params(task))
        elif status == "wrapping":
            task.assignment_status = "wrapping"
            if held is not None:
                held.reservation_status = "wrapping"
                held.date_updated = now()
                self._emit(
                    "reservation.wrapup",
                    "Reservation wrapped up",
                    "reservation",
                    held.sid,
                    self._reservation_params(held),
                )
            self._emit("task.wrapup", "Task wrapping up", "task", task.sid, self._task_params(task))
        else:
            task.assignment_status = "completed"
            if held is not None:
                self._end_reservation(held, "completed")
            self._record("task.completed", task)
            self._emit(
                "task.completed", "Task completed", "task", task.sid, self._task_params(task)
            )

    def _live_reservation(self, task: Task) -> Reservation | None:
        for reservation in self.reservations.values():
            if reservation.task_sid == task.sid and reservation.reservation_status in (
                "pending",
                "accepted",
                "wrapping",
            ):
                return reservation
        return None

    # --- reservations ---------------------------------------------------------------------

    def reservation(self, task: Task, sid: str) -> Reservation:
        found = self.reservations.get(sid)
        if found is None or found.task_sid != task.sid:
            raise not_found(f"/Workspaces/{self.sid}/Tasks/{task.sid}/Reservations/{sid}")
        return found

    def answer_reservation(self, reservation: Reservation, status: str) -> Reservation:
        """The worker's answer to an offer: accepted, rejected; or completed later."""
        task = self.tasks[reservation.task_sid]
        if status == "accepted":
            if reservation.reservation_status != "pending":
                raise EmulatorError(
                    400, 20001, f"Reservation is {reservation.reservation_status}, not pending"
                )
            reservation.reservation_status = "accepted"
            reservation.date_updated = task.date_updated = now()
            task.assignment_status = "assigned"
            task.assigned_at = reservation.date_updated
            self._record("reservation.accepted", task, waited=self._waited(task))
            name = self.workers[reservation.worker_sid].friendly_name
            self._emit(
                "reservation.accepted",
                f"Reservation accepted by worker {name}",
                "reservation",
                reservation.sid,
                self._reservation_params(reservation),
            )
        elif status == "rejected":
            if reservation.reservation_status != "pending":
                raise EmulatorError(
                    400, 20001, f"Reservation is {reservation.reservation_status}, not pending"
                )
            task.passed_over.add(reservation.worker_sid)
            self._end_reservation(reservation, "rejected")
            task.assignment_status = "pending"
        elif status == "completed":
            self._move(task, "completed", None)
        else:
            raise invalid(f"Invalid ReservationStatus: {status!r}")
        self._assign()
        return reservation

    def _end_reservation(self, reservation: Reservation, status: ReservationStatus) -> None:
        reservation.reservation_status = status
        reservation.date_updated = now()
        task = self.tasks[reservation.task_sid]
        self._record(f"reservation.{status}", task)
        self._emit(
            f"reservation.{status}",
            f"Reservation {status}",
            "reservation",
            reservation.sid,
            self._reservation_params(reservation),
        )

    # --- assignment and time --------------------------------------------------------------

    def waiting_order(self, tasks: list[Task]) -> list[Task]:
        """Tasks in the order TaskRouter offers them: higher priority first, then by the
        time they entered the queue (oldest first, or newest with LIFO)."""
        newest_first = self.prioritize_queue_order == "LIFO"
        return sorted(
            tasks,
            key=lambda t: (
                -t.priority,
                -t.task_queue_entered_date.timestamp()
                if newest_first
                else t.task_queue_entered_date.timestamp(),
            ),
        )

    def _assign(self) -> None:
        """Offer every pending task, in queue order, to an available worker with room."""
        if not any(self.available(w) for w in self.workers.values()):
            return  # nobody to offer anything to (and thousands may be waiting)
        pending = [t for t in self.tasks.values() if t.assignment_status == "pending"]
        for task in self.waiting_order(pending):
            channel = self.channels[task.task_channel_sid]
            candidates = [
                w
                for w in self.workers.values()
                if w.sid not in task.passed_over and self.free_for(w, channel)
            ]
            if not candidates:
                continue
            # The one who has waited longest since their last change goes first.
            worker = min(candidates, key=lambda w: w.date_status_changed)
            self._reserve(task, worker)

    def _reserve(self, task: Task, worker: Worker) -> None:
        created = now()
        workflow = self.workflows[task.workflow_sid]
        reservation = Reservation(
            sid=new_sid("WR"),
            task_sid=task.sid,
            worker_sid=worker.sid,
            reservation_status="pending",
            date_created=created,
            date_updated=created,
            expires=created + timedelta(seconds=workflow.task_reservation_timeout),
        )
        self.reservations[reservation.sid] = reservation
        task.assignment_status = "reserved"
        task.date_updated = created
        self._record("reservation.created", task)
        self._emit(
            "reservation.created",
            f"Reservation created for worker {worker.friendly_name}",
            "reservation",
            reservation.sid,
            self._reservation_params(reservation),
        )

    def run_timers(self, moment: datetime) -> None:
        """Offers not answered in time go to the next worker; tasks past their timeout are
        canceled (the workflow timed out)."""
        for reservation in list(self.reservations.values()):
            if reservation.reservation_status == "pending" and reservation.expires <= moment:
                task = self.tasks[reservation.task_sid]
                worker = self.workers[reservation.worker_sid]
                task.passed_over.add(worker.sid)
                self._end_reservation(reservation, "timeout")
                task.assignment_status = "pending"
                self.set_activity(worker, self.timeout_activity_sid)
        for task in list(self.tasks.values()):
            expired = task.date_created + timedelta(seconds=task.timeout) <= moment
            if task.assignment_status in ("pending", "reserved") and expired:
                self._emit(
                    "workflow.timeout",
                    "Task timed out of its workflow",
                    "workflow",
                    task.workflow_sid,
                    self._task_params(task),
                )
                self._move(task, "canceled", "Task TTL Exceeded")
        self._assign()

    # --- what the statistics count --------------------------------------------------------

    def _waited(self, task: Task) -> float:
        return (now() - task.task_queue_entered_date).total_seconds()

    def _record(self, kind: str, task: Task, waited: float | None = None) -> None:
        self.records.append(
            Record(kind, task.sid, task.task_queue_sid, task.workflow_sid, now(), waited)
        )

    # --- event parameters, as TaskRouter's event callbacks send them ----------------------

    def _common(self) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "WorkspaceSid": self.sid,
            "WorkspaceName": self.friendly_name,
        }

    def _task_params(self, task: Task) -> dict[str, str]:
        queue = self.queues[task.task_queue_sid]
        workflow = self.workflows[task.workflow_sid]
        channel = self.channels[task.task_channel_sid]
        return {
            **self._common(),
            "TaskSid": task.sid,
            "TaskAttributes": task.attributes,
            "TaskAge": str(task.age(now())),
            "TaskPriority": str(task.priority),
            "TaskAssignmentStatus": task.assignment_status,
            "TaskDateCreated": iso(task.date_created) or "",
            "TaskChannelSid": channel.sid,
            "TaskChannelUniqueName": channel.unique_name,
            "TaskQueueSid": queue.sid,
            "TaskQueueName": queue.friendly_name,
            "TaskQueueTargetExpression": queue.target_workers,
            "WorkflowSid": workflow.sid,
            "WorkflowName": workflow.friendly_name,
            **(
                {"TaskCanceledReason": task.reason}
                if task.assignment_status == "canceled" and task.reason
                else {}
            ),
            **(
                {"TaskCompletedReason": task.reason}
                if task.assignment_status == "completed" and task.reason
                else {}
            ),
        }

    def _worker_params(self, worker: Worker) -> dict[str, str]:
        activity = self.activities[worker.activity_sid]
        return {
            **self._common(),
            "WorkerSid": worker.sid,
            "WorkerName": worker.friendly_name,
            "WorkerAttributes": worker.attributes,
            "WorkerActivitySid": activity.sid,
            "WorkerActivityName": activity.friendly_name,
        }

    def _reservation_params(self, reservation: Reservation) -> dict[str, str]:
        task = self.tasks[reservation.task_sid]
        worker = self.workers[reservation.worker_sid]
        return {
            **self._task_params(task),
            **self._worker_params(worker),
            "ReservationSid": reservation.sid,
        }
