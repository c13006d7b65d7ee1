"""Business-hours calendars: when a service desk is open, and how far a window reaches when only
open time counts.

A window "in business time" counts days as business days (5 business days from a Friday
afternoon end the next Friday afternoon, not on Wednesday) and hours and minutes as open time
(4 hours from Friday 15:00, open 09:00-17:00, end on Monday at 11:00). Holidays are closed all
day. Opening hours are wall-clock times in the calendar's IANA time zone, so they stay put
across daylight-saving changes; durations of open time are real elapsed time.

Pure functions of a calendar and a moment: the workflow calls them, and replay gives the same
answers, because the calendar is part of the policy snapshot in the history.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    field_serializer,
    field_validator,
    model_validator,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
HOURS_HINT = 'write opening hours like "09:00-17:00", or "09:00-12:30, 13:30-17:00" for a break'


def known_zone(value: str) -> str:
    """An IANA time zone name, or a ValueError saying what to write."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: write an IANA name such as Europe/London") from None
    return value


ZoneName = Annotated[str, AfterValidator(known_zone)]


def _parse_ranges(value: Any) -> list[tuple[time, time]]:
    if value in (None, "", "closed"):
        return []
    parts = value if isinstance(value, list) else str(value).split(",")
    ranges: list[tuple[time, time]] = []
    for part in parts:
        match = _RANGE.fullmatch(str(part))
        if not match:
            raise ValueError(f"{part!r} is not an opening time range: {HOURS_HINT}")
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if not (0 <= h1 <= 23 and 0 <= m1 <= 59 and (0 <= h2 <= 23 and 0 <= m2 <= 59 or (h2, m2) == (24, 0))):
            raise ValueError(f"{part!r} is not a time of day: {HOURS_HINT}")
        start = time(h1, m1)
        end = time.max if (h2, m2) == (24, 0) else time(h2, m2)
        if end <= start:
            raise ValueError(f"{part!r} ends before it starts: {HOURS_HINT} (use 24:00 for midnight)")
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in pairwise(ranges):
        if start < end:
            raise ValueError(f"the ranges in {value!r} overlap: {HOURS_HINT}")
    return ranges


def _expand_days(hours: Any) -> Any:
    """``mon-fri: 09:00-17:00`` and ``sat: closed`` into one entry per weekday."""
    if not isinstance(hours, dict):
        return hours
    week: dict[str, Any] = {}
    for key, value in hours.items():
        name = str(key).strip().lower()
        if "-" in name:
            first, _, last = name.partition("-")
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"unknown days {key!r}: write e.g. mon-fri (days are {', '.join(DAYS)})")
            i, j = DAYS.index(first), DAYS.index(last)
            names = DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1]
        elif name in DAYS:
            names = (name,)
        else:
            raise ValueError(f"unknown day {key!r}: write one of {', '.join(DAYS)} or a range like mon-fri")
        for day in names:
            week[day] = value
    return week


class Calendar(BaseModel):
    """Opening hours per weekday in a time zone, and holidays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: ZoneName
    hours: Annotated[dict[str, list[tuple[time, time]]], BeforeValidator(_expand_days)]
    holidays: list[date] = []


    @field_validator("hours", mode="before")
    @classmethod
    def _ranges(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError('give opening hours per day, e.g. {mon-fri: "09:00-17:00"}')
        return {day: _parse_ranges(ranges) for day, ranges in value.items()}

    @field_serializer("hours")
    def _write_hours(self, hours: dict[str, list[tuple[time, time]]]) -> dict[str, str]:
        def clock(moment: time) -> str:
            return "24:00" if moment == time.max else moment.strftime("%H:%M")

        return {day: ", ".join(f"{clock(a)}-{clock(b)}" for a, b in ranges) or "closed" for day, ranges in hours.items()}

    @model_validator(mode="after")
    def _open_sometimes(self) -> Calendar:
        if not any(self.hours.get(day) for day in DAYS):
            raise ValueError('the calendar is never open: give opening hours, e.g. {mon-fri: "09:00-17:00"}')
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_business_day(self, day: date) -> bool:
        return bool(self.hours.get(DAYS[day.weekday()])) and day not in self.holidays

    def open_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's open intervals as aware UTC datetimes (empty on closed days)."""
        if not self.is_business_day(day):
            return []
        zone = self.zone
        intervals = []
        for start, end in self.hours[DAYS[day.weekday()]]:
            opens = datetime.combine(day, start, zone)
            closes = datetime.combine(day + timedelta(days=1), time(0), zone) if end == time.max else datetime.combine(day, end, zone)
            intervals.append((opens.astimezone(UTC), closes.astimezone(UTC)))
        return intervals

    def is_open(self, moment: datetime) -> bool:
        local_day = moment.astimezone(self.zone).date()
        return any(opens <= moment < closes for opens, closes in self.open_intervals(local_day))


_MAX_DAYS_SEARCHED = 3 * 366
"""A calendar that is closed for longer than this (holidays on every open day) is an error."""


def _days_from(day: date, step: int = 1) -> Any:
    for offset in range(_MAX_DAYS_SEARCHED):
        yield day + timedelta(days=offset * step)
    raise ValueError("the calendar has no open time within three years")


def next_open(calendar: Calendar, moment: datetime) -> datetime:
    """``moment`` if the calendar is open then, else the next time it opens."""
    for day in _days_from(moment.astimezone(calendar.zone).date()):
        for opens, closes in calendar.open_intervals(day):
            if moment < closes:
                return max(moment, opens)
    raise AssertionError("unreachable")


def add_open_time(calendar: Calendar, start: datetime, amount: timedelta) -> datetime:
    """The moment by which ``amount`` of open time has passed since ``start``."""
    left = amount
    moment = start
    for day in _days_from(start.astimezone(calendar.zone).date() - timedelta(days=1)):
        for opens, closes in calendar.open_intervals(day):
            if closes <= moment:
                continue
            begin = max(moment, opens)
            if begin + left <= closes:
                return begin + left
            left -= closes - begin
            moment = closes
    raise AssertionError("unreachable")


def open_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """How much open time lies between two moments (zero if ``end`` is not after ``start``)."""
    total = timedelta(0)
    if end <= start:
        return total
    for day in _days_from(start.astimezone(calendar.zone).date() - timedelta(days=1)):
        for opens, closes in calendar.open_intervals(day):
            if opens >= end:
                return total
            total += max(timedelta(0), min(closes, end) - max(opens, start))
    raise AssertionError("unreachable")


def subtract_open_time(calendar: Calendar, end: datetime, amount: timedelta) -> datetime:
    """The moment ``amount`` of open time before ``end``."""
    left = amount
    moment = end
    for day in _days_from(end.astimezone(calendar.zone).date() + timedelta(days=1), step=-1):
        for opens, closes in reversed(calendar.open_intervals(day)):
            if opens >= moment:
                continue
            finish = min(moment, closes)
            if finish - left >= opens:
                return finish - left
            left -= finish - opens
            moment = opens
    raise AssertionError("unreachable")


def add_business_days(calendar: Calendar, start: datetime, days: int) -> datetime:
    """The same time of day ``days`` business days later (starting from the next opening if the
    calendar is closed at ``start``); on a day with shorter hours, that day's closing time."""
    moment = next_open(calendar, start)
    if days == 0:
        return moment
    local = moment.astimezone(calendar.zone)
    day = local.date()
    counted = 0
    step = 1 if days > 0 else -1
    days = abs(days)
    for candidate in _days_from(day + timedelta(days=step), step=step):
        if calendar.is_business_day(candidate):
            counted += 1
            if counted == days:
                day = candidate
                break
    target = datetime.combine(day, local.time().replace(tzinfo=None), calendar.zone).astimezone(UTC)
    intervals = calendar.open_intervals(day)
    if any(opens <= target < closes for opens, closes in intervals):
        return target
    earlier = [closes for _, closes in intervals if closes <= target]
    return earlier[-1] if earlier else intervals[0][0]


def _split(amount: timedelta) -> tuple[int, timedelta]:
    days = int(amount.total_seconds() // 86400)
    return days, amount - timedelta(days=days)


def add_business_time(calendar: Calendar, start: datetime, amount: timedelta) -> datetime:
    """``amount`` in business time from ``start``: its days as business days, the rest as open time."""
    days, rest = _split(amount)
    return add_open_time(calendar, add_business_days(calendar, start, days), rest)


def subtract_business_time(calendar: Calendar, end: datetime, amount: timedelta) -> datetime:
    """The moment ``amount`` in business time before ``end`` (days as business days back, the
    rest as open time back): where a reminder ``remind_before`` a business deadline falls."""
    days, rest = _split(amount)
    moment = subtract_open_time(calendar, end, rest) if rest else end
    return add_business_days(calendar, moment, -days) if days else moment
