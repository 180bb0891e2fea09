"""The hand-off API: /send, /replies and /end, all answering ``{status, replies, note}``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from bridge.auth.caller import identify
from bridge.errors import ApiError
from bridge.ratelimit import retry_after
from bridge.request_body import json_or_none
from bridge.services import services

handoff = Blueprint("handoff", __name__)

MAX_CONTEXT_CHARS = 2000


async def _json_object() -> dict[str, Any]:
    body = await json_or_none()
    if not isinstance(body, dict):
        raise ApiError(
            400, "invalid_json", 'The body must be a JSON object such as {"msg": "I need a human"}.'
        )
    return body


@handoff.post("/send/<username>")
async def send_message(username: str) -> dict[str, object]:
    caller = await identify(username)
    wait = services().rate_limiter.check(caller.identity)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "Too many messages for this user; wait before sending the next one.",
            retry_after=retry_after(wait),
        )
    body = await _json_object()
    msg = body.get("msg")
    if not isinstance(msg, str) or not msg.strip():
        raise ApiError(400, "invalid_msg", "'msg' must be a non-empty string: the user's message.")
    limit = services().settings.max_message_chars
    if len(msg) > limit:
        raise ApiError(
            413,
            "message_too_long",
            f"'msg' has {len(msg)} characters; the limit is {limit}. Shorten it "
            "or send it in several messages.",
        )
    context = body.get("context")
    if context is not None and not isinstance(context, str):
        raise ApiError(400, "invalid_context", "'context' must be a string when given.")
    if context is not None and len(context) > MAX_CONTEXT_CHARS:
        raise ApiError(
            413,
            "context_too_long",
            f"'context' must be at most {MAX_CONTEXT_CHARS} characters: summarise it.",
        )
    result = await services().handoff.send(
        caller.identity, msg, (context or "").strip() or None, profile=caller.profile
    )
    return result.to_json()


@handoff.get("/replies/<username>")
async def get_replies(username: str) -> dict[str, object]:
    caller = await identify(username)
    raw = request.args.get("wait", "0")
    try:
        wait = float(raw)
    except ValueError:
        raise ApiError(400, "invalid_wait", "'wait' must be a number of seconds.") from None
    if not 0 <= wait < float("inf"):
        raise ApiError(400, "invalid_wait", "'wait' must be a number of seconds, 0 or more.")
    result = await services().handoff.replies(caller.identity, wait)
    return result.to_json()


@handoff.post("/end/<username>")
async def end_conversation(username: str) -> dict[str, object]:
    result = await services().handoff.end((await identify(username)).identity)
    return result.to_json()
