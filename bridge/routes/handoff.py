"""The hand-off API: /send, /replies and /end, all answering ``{status, replies, note}``.

Thin: who the caller is (:mod:`bridge.auth.caller`), the body or query read, the core
called; its refusals become JSON errors in :mod:`bridge.errors`.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from bridge import logs
from bridge.core.outcomes import HandoffResult
from bridge.errors import ApiError
from bridge.identity import for_username
from bridge.notes import Vocabulary, note
from bridge.request_body import json_or_none
from bridge.routes import services

handoff = Blueprint("handoff", __name__)

#: The API's operations as the OpenAPI contract names them (what the model calls).
WORDS = Vocabulary(send="sendMessage", replies="getReplies")


async def identify(username: str) -> tuple[str, str | None]:
    """The caller's identity and shared profile, noted for the request's log lines.

    In ``oauth`` mode the identity is the signed-in user's and the path's user name is
    ignored, so no caller can reach another user's conversation.
    """
    wired = services()
    caller = await wired.callers.authenticate(request.headers, "api")
    identity = caller.identity or for_username(wired.secret, username)
    logs.identity.set(identity)
    return identity, caller.profile


def answer(result: HandoffResult) -> dict[str, object]:
    return result.to_json(note(result.outcome, WORDS))


async def _json_object() -> dict[str, Any]:
    body = await json_or_none()
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "invalid_json",
            'The body must be a JSON object of Unicode text, such as {"msg": "I need a human"}.',
        )
    return body


@handoff.post("/send/<username>")
async def send_message(username: str) -> dict[str, object]:
    identity, profile = await identify(username)
    body = await _json_object()
    result = await services().handoff.send(
        identity, body.get("msg"), body.get("context"), profile=profile
    )
    return answer(result)


@handoff.get("/replies/<username>")
async def get_replies(username: str) -> dict[str, object]:
    identity, _ = await identify(username)
    try:
        wait = float(request.args.get("wait", "0"))
    except ValueError:
        raise ApiError(400, "invalid_wait", "'wait' must be a number of seconds.") from None
    return answer(await services().handoff.replies(identity, wait))


@handoff.post("/end/<username>")
async def end_conversation(username: str) -> dict[str, object]:
    identity, _ = await identify(username)
    return answer(await services().handoff.end(identity))
