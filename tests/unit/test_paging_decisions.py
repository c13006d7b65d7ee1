"""On-call paging parity (issue 13): the pure decisions behind per-tier windows, repeat rounds,
escalating to a chosen tier and the acknowledgement clock (the scenarios on the time-skipping
server: tests/scenarios/test_paging.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.policies import policy, tier
from workflows.decisions import Position, ack_clock, clock_for_tier, manual_escalation_target, next_position, next_wakeup, window_ended
from workflows.policy import Policy, Windows

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def model(**fields: Any) -> Policy:
    written = policy(
        "pure",
        windows=fields.pop(
            "windows", {"P1": {"ack_within": "15m", "remind_before": "10m"}, "P2": {"ack_within": "1h", "remind_at": "20m"}}
        ),
        tiers=fields.pop("tiers", [tier("Primary", "ana"), tier("Secondary", "ben"), tier("Lead", "cat")]),
        **fields,
    )
    return Policy.model_validate(written)


def test_a_flat_tier_window_replaces_every_priority_window_for_that_tier_only() -> None:
    p = model(tiers=[tier("Primary", "ana", ack_within="5m"), tier("Secondary", "ben"), tier("Lead", "cat")])
    assert p.windows_for_tier("P1", 1).ack_within == 5 * MINUTE
    assert p.windows_for_tier("P2", 1).ack_within == 5 * MINUTE
    assert p.windows_for_tier("critical", 1).ack_within == 5 * MINUTE, "priority aliases find the tier window"
    assert p.windows_for_tier("P1", 2) == p.windows["P1"], "the other tiers keep the priority's window"
    assert p.windows_for_tier("P2", 3) == p.windows["P2"]


def test_a_per_priority_tier_window_replaces_only_that_priority() -> None:
    p = model(tiers=[tier("Primary", "ana", ack_within={"P1": "5m"}), tier("Secondary", "ben"), tier("Lead", "cat")])
    assert p.windows_for_tier("P1", 1).ack_within == 5 * MINUTE
    assert p.windows_for_tier("P2", 1) == p.windows["P2"]
    assert p.windows_for_tier("P1", 2) == p.windows["P1"]


def test_a_reminder_that_does_not_fit_the_shorter_window_is_dropped_one_that_fits_is_kept() -> None:
    p = model(
        windows={
            "P1": {"ack_within": "15m", "remind_before": "4m", "resolve_within": "4h"},
            "P2": {"ack_within": "1h", "remind_at": "20m"},
        },
        tiers=[tier("Primary", "ana", ack_within={"P1": "3m", "P2": "10m"}), tier("Secondary", "ben", ack_within="30m")],
    )
    short = p.windows_for_tier("P1", 1)  # 4m before the end of a 3m window: no room
    assert (short.ack_within, short.remind_before, short.reminder_offset()) == (3 * MINUTE, None, None)
    assert short.resolve_within == 4 * timedelta(hours=1), "only the window changes, not the SLA"
    kept = p.windows_for_tier("P1", 2)  # 4m before the end of a 30m window
    assert (kept.remind_before, kept.reminder_offset()) == (4 * MINUTE, 26 * MINUTE)
    remind_at = p.windows_for_tier("P2", 1)  # 20m after the page, in a 10m window: dropped
    assert (remind_at.ack_within, remind_at.remind_at) == (10 * MINUTE, None)
    assert p.windows_for_tier("P2", 2).remind_at == 20 * MINUTE, "20m after the page fits in 30m"
    clock = clock_for_tier(1, 0, T0, short)
    assert (clock.remind_at, clock.deadline) == (None, T0 + 3 * MINUTE)
    assert next_wakeup(clock, None, False, None) == T0 + 3 * MINUTE


def test_tier_windows_for_a_priority_the_policy_lacks_or_of_zero_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"tiers\[0\].ack_within gives a window for P3.*use one of P1, P2"):
        model(tiers=[tier("Primary", "ana", ack_within={"P3": "5m"})])
    with pytest.raises(ValidationError, match=r"tiers\[1\].ack_within must be longer than 0s"):
        model(tiers=[tier("Primary", "ana"), tier("Secondary", "ben", ack_within="0s")])


def test_deadlines_with_per_tier_windows_chain_from_the_previous_deadline_however_late() -> None:
    """The pure chain the workflow walks: each tier's window starts at the previous deadline, not
    at the moment the workflow got round to it (here always 3 s late, like a slow channel)."""
    p = model(
        windows={"P1": {"ack_within": "4s"}},
        tiers=[tier("T1", "ana"), tier("T2", "ben", ack_within="6s"), tier("T3", "cat", ack_within={"P1": "2s"}), tier("T4", "dan")],
    )
    clock = clock_for_tier(1, 0, T0, p.windows_for_tier("P1", 1))
    deadlines = [clock.deadline]
    while (step := next_position(clock.tier, clock.round, 4, 0)) is not None:
        got_round_to_it = clock.deadline + 3 * SECOND
        assert window_ended(clock, got_round_to_it)
        clock = clock_for_tier(step.tier, step.round, clock.deadline, p.windows_for_tier("P1", step.tier))
        deadlines.append(clock.deadline)
    assert deadlines == [T0 + 4 * SECOND, T0 + 10 * SECOND, T0 + 12 * SECOND, T0 + 16 * SECOND]


def walk(tier_count: int, repeat: int | None, repeat_from: int, limit: int = 12) -> list[Position]:
    seen = [Position(1, 0)]
    while len(seen) < limit and (step := next_position(seen[-1].tier, seen[-1].round, tier_count, repeat, repeat_from)) is not None:
        seen.append(step)
    return seen


def test_extra_rounds_start_at_the_repeat_from_tier() -> None:
    assert walk(3, 2, repeat_from=2) == [
        Position(1, 0), Position(2, 0), Position(3, 0), Position(2, 1), Position(3, 1), Position(2, 2), Position(3, 2)
    ]
    assert walk(3, 1, repeat_from=3) == [Position(1, 0), Position(2, 0), Position(3, 0), Position(3, 1)]
    assert model(repeat=1, repeat_from="Lead").repeat_from_tier == 3
    assert model(repeat=1).repeat_from_tier == 1, "tier 1 unless repeat_from says otherwise"


def test_repeat_forever_never_runs_out_by_itself() -> None:
    rounds = walk(2, None, repeat_from=2, limit=2001)
    assert len(rounds) == 2001 and rounds[-1] == Position(2, 1999)
    assert model(repeat="forever").repeat_rounds is None
    assert model(repeat=3).repeat_rounds == 3


def test_repeat_from_and_on_exhausted_are_checked() -> None:
    refused = "repeat_from 'Secundary' is not a tier: did you mean 'Secondary'\\? the tiers are Primary, Secondary, Lead"
    with pytest.raises(ValidationError, match=refused):
        model(repeat=1, repeat_from="Secundary")
    with pytest.raises(ValidationError, match="on_exhausted"):
        model(on_exhausted="page_everyone")
    with pytest.raises(ValidationError, match="write 0 to 10000, or forever"):
        model(repeat=10_001)
    assert model().on_exhausted == "notify_manager", "the default is today's behaviour"


def test_escalating_to_a_chosen_tier() -> None:
    p = model(tiers=[tier("L1 desk", "ana"), tier("L2 engineers", "ben"), tier("L3 head", "cat")])
    assert [p.tier_number(text) for text in ("3", "l3 HEAD", " L2 engineers ", "L9", "0", "4", "")] == [3, 3, 2, None, None, None, None]
    assert manual_escalation_target(1, 3, to=3) == 3, "a jump past tier 2"
    assert manual_escalation_target(3, 3, to=3) is None, "the tier it is at"
    assert manual_escalation_target(1, 3, to=4) is None
    assert manual_escalation_target(3, 3) is None and manual_escalation_target(3, 3, to=1) == 1


def test_the_acknowledgement_clock() -> None:
    windows = Windows(ack_within="10m", remind_before="3m", ack_timeout="20m")
    clock = ack_clock(T0, windows)
    assert clock is not None
    assert (clock.remind_at, clock.expires_at) == (T0 + 17 * MINUTE, T0 + 20 * MINUTE), "reminded remind_before ahead"
    short = ack_clock(T0, Windows(ack_within="10m", remind_before="5m", ack_timeout="4m"))
    assert short is not None and short.remind_at == T0 + 3 * MINUTE, "a quarter ahead when remind_before does not fit"
    assert ack_clock(T0, Windows(ack_within="10m")) is None, "no timeout: the acknowledgement never runs out"
    assert next_wakeup(None, T0 + timedelta(hours=4), False, None, clock) == T0 + 17 * MINUTE
    assert next_wakeup(None, None, False, None, clock.model_copy(update={"reminded": True})) == T0 + 20 * MINUTE
    with pytest.raises(ValidationError, match="ack_timeout must be longer than 0s"):
        Windows(ack_within="10m", ack_timeout="0s")
