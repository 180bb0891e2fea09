"""JSON representations of Studio v2 resources, shaped like Twilio's."""

from __future__ import annotations

from typing import Any

from bridge.sandbox.shared.clock import iso
from bridge.sandbox.studio.state import Flow


def flow(base: str, account_sid: str, item: Flow) -> dict[str, Any]:
    url = f"{base}/v2/Flows/{item.sid}"
    return {
        "sid": item.sid,
        "account_sid": account_sid,
        "author_sid": None,
        "friendly_name": item.friendly_name,
        "definition": item.definition,
        "status": item.status,
        "revision": item.revision,
        "commit_message": item.commit_message,
        "valid": True,
        "errors": [],
        "warnings": [],
        "webhook_url": None,  # the sandbox's flows run from Studio webhooks only
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "url": url,
        "links": {
            "test_users": f"{url}/TestUsers",
            "revisions": f"{url}/Revisions",
            "executions": f"{url}/Executions",
        },
    }
