"""Twilio's exceptions become the bridge's own errors at one boundary."""

from __future__ import annotations

import aiohttp
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.response import Response

from bridge.conversations import (
    ConversationClosed,
    ConversationNotFound,
    ParticipantExists,
    TwilioError,
    TwilioRejected,
    TwilioUnavailable,
    UniqueNameTaken,
    translate,
)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, 20404, ConversationNotFound),
        (409, 50377, ConversationClosed),
        (409, 50353, UniqueNameTaken),
        (409, 50433, ParticipantExists),
        (401, 20003, TwilioRejected),
        (400, 20001, TwilioRejected),
        (429, 20429, TwilioUnavailable),
        (500, 20500, TwilioUnavailable),
        (503, None, TwilioUnavailable),
    ],
)
def test_rest_exceptions(status: int, code: int | None, expected: type[TwilioError]) -> None:
    error = translate("op", TwilioRestException(status, "/x", "msg", code))
    assert type(error) is expected
    assert (error.status, error.code, error.operation) == (status, code, "op")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, TwilioUnavailable),
        (502, TwilioUnavailable),
        (404, ConversationNotFound),
        (401, TwilioRejected),
    ],
)
def test_plain_exception_from_list_calls(status: int, expected: type[TwilioError]) -> None:
    exc = TwilioException("Unable to fetch page", Response(status, "{}"))
    assert type(translate("list", exc)) is expected


def test_network_failures_are_unavailable() -> None:
    assert type(translate("op", TimeoutError())) is TwilioUnavailable
    assert type(translate("op", aiohttp.ClientConnectionError())) is TwilioUnavailable
    assert type(translate("op", ConnectionRefusedError())) is TwilioUnavailable
