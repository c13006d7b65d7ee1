"""Pure escalation decisions: which tier is next, when its reminder and deadline are, what is due.

Deadlines are absolute. A tier's window counts from the previous tier's deadline (or from the
trigger), never from the moment the workflow got round to paging it, so a slow channel or a
worker restart never pushes later escalations back and lateness never adds up across tiers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from workflows.calendar import (
    Calendar,
    add_business_time,
    add_open_time,
    open_time_between,
    subtract_business_time,
)
from workflows.policy import Windows


class TierClock(BaseModel):
    """The running timers of the tier that is being paged."""

    model_config = ConfigDict(frozen=True)

    tier: int
    round: int
    started_at: datetime
    remind_at: datetime | None
    deadline: datetime
    reminded: bool = False


class Position(NamedTuple):
    tier: int
    round: int


def _business(windows: Windows, calendar: Calendar | None) -> Calendar | None:
    return calendar if windows.business_time else None


def later_by(start: datetime, amount: timedelta, windows: Windows, calendar: Calendar | None = None) -> datetime:
    """``start`` plus ``amount``, counted in business time when the windows say so."""
    business = _business(windows, calendar)
    return add_business_time(business, start, amount) if business else start + amount


def clock_for_tier(
    tier: int, round: int, started_at: datetime, windows: Windows, calendar: Calendar | None = None
) -> TierClock:
    deadline = later_by(started_at, windows.ack_within, windows, calendar)
    business = _business(windows, calendar)
    if windows.remind_at is not None:
        remind_at: datetime | None = later_by(started_at, windows.remind_at, windows, calendar)
    elif windows.remind_before is not None:
        remind_at = (
            subtract_business_time(business, deadline, windows.remind_before)
            if business
            else deadline - windows.remind_before
        )
    else:
        remind_at = None
    return TierClock(tier=tier, round=round, started_at=started_at, remind_at=remind_at, deadline=deadline)


def next_position(tier: int, round: int, tier_count: int, repeat: int | None, repeat_from: int = 1) -> Position | None:
    """Where an unacknowledged incident goes when its tier's window ends; None when exhausted.

    After the top tier the policy starts again at ``repeat_from`` (tier 1 unless the policy says
    otherwise) for ``repeat`` more rounds; ``None`` repeats without end.
    """
    if tier < tier_count:
        return Position(tier + 1, round)
    if repeat is None or round < repeat:
        return Position(repeat_from, round + 1)
    return None


def manual_escalation_target(tier: int, tier_count: int, to: int | None = None) -> int | None:
    """The tier a responder's ``escalate up`` moves to: the next one, or the one asked for;
    None when there is none (at the top tier, or asked for the tier it is at)."""
    if to is not None:
        return to if 1 <= to <= tier_count and to != tier else None
    return tier + 1 if tier < tier_count else None


def reminder_due(clock: TierClock, now: datetime) -> bool:
    """A reminder is due once its time has come, unless the window itself has already ended
    (then the escalation says more than a late reminder would)."""
    return (
        not clock.reminded
        and clock.remind_at is not None
        and clock.remind_at <= now < clock.deadline
    )


def window_ended(clock: TierClock, now: datetime) -> bool:
    return clock.deadline <= now


def resolve_by(started_at: datetime, windows: Windows, calendar: Calendar | None = None) -> datetime | None:
    if windows.resolve_within is None:
        return None
    return later_by(started_at, windows.resolve_within, windows, calendar)


class Pause(BaseModel):
    """The clocks stopped while waiting on the customer: what was left of each."""

    model_config = ConfigDict(frozen=True)

    since: datetime
    window_left: timedelta | None
    reminder_left: timedelta | None
    sla_left: timedelta | None


def _left(start: datetime, until: datetime | None, business: Calendar | None) -> timedelta | None:
    if until is None:
        return None
    if business:
        return open_time_between(business, start, until)
    return max(until - start, timedelta(0))


def pause_clocks(
    clock: TierClock | None,
    sla_deadline: datetime | None,
    sla_already_breached: bool,
    at: datetime,
    windows: Windows,
    calendar: Calendar | None = None,
) -> Pause:
    """Stop the escalation and SLA clocks; what is left of each is kept for the resume."""
    business = _business(windows, calendar)
    reminder = clock.remind_at if clock is not None and not clock.reminded else None
    return Pause(
        since=at,
        window_left=_left(at, clock.deadline, business) if clock is not None else None,
        reminder_left=_left(at, reminder, business) if reminder is not None and reminder > at else None,
        sla_left=None if sla_already_breached else _left(at, sla_deadline, business),
    )


def resume_clocks(
    pause: Pause, clock: TierClock | None, at: datetime, windows: Windows, calendar: Calendar | None = None
) -> tuple[TierClock | None, datetime | None]:
    """Restart the clocks with the time they had left: the tier's clock (if it was running) and
    the resolution deadline (None if it had none or was already breached)."""
    business = _business(windows, calendar)

    def after(left: timedelta | None) -> datetime | None:
        if left is None:
            return None
        return add_open_time(business, at, left) if business else at + left

    resumed = None
    if clock is not None and pause.window_left is not None:
        deadline = after(pause.window_left)
        assert deadline is not None
        remind_at = after(pause.reminder_left)
        resumed = clock.model_copy(
            update={"deadline": deadline, "remind_at": remind_at, "reminded": clock.reminded or remind_at is None}
        )
    return resumed, after(pause.sla_left)


def sla_breached(deadline: datetime | None, already_breached: bool, now: datetime) -> bool:
    """True exactly once: when the resolution deadline has passed and no breach is recorded yet."""
    return deadline is not None and not already_breached and deadline <= now


class AckClock(BaseModel):
    """An acknowledgement that runs out (``ack_timeout``): when the acker is reminded, and when
    the incident returns to its tier unless it is resolved first."""

    model_config = ConfigDict(frozen=True)

    acknowledged_at: datetime
    remind_at: datetime
    expires_at: datetime
    reminded: bool = False


def ack_clock(acknowledged_at: datetime, windows: Windows) -> AckClock | None:
    """The clock of an acknowledgement, if the priority's windows give it a timeout. The acker is
    reminded ``remind_before`` ahead of it when that fits, else a quarter of the timeout ahead."""
    timeout = windows.ack_timeout
    if timeout is None:
        return None
    ahead = windows.remind_before if windows.remind_before is not None and windows.remind_before < timeout else timeout / 4
    return AckClock(
        acknowledged_at=acknowledged_at,
        remind_at=acknowledged_at + timeout - ahead,
        expires_at=acknowledged_at + timeout,
    )


def next_wakeup(
    clock: TierClock | None,
    sla_deadline: datetime | None,
    sla_already_breached: bool,
    snoozed_until: datetime | None,
    acknowledgement: AckClock | None = None,
) -> datetime | None:
    """The earliest moment at which something is due, or None when only a responder can act."""
    moments: list[datetime] = []
    if acknowledgement is not None:
        if not acknowledgement.reminded:
            moments.append(acknowledgement.remind_at)
        moments.append(acknowledgement.expires_at)
    if clock is not None:
        if not clock.reminded and clock.remind_at is not None and clock.remind_at < clock.deadline:
            moments.append(clock.remind_at)
        moments.append(clock.deadline)
    if sla_deadline is not None and not sla_already_breached:
        moments.append(sla_deadline)
    if snoozed_until is not None:
        moments.append(snoozed_until)
    return min(moments) if moments else None


NOTIFY_ATTEMPTS = 5
"""Attempts per channel before falling over to the person's next channel."""


MAX_RETRY_AFTER = timedelta(seconds=60)


def notify_retry_delay(attempt: int, asked: timedelta | None = None) -> timedelta | None:
    """How long to wait after failed attempt ``attempt`` (1-based); None when it was the last.
    Exponential backoff (1s, 2s, 4s, 8s), or longer when the receiver asked for it with
    Retry-After (up to a minute: a page that waits longer is no page)."""
    if attempt >= NOTIFY_ATTEMPTS:
        return None
    backoff = min(timedelta(seconds=2 ** (attempt - 1)), timedelta(seconds=30))
    if asked is not None:
        return max(backoff, min(asked, MAX_RETRY_AFTER))
    return backoff


def held_for(clock: TierClock, until: datetime) -> timedelta:
    return until - clock.started_at

