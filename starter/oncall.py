"""Who is on call, now or at any time: ``escalate oncall`` and ``GET /v1/oncall``. Read from
the schedules of ``ESCALATE_POLICY_DIR`` (the incidents use the snapshot they started with)."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.policy_store import PolicyError, PolicyStore
from escalate.settings import Settings
from workflows.schedule import OnCall, on_call


class UnknownSchedule(LookupError):
    pass


class InvalidMoment(ValueError):
    """A time that cannot be read (what the caller asked for is at fault)."""


def who_is_on_call(settings: Settings, schedule: str | None = None, at: datetime | str | None = None) -> list[OnCall]:
    """Who is on call at ``at`` (now by default; a text is read by ``parse_moment``, an empty
    one is now) in one schedule, or in every schedule. InvalidMoment, UnknownSchedule or
    PolicyError when that cannot be said."""
    if isinstance(at, str):
        at = parse_moment(at) if at else None
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    schedules = PolicyStore(settings.policy_dir).schedules()
    if schedule is not None:
        if schedule not in schedules:
            known = ", ".join(sorted(schedules)) or "none"
            raise UnknownSchedule(f"unknown schedule {schedule!r}: the schedules in {settings.policy_dir} are {known}")
        schedules = {schedule: schedules[schedule]}
    return [on_call(found, moment) for found in schedules.values()]


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidMoment(f"{text!r} is not a time: write ISO 8601, e.g. 2026-11-28T10:00 or 2026-11-28T10:00+01:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


__all__ = ["InvalidMoment", "PolicyError", "UnknownSchedule", "parse_moment", "who_is_on_call"]
