"""The workspace's event callback: each event TaskRouter would report, form-encoded and
signed like every Twilio webhook, to EventCallbackUrl (filtered by EventsFilter)."""

from __future__ import annotations

from bridge.sandbox.shared.clock import iso
from bridge.sandbox.shared.delivery import SignedDelivery
from bridge.sandbox.taskrouter.state import Workspace, WorkspaceEvent


class EventCallbacks:
    def __init__(self, workspace: Workspace, delivery: SignedDelivery) -> None:
        self._workspace = workspace
        self._delivery = delivery
        workspace.subscribe(self.on_event)

    def on_event(self, event: WorkspaceEvent) -> None:
        url = self._workspace.event_callback_url
        wanted = self._workspace.events_filter
        if not url or (wanted and event.event_type not in wanted):
            return
        params = {
            **event.params,
            "Sid": event.sid,
            "EventType": event.event_type,
            "EventDescription": event.description,
            "ResourceType": event.resource_type,
            "ResourceSid": event.resource_sid,
            "Timestamp": str(int(event.date.timestamp())),
            "TimestampMs": str(int(event.date.timestamp() * 1000)),
            "EventDate": iso(event.date) or "",
        }
        self._delivery.send(url, "post", params)
