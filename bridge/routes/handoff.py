"""The hand-off API: /send, /replies, /end and /choose, all answering ``{status, replies, note,
handoff}``.

Thin: who the caller is (:mod:`bridge.auth.caller`), the body or query read, the core
called; its refusals become JSON errors in :mod:`bridge.errors`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Response, current_app, request

from bridge import logs
from bridge.core.outcomes import HandoffResult
from bridge.errors import ApiError
from bridge.identity import for_username
from bridge.notes import Vocabulary, worded
from bridge.request_body import json_or_none
from bridge.routes import services
from bridge.store import NOTHING_SEEN

handoff = Blueprint("handoff", __name__)

#: The API's operations as the OpenAPI contract names them (what the model calls).
WORDS = Vocabulary(
    send="sendMessage", replies="getReplies", choose="chooseNextStep", end="endConversation"
)
#: ``after``: a reply's id (a Twilio message SID), or "none" (no reply seen yet).
AFTER = re.compile(rf"IM[0-9a-fA-F]{{32}}|{NOTHING_SEEN}")


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


def answer(identity: str, result: HandoffResult) -> Response:
    """The answer, its replies counted delivered only once it was written to the caller's
    connection; if the caller went away first, they are handed out again."""
    data = worded(result, WORDS)
    body = (current_app.json.dumps(data) + "\n").encode()
    handoff = services().handoff
    if result.lease is None:
        return Response(body, content_type="application/json")

    async def delivering() -> AsyncIterator[bytes]:
        written = False
        try:
            yield body
            written = True  # asked for more: the body went out to a connection still open
        finally:
            if written:
                await handoff.confirm(result)
            else:
                await handoff.release(identity, result)

    response = Response(delivering(), content_type="application/json")
    response.headers["Content-Length"] = str(len(body))
    return response


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
async def send_message(username: str) -> Response:
    identity, profile = await identify(username)
    body = await _json_object()
    result = await services().handoff.send(
        identity, body.get("msg"), body.get("context"), profile=profile
    )
    return answer(identity, result)


@handoff.get("/replies/<username>")
async def get_replies(username: str) -> Response:
    identity, _ = await identify(username)
    try:
        wait = float(request.args.get("wait", "0"))
    except ValueError:
        raise ApiError(400, "invalid_wait", "'wait' must be a number of seconds.") from None
    after = request.args.get("after") or None
    if after is not None and not AFTER.fullmatch(after):
        raise ApiError(
            400,
            "invalid_after",
            "'after' must be the id of a reply, as answered (IM…), or none.",
        )
    return answer(identity, await services().handoff.replies(identity, wait, after))


@handoff.post("/end/<username>")
async def end_conversation(username: str) -> Response:
    identity, _ = await identify(username)
    return answer(identity, await services().handoff.end(identity))


@handoff.post("/choose/<username>")
async def choose_next_step(username: str) -> Response:
    """What the user chose once no agent accepted in time (see the note that asks)."""
    identity, _ = await identify(username)
    body = await _json_object()
    return answer(identity, await services().handoff.choose(identity, body.get("choice")))
