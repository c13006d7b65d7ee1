"""Pure escalation decisions: which tier is next, when its reminder and deadline are, what is due.

Deadlines are absolute. A tier's window counts from the previous tier's deadline (or from the
trigger), never from the moment the workflow got round to paging it, so a slow channel or a
worker restart never pushes later escalations back and lateness never adds up across tiers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

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


def clock_for_tier(tier: int, round: int, started_at: datetime, windows: Windows) -> TierClock:
    offset = windows.reminder_offset()
    return TierClock(
        tier=tier,
        round=round,
        started_at=started_at,
        remind_at=started_at + offset if offset is not None else None,
        deadline=started_at + windows.ack_within,
    )


def next_position(tier: int, round: int, tier_count: int, repeat: int) -> Position | None:
    """Where an unacknowledged incident goes when its tier's window ends; None when exhausted.

    After the top tier the policy starts again at tier 1 for ``repeat`` more rounds.
    """
    if tier < tier_count:
        return Position(tier + 1, round)
    if round < repeat:
        return Position(1, round + 1)
    return None


def manual_escalation_target(tier: int, tier_count: int) -> int | None:
    """The tier a responder's ``escalate up`` moves to, or None at the top tier."""
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


def resolve_by(started_at: datetime, windows: Windows) -> datetime | None:
    return started_at + windows.resolve_within if windows.resolve_within is not None else None


def sla_breached(deadline: datetime | None, already_breached: bool, now: datetime) -> bool:
    """True exactly once: when the resolution deadline has passed and no breach is recorded yet."""
    return deadline is not None and not already_breached and deadline <= now


def next_wakeup(
    clock: TierClock | None,
    sla_deadline: datetime | None,
    sla_already_breached: bool,
    snoozed_until: datetime | None,
) -> datetime | None:
    """The earliest moment at which something is due, or None when only a responder can act."""
    moments: list[datetime] = []
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
