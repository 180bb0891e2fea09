"""Errors as Twilio answers them: ``{code, message, more_info, status}``."""

from __future__ import annotations

import json

from quart import Response, jsonify


class EmulatorError(Exception):
    """An error answered the way Twilio answers it."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(path: str) -> EmulatorError:
    return EmulatorError(404, 20404, f"The requested resource {path} was not found")


def invalid(message: str) -> EmulatorError:
    return EmulatorError(400, 20001, message)


def check_json_attributes(attributes: str | None) -> str:
    if attributes is None or attributes == "":
        return "{}"
    try:
        json.loads(attributes)
    except ValueError:
        raise invalid(
            "Invalid Attributes: the string must contain structurally valid JSON"
        ) from None
    return attributes


def twilio_error(status: int, code: int, message: str) -> Response:
    response = jsonify(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
    )
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response
