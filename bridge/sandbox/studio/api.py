"""The Studio v2 Flows API subset, at ``/sandbox/studio/v2``."""

from __future__ import annotations

from quart import Response, current_app, jsonify

from bridge.sandbox.shared.rest import base_url, created, listing, read_form, twilio_api
from bridge.sandbox.studio import resources
from bridge.sandbox.studio.state import Studio

#: Where a client points ``client.studio.base_url``.
API_PREFIX = "/sandbox/studio"
api = twilio_api("studio_api", f"{API_PREFIX}/v2")
MAX_PAGE = 50


def _studio() -> Studio:
    found: Studio = current_app.config["SANDBOX_STUDIO"]
    return found


def _account() -> str:
    sid: str = current_app.config["SANDBOX_ACCOUNT_SID"]
    return sid


@api.get("/Flows")
async def list_flows() -> Response:
    base = base_url(API_PREFIX)
    return listing(
        "flows",
        list(_studio().flows.values()),
        lambda item: resources.flow(base, _account(), item),
        f"{base}/v2/Flows",
        maximum=MAX_PAGE,
    )


@api.post("/Flows")
async def create_flow() -> tuple[Response, int]:
    form = await read_form()
    made = _studio().create_flow(
        form.get("FriendlyName"),
        form.get("Status"),
        form.get("Definition"),
        form.get("CommitMessage"),
    )
    return created(resources.flow(base_url(API_PREFIX), _account(), made))


@api.get("/Flows/<sid>")
async def fetch_flow(sid: str) -> Response:
    return jsonify(resources.flow(base_url(API_PREFIX), _account(), _studio().flow(sid)))


@api.post("/Flows/<sid>")
async def update_flow(sid: str) -> Response:
    studio = _studio()
    form = await read_form()
    flow = studio.update_flow(
        studio.flow(sid),
        form.get("Status"),
        form.get("FriendlyName"),
        form.get("Definition"),
        form.get("CommitMessage"),
    )
    return jsonify(resources.flow(base_url(API_PREFIX), _account(), flow))
