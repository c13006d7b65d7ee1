"""On-call schedules: who is on call at a given moment.

A schedule has layers of rotations and temporary overrides. A rotation hands over every
``shift`` (``1d``, ``1w``, ``12h``) at its hand-off time in its time zone, going round its
participants from its start date. A later layer wins over an earlier one wherever it has someone
(a weekend layer over the weekly one); an override wins over every layer ("bob covers alice from
Sat 09:00 to Sun 09:00"). Times are wall-clock times in the schedule's IANA time zone, so
hand-offs stay at 09:00 across daylight-saving changes.

Pure functions of a schedule and a moment: the workflow asks them when it pages a tier, and the
schedule is part of the policy snapshot in the history, so replay and review know who was on call.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.calendar import Calendar, ZoneName
from workflows.durations import Duration, format_duration

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def _time_of_day(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 10:30 as the base-60 number 630.
        return time(value // 60, value % 60)
    # HH:MM as written; HH:MM:SS as the snapshot in the history serialises it.
    match = _CLOCK.fullmatch(str(value).strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59 or int(match.group(3) or 0) > 59:
        raise ValueError(f"{value!r} is not a time of day: write e.g. handoff: \"09:00\"")
    return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


class Rotation(BaseModel):
    """One layer: participants taking turns, a shift each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    participants: list[str] = Field(min_length=1)
    shift: Duration
    handoff: time = time(9, 0)
    start: date
    active: Calendar | str | None = None
    """Only covers the times this calendar is open (e.g. a business-hours layer): a calendar
    named in calendars.yaml (resolved when the schedule is loaded) or written here."""

    @field_validator("handoff", mode="before")
    @classmethod
    def _parse_handoff(cls, value: Any) -> time:
        return _time_of_day(value)

    @field_validator("shift")
    @classmethod
    def _positive_shift(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("shift must be at least 1m: write e.g. shift: 1w, 1d or 12h")
        return value

    def first_handoff(self, zone: Any) -> datetime:
        return datetime.combine(self.start, self.handoff, zone)

    def on_call(self, moment: datetime, zone: Any) -> str | None:
        if isinstance(self.active, Calendar) and not self.active.is_open(moment):
            return None
        first = self.first_handoff(zone)
        if moment < first:
            return None
        if self.shift % timedelta(days=1) == timedelta(0):
            # Whole days: count hand-offs in local dates, so they stay at the local hand-off time.
            local = moment.astimezone(zone)
            day = local.date() - (timedelta(days=1) if local.time() < self.handoff else timedelta(0))
            turn = (day - self.start).days // self.shift.days
        elif timedelta(days=1) % self.shift == timedelta(0):
            # Shifts that divide a day (12h, 8h…): count on the local clock, so a 09:00/21:00
            # rotation still hands over at 09:00 and 21:00 after a daylight-saving change.
            local = moment.astimezone(zone).replace(tzinfo=None)
            turn = int((local - first.replace(tzinfo=None)) / self.shift)
        else:
            turn = int((moment - first) / self.shift)
        return self.participants[turn % len(self.participants)]


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    who: str
    covers: str | None = None
    """Whom they stand in for (for the record; the override applies whoever is on call)."""
    starts: datetime = Field(alias="from")
    ends: datetime = Field(alias="until")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Override:
        if self.ends <= self.starts:
            raise ValueError("an override must end after it starts: until: is not after from:")
        return self


class Schedule(BaseModel):
    """``schedules/<name>.yaml`` beside the policies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str
    description: str = ""
    timezone: ZoneName
    layers: list[Rotation] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)


    @model_validator(mode="before")
    @classmethod
    def _local_overrides(cls, data: Any) -> Any:
        """Override times without a zone are in the schedule's time zone."""
        if isinstance(data, dict) and isinstance(data.get("overrides"), list) and isinstance(data.get("timezone"), str):
            try:
                zone = ZoneInfo(data["timezone"])
            except (ZoneInfoNotFoundError, ValueError):
                return data
            fixed = []
            for item in data["overrides"]:
                if isinstance(item, dict):
                    item = dict(item)
                    for key in ("from", "until"):
                        value = item.get(key)
                        if isinstance(value, str):
                            try:
                                value = datetime.fromisoformat(value)
                            except ValueError:
                                continue
                        if isinstance(value, datetime) and value.tzinfo is None:
                            item[key] = value.replace(tzinfo=zone)
                fixed.append(item)
            data = {**data, "overrides": fixed}
        return data

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def people(self) -> list[str]:
        names: list[str] = []
        for layer in self.layers:
            names.extend(name for name in layer.participants if name not in names)
        names.extend(override.who for override in self.overrides if override.who not in names)
        return names


class OnCall(BaseModel):
    schedule: str
    at: datetime
    who: str | None
    layer: str | None
    override: bool = False
    until: datetime | None = None
    """When this stretch of on-call ends (the next change of hands)."""


def on_call(schedule: Schedule, moment: datetime) -> OnCall:
    """Who is on call at ``moment``: an override, else the latest layer that has someone."""
    moment = moment.astimezone(UTC)
    zone = schedule.zone
    for override in schedule.overrides:
        if override.starts <= moment < override.ends:
            return OnCall(
                schedule=schedule.schedule, at=moment, who=override.who, layer="override", override=True,
                until=override.ends.astimezone(UTC),
            )
    for index in range(len(schedule.layers) - 1, -1, -1):
        layer = schedule.layers[index]
        who = layer.on_call(moment, zone)
        if who is not None:
            return OnCall(
                schedule=schedule.schedule, at=moment, who=who, layer=layer.name or f"layer {index + 1}",
                until=_next_change(schedule, moment),
            )
    return OnCall(schedule=schedule.schedule, at=moment, who=None, layer=None, until=_next_change(schedule, moment))


def _next_change(schedule: Schedule, moment: datetime, horizon: timedelta = timedelta(days=60)) -> datetime | None:
    """The next moment whoever is on call changes (searched in 15-minute steps, within 60 days,
    then narrowed down to the second)."""
    step = timedelta(minutes=15)
    current = _who(schedule, moment)
    probe = moment.replace(second=0, microsecond=0) + step
    probe -= timedelta(minutes=probe.minute % 15)
    end = moment + horizon
    while probe < end:
        if _who(schedule, probe) != current:
            # Hands change in (before, probe]: halve that stretch down to a second.
            before = max(probe - step, moment.replace(microsecond=0))
            while probe - before > timedelta(seconds=1):
                middle = before + timedelta(seconds=(probe - before) // timedelta(seconds=2))
                if _who(schedule, middle) == current:
                    before = middle
                else:
                    probe = middle
            return probe
        probe += step
    return None


def _who(schedule: Schedule, moment: datetime) -> str | None:
    for override in schedule.overrides:
        if override.starts <= moment < override.ends:
            return override.who
    zone = schedule.zone
    for layer in reversed(schedule.layers):
        who = layer.on_call(moment, zone)
        if who is not None:
            return who
    return None


def coverage_gaps(schedule: Schedule, start: datetime, span: timedelta = timedelta(weeks=4)) -> list[tuple[datetime, datetime]]:
    """Stretches in ``[start, start + span)`` when nobody is on call (15-minute resolution)."""
    gaps: list[tuple[datetime, datetime]] = []
    step = timedelta(minutes=15)
    moment = start.replace(second=0, microsecond=0)
    moment -= timedelta(minutes=moment.minute % 15)
    opened: datetime | None = None
    while moment < start + span:
        if _who(schedule, moment) is None:
            opened = opened or moment
        elif opened is not None:
            gaps.append((opened, moment))
            opened = None
        moment += step
    if opened is not None:
        gaps.append((opened, start + span))
    return gaps


def describe_gap(gap: tuple[datetime, datetime], zone: Any) -> str:
    begins, ends = (moment.astimezone(zone) for moment in gap)
    return f"{begins:%a %Y-%m-%d %H:%M} to {ends:%a %Y-%m-%d %H:%M} ({format_duration(ends - begins)})"
