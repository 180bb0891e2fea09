"""The bridge's one error type, and its mapping to JSON in one place."""

from __future__ import annotations

import logging

from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException

from bridge.auth.caller import Unauthenticated
from bridge.conversations import TwilioError, TwilioUnavailable
from bridge.core.errors import (
    Busy,
    ContextTooLong,
    HandoffError,
    InvalidChoice,
    InvalidContext,
    InvalidMessage,
    InvalidUsername,
    InvalidWait,
    MessageTooLong,
    NothingToChoose,
    RateLimited,
    TooManyWaiting,
)
from bridge.store import StoreUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the caller can act on: answered as ``{"error": {"code", "message"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.headers = headers or {}


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


#: One answer for a path nothing serves, wherever it falls (the API, /mcp, the sandbox).
NOT_FOUND = "Nothing here; / lists what this service serves, /docs the API."

_HTTP_MESSAGES = {
    400: ("bad_request", "The request could not be read; send JSON with a 'msg' string."),
    404: ("not_found", NOT_FOUND),
    405: ("method_not_allowed", "This endpoint does not take that HTTP method; see /openapi.yaml."),
    413: ("too_large", "The request body is too large."),
}


def from_handoff_error(error: HandoffError) -> ApiError:
    """The core's refusal, worded for the HTTP API (its field names, its status codes)."""
    if isinstance(error, RateLimited):
        return ApiError(
            429,
            "rate_limited",
            "Too many messages for this user; wait before sending the next one.",
            retry_after=error.retry_after,
        )
    if isinstance(error, InvalidUsername):
        return ApiError(
            400,
            "invalid_username",
            "The username must be 1 to 128 characters of letters, digits and . _ @ + -.",
        )
    if isinstance(error, InvalidMessage):
        return ApiError(400, "invalid_msg", "'msg' must be a non-empty string: the user's message.")
    if isinstance(error, MessageTooLong):
        return ApiError(
            413,
            "message_too_long",
            f"'msg' has {error.length} characters; the limit is {error.limit}. Shorten it "
            "or send it in several messages.",
        )
    if isinstance(error, InvalidContext):
        return ApiError(400, "invalid_context", "'context' must be a string when given.")
    if isinstance(error, ContextTooLong):
        return ApiError(
            413,
            "context_too_long",
            f"'context' must be at most {error.limit} characters: summarise it.",
        )
    if isinstance(error, TooManyWaiting):
        return ApiError(
            429,
            "too_many_waiting",
            "This user already has several calls waiting for a reply; let them finish "
            "before waiting again.",
            retry_after=error.retry_after,
        )
    if isinstance(error, Busy):
        return ApiError(
            429,
            "busy",
            "The support line is taking many new conversations right now; try again shortly.",
            retry_after=error.retry_after,
        )
    if isinstance(error, InvalidChoice):
        return ApiError(
            400,
            "invalid_choice",
            "'choice' must be keep_waiting, leave_message or continue_with_assistant.",
        )
    if isinstance(error, NothingToChoose):
        return ApiError(
            409,
            "nothing_to_choose",
            "This user has no conversation waiting for an agent (none yet, an agent has it, "
            "or it ended); there is nothing to choose. Call getReplies to see where it stands.",
        )
    if isinstance(error, InvalidWait):
        return ApiError(400, "invalid_wait", "'wait' must be a number of seconds, 0 or more.")
    return ApiError(400, "bad_request", str(error))


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(HandoffError)
    async def handoff_error(error: HandoffError) -> Response:
        return await api_error(from_handoff_error(error))

    @app.errorhandler(Unauthenticated)
    async def unauthenticated(error: Unauthenticated) -> Response:
        return await api_error(
            ApiError(401, error.code, error.message, headers={"WWW-Authenticate": error.challenge})
        )

    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.code, error.message)
        response.headers.update(error.headers)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(StoreUnavailable)
    async def store_unavailable(error: StoreUnavailable) -> Response:
        log.warning("store unavailable: %s", error.detail)
        response = error_response(
            503,
            "store_unavailable",
            "The service's database is not answering right now; try again in a few seconds.",
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(TwilioError)
    async def twilio_error(error: TwilioError) -> Response:
        if isinstance(error, TwilioUnavailable):
            response = error_response(
                503,
                "twilio_unavailable",
                "Twilio is not answering right now; try again in a few seconds.",
            )
            response.headers["Retry-After"] = "5"
            return response
        log.warning(
            "twilio refused %s: status=%s code=%s", error.operation, error.status, error.code
        )
        detail = f"status {error.status}, code {error.code}" if error.status else str(error)
        return error_response(
            502,
            "twilio_error",
            f"Twilio refused the request ({detail}); the service's Twilio settings need checking.",
        )

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code, message = _HTTP_MESSAGES.get(
            status, (error.name.lower().replace(" ", "_"), error.description or error.name)
        )
        response = error_response(status, code, message)
        if status == 405 and error.get_headers():
            for name, value in error.get_headers():
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unhandled error: %s", type(error).__name__)
        return error_response(500, "internal_error", "Something went wrong on our side; try again.")
