"""The REST surface every emulated product shares: Basic authentication with the account's
credentials, the configured faults, forms, and listings with absolute paging URLs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from quart import Blueprint, Response, current_app, jsonify, request
from werkzeug.datastructures import MultiDict

from bridge.sandbox.faults import Faults, Stats
from bridge.sandbox.shared.errors import EmulatorError, twilio_error
from bridge.sandbox.shared.paging import page, page_request

T = TypeVar("T")


async def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    expected = (current_app.config["SANDBOX_ACCOUNT_SID"], current_app.config["SANDBOX_AUTH_TOKEN"])
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if hmac.compare_digest(user.encode(), expected[0].encode()) and hmac.compare_digest(
            password.encode(), expected[1].encode()
        ):
            return
    raise EmulatorError(401, 20003, "Authenticate")


def twilio_api(name: str, prefix: str) -> Blueprint:
    """A blueprint for one product's API at ``prefix`` (its base URL, as a client sets it),
    authenticated and subject to the sandbox's faults like every Twilio API."""
    api = Blueprint(name, __name__, url_prefix=prefix)

    @api.before_request
    async def before_call() -> None:
        """Authenticate, count the call, then apply the configured faults."""
        await authenticate()
        stats: Stats = current_app.config["SANDBOX_STATS"]
        faults: Faults = current_app.config["SANDBOX_FAULTS"]
        operation = (request.endpoint or "unknown").rsplit(".", 1)[-1]
        stats.calls[operation] += 1
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if Faults.chance(faults.rate_429):
            raise EmulatorError(429, 20429, "Too Many Requests")
        if Faults.chance(faults.rate_500):
            raise EmulatorError(500, 20500, "Internal Server Error")

    @api.after_request
    async def after_call(response: Response) -> Response:
        """A write that took effect but whose answer is lost: the caller cannot tell."""
        faults: Faults = current_app.config["SANDBOX_FAULTS"]
        write = request.method in ("POST", "DELETE") and response.status_code < 300
        if write and Faults.chance(faults.rate_lost_response):
            return twilio_error(500, 20500, "Internal Server Error")
        return response

    return api


def base_url(prefix: str) -> str:
    """Absolute base of an API as the caller reached it (for ``url`` and paging links)."""
    return f"{request.scheme}://{request.host}{request.root_path}{prefix}"


async def read_form() -> MultiDict[str, str]:
    form: MultiDict[str, str] = await request.form
    return form


def listing(
    key: str,
    items: Sequence[T],
    render: Callable[[T], dict[str, Any]],
    list_url: str,
    *,
    maximum: int,
    filters: dict[str, str] | None = None,
) -> Response:
    """One page of ``items`` as Twilio lists them, from PageSize/Page/PageToken."""
    size, number = page_request(maximum)
    return jsonify(
        page(
            key=key,
            items=items,
            render=render,
            list_url=list_url,
            page_size=size,
            page_number=number,
            filters=filters or {},
        )
    )


def created(body: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(body), 201


def no_content() -> Response:
    return Response("", status=204)
