"""Who is on call, now or at a time, in each schedule of the policies this API reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator, WithJsonSchema

from starter.oncall import PolicyError, UnknownSchedule, who_is_on_call
from starter.web.deps import Authorised, SettingsDep
from starter.web.problems import Problem, invalid, problems
from workflows.schedule import OnCall

router = APIRouter(tags=["schedules"], dependencies=[Authorised], responses=problems(401))

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def moment(text: object) -> datetime:
    """An RFC 3339 time (ISO 8601 with seconds and a zone), as the schema's ``date-time`` says;
    in its own zone (a leap second is the last moment of its minute)."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
        fraction, utc, sign, zone_hours, zone_minutes = match.groups()[6:]
        offset = timedelta(0) if utc else (1 if sign == "+" else -1) * timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        micro = 999_999 if second == 60 else int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(year, month, day, hour, minute, min(second, 59), micro, timezone(offset))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: write ISO 8601 with seconds and a zone (RFC 3339), e.g. 2026-11-28T10:00:00Z "
            "or 2026-11-28T10:00:00+01:00"
        ) from None


Moment = Annotated[datetime, BeforeValidator(moment), WithJsonSchema({"type": "string", "format": "date-time"})]


@router.get("/v1/oncall", response_model=list[OnCall], responses=problems(404, 422, 503))
async def oncall(
    settings: SettingsDep,
    schedule: Annotated[str | None, Query(description="One schedule; every schedule when not given")] = None,
    at: Annotated[Moment | None, Query(description="When (default: now)")] = None,
) -> list[OnCall]:
    """Who is on call now (or ``at`` a time) in each schedule, or in one."""
    try:
        return who_is_on_call(settings, schedule, at.astimezone(UTC) if at else None)
    except UnknownSchedule as err:
        raise Problem(404, "No such schedule", str(err)) from None
    except OverflowError:  # a time at the edge of the calendar (year 1, year 9999)
        raise invalid("query.at", f"{at} is too far off to say who is on call", "Time out of range") from None
    except PolicyError as err:
        raise Problem(503, "Schedules do not load", f"the schedules of this server do not load, so nobody can be named: {err}") from None
