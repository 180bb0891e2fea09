"""``/sandbox/control``: faults and call counts, for tests and benchmarks."""

from __future__ import annotations

from quart import Blueprint, current_app, jsonify, request
from quart.wrappers import Response

from bridge.sandbox.faults import Faults, Stats
from bridge.sandbox.shared.errors import invalid
from bridge.sandbox.shared.rest import authenticate

control = Blueprint("sandbox_control", __name__, url_prefix="/sandbox/control")
control.before_request(authenticate)


def _faults() -> Faults:
    faults: Faults = current_app.config["SANDBOX_FAULTS"]
    return faults


def _stats() -> Stats:
    stats: Stats = current_app.config["SANDBOX_STATS"]
    return stats


@control.get("/faults")
async def get_faults() -> Response:
    return jsonify(_faults().as_dict())


@control.put("/faults")
async def put_faults() -> Response:
    changes = await request.get_json(force=True, silent=True)
    if not isinstance(changes, dict):
        raise invalid("Send a JSON object of fault settings")
    try:
        _faults().update(changes)
    except ValueError as error:
        raise invalid(str(error)) from None
    return jsonify(_faults().as_dict())


@control.get("/stats")
async def get_stats() -> Response:
    return jsonify(_stats().as_dict())


@control.delete("/stats")
async def reset_stats() -> Response:
    _stats().reset()
    return jsonify(_stats().as_dict())
