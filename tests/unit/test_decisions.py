"""The pure escalation decisions: tier clocks, where an incident goes next, what is due when."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from workflows.decisions import (
    Position,
    TierClock,
    clock_for_tier,
    held_for,
    manual_escalation_target,
    next_position,
    next_wakeup,
    reminder_due,
    resolve_by,
    sla_breached,
    window_ended,
)
from workflows.policy import Windows

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)

P1 = Windows(ack_within="15m", remind_before="5m", resolve_within="4h")
MEDIUM_CASE = Windows(ack_within="5d", remind_at="4d", resolve_within="30d")
NO_REMINDER = Windows(ack_within="1h")


# ── the clock of one tier ─────────────────────────────────────────────────────────────────


def test_clock_with_remind_before() -> None:
    clock = clock_for_tier(2, 0, T0, P1)
    assert (clock.tier, clock.round, clock.started_at) == (2, 0, T0)
    assert clock.remind_at == T0 + timedelta(minutes=10)  # 5m before the 15m window ends
    assert clock.deadline == T0 + timedelta(minutes=15)
    assert clock.reminded is False


def test_clock_with_remind_at() -> None:
    clock = clock_for_tier(1, 1, T0, MEDIUM_CASE)
    assert clock.remind_at == T0 + timedelta(days=4)
    assert clock.deadline == T0 + timedelta(days=5)
    assert clock.round == 1


def test_clock_without_reminder() -> None:
    clock = clock_for_tier(1, 0, T0, NO_REMINDER)
    assert clock.remind_at is None
    assert clock.deadline == T0 + timedelta(hours=1)


def test_held_for() -> None:
    clock = clock_for_tier(1, 0, T0, P1)
    assert held_for(clock, clock.deadline) == timedelta(minutes=15)
    assert held_for(clock, T0 + timedelta(minutes=3)) == timedelta(minutes=3)


# ── where the incident goes next ──────────────────────────────────────────────────────────


def walk(tier_count: int, repeat: int) -> list[Position]:
    """Every position an unacknowledged incident passes through, from tier 1 of round 0."""
    seen = [Position(1, 0)]
    while (step := next_position(seen[-1].tier, seen[-1].round, tier_count, repeat)) is not None:
        seen.append(step)
        assert len(seen) < 1000, "next_position never ends"
    return seen


def test_next_position_goes_up_the_tiers_then_exhausts() -> None:
    assert walk(3, 0) == [Position(1, 0), Position(2, 0), Position(3, 0)]
    assert next_position(3, 0, tier_count=3, repeat=0) is None


def test_repeat_starts_again_at_tier_one_for_extra_rounds() -> None:
    # DESIGN.md: ``repeat: 1`` means one extra round after the top tier.
    assert walk(3, 1) == [Position(t, r) for r in (0, 1) for t in (1, 2, 3)]
    assert len(walk(2, 3)) == 2 * (3 + 1)
    assert next_position(3, 0, tier_count=3, repeat=1) == Position(1, 1)
    assert next_position(3, 1, tier_count=3, repeat=1) is None


def test_single_tier_policy() -> None:
    assert walk(1, 0) == [Position(1, 0)]
    assert walk(1, 2) == [Position(1, 0), Position(1, 1), Position(1, 2)]


def test_manual_escalation_target() -> None:
    assert manual_escalation_target(1, 3) == 2
    assert manual_escalation_target(2, 3) == 3
    assert manual_escalation_target(3, 3) is None  # top tier: reassign instead
    assert manual_escalation_target(1, 1) is None


# ── what is due ───────────────────────────────────────────────────────────────────────────


def test_reminder_due_only_between_its_time_and_the_deadline() -> None:
    clock = clock_for_tier(1, 0, T0, P1)
    assert clock.remind_at is not None
    assert not reminder_due(clock, T0)
    assert not reminder_due(clock, clock.remind_at - SECOND)
    assert reminder_due(clock, clock.remind_at)
    assert reminder_due(clock, clock.deadline - SECOND)
    # Once the window has ended the escalation says more than a late reminder would.
    assert not reminder_due(clock, clock.deadline)
    assert not reminder_due(clock, clock.deadline + timedelta(hours=1))


def test_reminder_is_sent_once() -> None:
    clock = clock_for_tier(1, 0, T0, P1).model_copy(update={"reminded": True})
    assert not reminder_due(clock, T0 + timedelta(minutes=11))


def test_no_reminder_without_remind_time() -> None:
    clock = clock_for_tier(1, 0, T0, NO_REMINDER)
    assert not any(reminder_due(clock, T0 + timedelta(minutes=m)) for m in range(0, 120, 5))


def test_window_ended_at_the_deadline() -> None:
    clock = clock_for_tier(1, 0, T0, P1)
    assert not window_ended(clock, T0)
    assert not window_ended(clock, clock.deadline - SECOND)
    assert window_ended(clock, clock.deadline)
    assert window_ended(clock, clock.deadline + timedelta(days=1))


def test_resolve_by() -> None:
    assert resolve_by(T0, P1) == T0 + timedelta(hours=4)
    assert resolve_by(T0, NO_REMINDER) is None


def test_sla_breached_fires_exactly_once() -> None:
    deadline = T0 + timedelta(hours=4)
    breached = False
    fired = []
    for minute in range(0, 8 * 60, 7):
        now = T0 + timedelta(minutes=minute)
        if sla_breached(deadline, breached, now):
            fired.append(now)
            breached = True
    assert len(fired) == 1
    assert deadline <= fired[0] < deadline + timedelta(minutes=7)


def test_sla_breached_edges() -> None:
    deadline = T0 + timedelta(hours=4)
    assert not sla_breached(deadline, False, deadline - SECOND)
    assert sla_breached(deadline, False, deadline)
    assert not sla_breached(deadline, True, deadline + timedelta(days=1))
    assert not sla_breached(None, False, deadline + timedelta(days=365))


# ── when to wake up ───────────────────────────────────────────────────────────────────────


def test_next_wakeup_is_the_reminder_first() -> None:
    clock = clock_for_tier(1, 0, T0, P1)
    assert next_wakeup(clock, T0 + timedelta(hours=4), False, None) == T0 + timedelta(minutes=10)


def test_next_wakeup_is_the_deadline_once_reminded_or_without_reminder() -> None:
    reminded = clock_for_tier(1, 0, T0, P1).model_copy(update={"reminded": True})
    assert next_wakeup(reminded, T0 + timedelta(hours=4), False, None) == T0 + timedelta(minutes=15)
    silent = clock_for_tier(1, 0, T0, NO_REMINDER)
    assert next_wakeup(silent, None, False, None) == T0 + timedelta(hours=1)


def test_next_wakeup_is_the_sla_when_it_comes_first() -> None:
    clock = clock_for_tier(1, 0, T0, MEDIUM_CASE)  # reminder after 4 days
    sla = T0 + timedelta(days=1)
    assert next_wakeup(clock, sla, False, None) == sla


def test_next_wakeup_ignores_a_breached_sla() -> None:
    clock = clock_for_tier(1, 0, T0, P1).model_copy(update={"reminded": True})
    past_sla = T0 - timedelta(hours=1)
    assert next_wakeup(clock, past_sla, True, None) == clock.deadline
    assert next_wakeup(None, past_sla, True, None) is None


def test_next_wakeup_of_an_acknowledged_incident_is_its_sla() -> None:
    sla = T0 + timedelta(hours=4)
    assert next_wakeup(None, sla, False, None) == sla
    assert next_wakeup(None, None, False, None) is None  # only a responder can act


def test_next_wakeup_is_the_end_of_a_snooze() -> None:
    until = T0 + timedelta(hours=2)
    assert next_wakeup(None, T0 + timedelta(hours=4), False, until) == until
    assert next_wakeup(None, T0 + timedelta(hours=1), False, until) == T0 + timedelta(hours=1)


def test_next_wakeup_picks_the_earliest_whatever_the_order() -> None:
    rng = random.Random(7)
    for _ in range(200):
        offsets = [timedelta(minutes=rng.randint(1, 600)) for _ in range(3)]
        windows = Windows(ack_within=offsets[0] + timedelta(minutes=1), remind_at=offsets[0])
        clock = clock_for_tier(1, 0, T0, windows)
        sla, snooze = T0 + offsets[1], T0 + offsets[2]
        assert next_wakeup(clock, sla, False, snooze) == T0 + min(offsets)


def test_a_wakeup_in_the_past_is_returned_so_the_workflow_acts_at_once() -> None:
    clock = clock_for_tier(1, 0, T0, P1)
    assert next_wakeup(clock, None, False, None) == clock.remind_at  # even when "now" is later


# ── absolute deadlines (no drift) ─────────────────────────────────────────────────────────


def run_unacknowledged(trigger: datetime, windows: Windows, tier_count: int, repeat: int, lateness: list[timedelta]) -> list[TierClock]:
    """Drive the decisions as the workflow does, but get round to each deadline late by
    ``lateness[i]`` (a slow channel, a worker restart): return every tier clock started."""
    clock = clock_for_tier(1, 0, trigger, windows)
    clocks = [clock]
    for late in lateness:
        now = clock.deadline + late
        assert window_ended(clock, now)
        step = next_position(clock.tier, clock.round, tier_count, repeat)
        if step is None:
            break
        clock = clock_for_tier(step.tier, step.round, clock.deadline, windows)
        clocks.append(clock)
    return clocks


@pytest.mark.parametrize("seed", range(5))
def test_deadlines_are_trigger_plus_the_windows_however_late_the_worker_is(seed: int) -> None:
    rng = random.Random(seed)
    windows = Windows(ack_within="15m", remind_before="5m")
    lateness = [timedelta(seconds=rng.uniform(0, 600)) for _ in range(10)]
    clocks = run_unacknowledged(T0, windows, tier_count=3, repeat=1, lateness=lateness)
    assert [(c.tier, c.round) for c in clocks] == [(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1)]
    for k, clock in enumerate(clocks, start=1):
        assert clock.deadline == T0 + k * timedelta(minutes=15)
        assert clock.started_at == T0 + (k - 1) * timedelta(minutes=15)
        assert clock.remind_at == clock.deadline - timedelta(minutes=5)


def test_catching_up_after_an_outage_keeps_the_schedule() -> None:
    """A worker that comes back 50 minutes late with 15m windows steps through the tiers it
    missed (as the workflow loop does) and lands on the tier that is due now, on schedule."""
    windows = Windows(ack_within="15m", remind_before="5m")
    clock = clock_for_tier(1, 0, T0, windows)
    now = T0 + timedelta(minutes=50)
    missed_reminders = []
    while window_ended(clock, now):
        missed_reminders.append(reminder_due(clock, now))
        step = next_position(clock.tier, clock.round, tier_count=5, repeat=0)
        assert step is not None
        clock = clock_for_tier(step.tier, step.round, clock.deadline, windows)
    assert missed_reminders == [False, False, False]  # no stale reminders for tiers already past
    assert (clock.tier, clock.started_at, clock.deadline) == (4, T0 + timedelta(minutes=45), T0 + timedelta(hours=1))
    assert not reminder_due(clock, now)
    assert next_wakeup(clock, None, False, None) == T0 + timedelta(minutes=55)
