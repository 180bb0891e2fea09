"""When the support team is open: a weekly schedule in one time zone, and holidays.

Written as ``BUSINESS_HOURS`` reads, parts separated by ``;``::

    Europe/London; Mon-Fri 09:00-17:30; Sat 10:00-14:00; closed 2026-12-25, 2026-12-26

The first part is an IANA time zone; each day part names days (``Mon``, ``Mon-Fri``,
``Sat,Sun``) and one or more ranges (``09:00-12:00,13:00-17:00``; ``24:00`` ends a day);
``closed`` lists dates (in that zone) when nobody works all day. A day named twice gets
both sets of ranges.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
#: How far ahead the next opening is looked for: a schedule closed for longer says nothing.
_LOOK_AHEAD_DAYS = 400


class HoursError(ValueError):
    """The schedule cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class BusinessHours:
    zone: ZoneInfo
    #: Per weekday (Monday first): the open ranges, minutes after midnight, sorted.
    week: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date]

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.week[local.weekday()])

    def open_since(self, at: datetime) -> datetime | None:
        """When the open stretch holding ``at`` began (UTC), or None when closed."""
        local = at.astimezone(self.zone)
        if local.date() in self.holidays:
            return None
        minute = local.hour * 60 + local.minute
        for start, end in self.week[local.weekday()]:
            if start <= minute < end:
                return datetime.combine(local.date(), _clock(start), self.zone).astimezone(UTC)
        return None

    def local_words(self, moment: datetime) -> str:
        """``moment`` as the team's own clock reads it: "Monday 7 December, 09:00
        (Europe/London)"."""
        local = moment.astimezone(self.zone)
        return f"{local:%A} {local.day} {local:%B}, {local:%H:%M} ({self.zone.key})"

    def opens_at(self, at: datetime) -> datetime | None:
        """The next moment the team opens after ``at`` (UTC), or None if already open or
        never within a year."""
        if self.is_open(at):
            return None
        local = at.astimezone(self.zone)
        for ahead in range(_LOOK_AHEAD_DAYS):
            day = local.date() + timedelta(days=ahead)
            if day in self.holidays:
                continue
            for start, _end in self.week[day.weekday()]:
                # When clocks go back a local time comes twice (fold 0, then 1): compared
                # as instants, the first still to come.
                local_start = datetime.combine(day, _clock(start), self.zone)
                instants = sorted(local_start.replace(fold=f).astimezone(UTC) for f in (0, 1))
                coming = [instant for instant in instants if instant > at]
                if coming:
                    return coming[0]
        return None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hours_now(hours: BusinessHours) -> Callable[[], dict[str, Any]]:
    """Whether the team is open now and when it opens next, as JSON (the agent desktop
    shows it)."""

    def now() -> dict[str, Any]:
        moment = datetime.now(UTC)
        opening = hours.opens_at(moment)
        return {"open": hours.is_open(moment), "opens_at": iso(opening) if opening else None}

    return now


def _clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def parse_hours(text: str) -> BusinessHours:
    """Read a schedule (see the module's docstring); raises HoursError."""
    parts = [p.strip() for p in text.split(";") if p.strip()]
    if not parts:
        raise HoursError("is empty")
    try:
        zone = ZoneInfo(parts[0])
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(
            f"must start with an IANA time zone such as Europe/London, got {parts[0][:40]!r}"
        ) from None
    week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    holidays: set[date] = set()
    for part in parts[1:]:
        if part.lower().startswith("closed"):
            holidays |= _dates(part[len("closed") :])
            continue
        days_text, _, ranges_text = part.partition(" ")
        ranges = [_range(r) for r in ranges_text.replace(" ", "").split(",") if r]
        if not ranges:
            raise HoursError(f"{part!r} names no hours (write e.g. Mon-Fri 09:00-17:00)")
        for day in _days(days_text):
            week[day] += ranges
    if not any(week):
        raise HoursError("opens on no day of the week")
    return BusinessHours(zone, tuple(tuple(sorted(day)) for day in week), frozenset(holidays))


def _days(text: str) -> list[int]:
    found: list[int] = []
    for piece in text.lower().split(","):
        first, _, last = piece.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise HoursError(f"{text!r} is not a day or day range (Mon, Mon-Fri, Sat,Sun)")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise HoursError(f"{piece!r} runs backwards: write the days Monday first")
        found += range(start, end + 1)
    return found


def _range(text: str) -> tuple[int, int]:
    match = _RANGE.match(text)
    if match is None:
        raise HoursError(f"{text!r} is not a time range like 09:00-17:30")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise HoursError(f"{text!r} is not a time of day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise HoursError(
            f"{text!r} ends before it starts: split a night across two days "
            "(Mon 22:00-24:00; Tue 00:00-06:00)"
        )
    return start, end


def _dates(text: str) -> set[date]:
    found: set[date] = set()
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        try:
            found.add(date.fromisoformat(piece))
        except ValueError:
            raise HoursError(f"closed dates are YYYY-MM-DD, got {piece[:20]!r}") from None
    if not found:
        raise HoursError("'closed' lists no dates (closed 2026-12-25, 2026-12-26)")
    return found
