"""BUSINESS_HOURS: reading the schedule, open or closed at a moment, the next opening."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.config import ConfigError, load_settings
from bridge.hours import HoursError, parse_hours

LONDON = "Europe/London; Mon-Fri 09:00-12:00,13:00-17:30; Sat 10:00-14:00; closed 2026-12-25"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ("2026-12-02 09:00", True),  # Wednesday, GMT in winter
        ("2026-12-02 08:59", False),
        ("2026-12-02 12:30", False),  # lunch
        ("2026-12-02 17:29", True),
        ("2026-12-02 17:30", False),  # the end is not open
        ("2026-12-05 11:00", True),  # Saturday
        ("2026-12-06 11:00", False),  # Sunday
        ("2026-12-25 10:00", False),  # a holiday (a Friday)
        ("2026-07-01 08:30", True),  # summer: 09:30 in London
        ("2026-07-01 16:29", True),  # 17:30 in London is 16:30 UTC
        ("2026-07-01 16:30", False),
    ],
)
def test_open_follows_the_local_schedule_and_holidays(moment: str, open_: bool) -> None:
    assert parse_hours(LONDON).is_open(utc(moment)) is open_


def test_the_next_opening_skips_lunch_nights_weekends_and_holidays() -> None:
    hours = parse_hours(LONDON)
    assert hours.opens_at(utc("2026-12-02 10:00")) is None  # open now
    assert hours.opens_at(utc("2026-12-02 12:15")) == utc("2026-12-02 13:00")
    assert hours.opens_at(utc("2026-12-02 18:00")) == utc("2026-12-03 09:00")
    assert hours.opens_at(utc("2026-12-05 15:00")) == utc("2026-12-07 09:00")  # Sat → Mon
    assert hours.opens_at(utc("2026-12-24 18:00")) == utc("2026-12-26 10:00")  # holiday Fri
    # British Summer Time: 09:00 in London is 08:00 UTC.
    assert hours.opens_at(utc("2026-06-30 20:00")) == utc("2026-07-01 08:00")


def test_a_day_named_twice_gets_both_ranges_and_24_00_ends_a_day() -> None:
    hours = parse_hours("UTC; Mon 08:00-10:00; Mon 20:00-24:00")
    monday = "2026-11-30"
    assert hours.is_open(utc(f"{monday} 09:00"))
    assert not hours.is_open(utc(f"{monday} 12:00"))
    assert hours.is_open(utc(f"{monday} 23:59"))
    assert hours.opens_at(utc(f"{monday} 12:00")) == utc(f"{monday} 20:00")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "is empty"),
        ("Mars/Olympus; Mon 09:00-17:00", "IANA time zone"),
        ("UTC", "opens on no day"),
        ("UTC; Funday 09:00-17:00", "not a day"),
        ("UTC; Fri-Mon 09:00-17:00", "runs backwards"),
        ("UTC; Mon", "names no hours"),
        ("UTC; Mon 9-17", "not a time range"),
        ("UTC; Mon 09:00-25:00", "not a time of day"),
        ("UTC; Mon 22:00-06:00", "split a night"),
        ("UTC; Mon 09:00-17:00; closed 25/12/2026", "YYYY-MM-DD"),
        ("UTC; Mon 09:00-17:00; closed", "lists no dates"),
    ],
)
def test_a_schedule_that_cannot_be_read_says_why(text: str, said: str) -> None:
    with pytest.raises(HoursError, match=said):
        parse_hours(text)


def test_settings_refuse_bad_hours_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"BUSINESS_HOURS .*IANA"):
        load_settings({"BUSINESS_HOURS": "Nowhere; Mon 09:00-17:00"})
    with pytest.raises(ConfigError, match="UNAVAILABLE_POLICY must be take_message or decline"):
        load_settings({"UNAVAILABLE_POLICY": "shrug"})
    with pytest.raises(ConfigError, match="ASSIGNMENT_TIMEOUT_SECONDS"):
        load_settings({"ASSIGNMENT_TIMEOUT_SECONDS": "-5"})
    real = {
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "1" * 32,
        "TWILIO_FLOW_SID": "FW" + "1" * 32,
        "BRIDGE_SECRET": "kT9vQ2mX7pL4wZ8rN3bY6cF1hJ5dG0sA",
        "ALLOW_INSECURE_NO_AUTH": "1",
    }
    with pytest.raises(ConfigError, match="QUEUE_REFRESH_SECONDS must be at least 1"):
        load_settings({**real, "QUEUE_REFRESH_SECONDS": "0.2"})
    assert load_settings({**real, "QUEUE_REFRESH_SECONDS": "1"}).queue_refresh_seconds == 1
    settings = load_settings({"ASSIGNMENT_TIMEOUT_SECONDS": "off", "BUSINESS_HOURS": LONDON})
    assert settings.assignment_timeout_seconds is None
    assert settings.business_hours is not None
    assert load_settings({}).assignment_timeout_seconds == 300
    assert load_settings({}).unavailable_policy == "take_message"


def test_when_clocks_go_back_the_next_opening_is_still_to_come() -> None:
    # 25 October 2026: London goes from 02:00 BST (01:00 UTC) back to 01:00 GMT, so the
    # local 01:00-02:00 comes twice: 00:00-01:00 UTC, then 01:00-02:00 UTC.
    hours = parse_hours("Europe/London; Sun 01:30-03:00")
    assert hours.opens_at(utc("2026-10-25 00:15")) == utc("2026-10-25 00:30")  # 01:30 BST
    assert hours.is_open(utc("2026-10-25 00:45"))  # 01:45 BST
    assert not hours.is_open(utc("2026-10-25 01:15"))  # 01:15 GMT, the second time round
    assert hours.opens_at(utc("2026-10-25 01:15")) == utc("2026-10-25 01:30")  # 01:30 GMT
    assert hours.is_open(utc("2026-10-25 01:35"))


def test_open_since_is_the_start_of_the_stretch_now_open() -> None:
    hours = parse_hours(LONDON)
    assert hours.open_since(utc("2026-12-02 10:30")) == utc("2026-12-02 09:00")
    assert hours.open_since(utc("2026-12-02 14:00")) == utc("2026-12-02 13:00")
    assert hours.open_since(utc("2026-12-02 12:30")) is None  # lunch
    assert hours.local_words(utc("2026-07-01 08:00")) == "Wednesday 1 July, 09:00 (Europe/London)"
