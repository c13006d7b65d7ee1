"""On-call paging parity (issue 13), part 1: per-tier windows, repeat and exhaustion, escalating
to a chosen tier, the acknowledgement timeout, and drift-free deadlines.

Everything is real: every person is reached by webhook at their own path of a real HTTP receiver
on 127.0.0.1 (``tests.support.receiver.Receiver``), so each scenario checks what the receivers got as
well as the timeline and the status. The scenarios run on the time-skipping test server, where
times are exact; the drift test runs in real time on the Temporal dev server, with every webhook
held 3 s before it is answered. The pure decisions are tested on their own first.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations, IncidentRejected
from tests.support.cli import escalate, server_env
from tests.support.histories import save_history
from tests.support.incidents import open_incident, settled
from tests.support.paths import ESCALATE
from tests.support.policies import webhooks, write_folder
from tests.support.receiver import Receiver, Reply, got
from tests.support.temporal import dev_server, make_settings, needs_temporal, resolve_and_close, running, unique_key
from tests.support.timeline import events, timeline_text
from worker import create_worker
from workflows.decisions import Position, ack_clock, clock_for_tier, manual_escalation_target, next_position, next_wakeup, window_ended
from workflows.model import IncidentStatus, workflow_id
from workflows.policy import Policy, Windows

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PEOPLE = ("ana", "ben", "cat", "dan", "mia")
"""Tier owners (ana, ben, cat, dan) and the manager (mia); each has a webhook and nothing else."""


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


def tier(name: str, *owners: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "owners": list(owners), **extra}


def policy(name: str, *, windows: dict[str, dict[str, str]], tiers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"policy": name, "description": "on-call paging tests", "manager": "mia", "windows": windows, "tiers": tiers, **extra}


def write_policies(root: Path, receiver: Receiver, *policies: dict[str, Any]) -> Path:
    """A policy folder for one test: the policies, and a directory whose people are reached by
    webhook at ``/<name>`` of this test's receiver (answered 200 unless routed otherwise)."""
    return write_folder(root / "policies", webhooks(receiver, *PEOPLE), *policies)


def steps(status: IncidentStatus) -> list[tuple[int | None, datetime | None]]:
    """(tier, due) of every escalation."""
    return [(event.tier, event.due_at) for event in events(status, "escalated")]


def bodies(receiver: Receiver, key: str, person: str, kind: str) -> list[dict[str, Any]]:
    return [
        body
        for body in (request.json() for request in receiver.requests(f"/{person}"))
        if body["incident"]["key"] == key and body["kind"] == kind
    ]


# ── the pure decisions ───────────────────────────────────────────────────────────────────────


def model(**fields: Any) -> Policy:
    written = policy(
        "pure",
        windows=fields.pop("windows", {"P1": {"ack_within": "15m", "remind_before": "10m"}, "P2": {"ack_within": "1h", "remind_at": "20m"}}),
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
        windows={"P1": {"ack_within": "15m", "remind_before": "4m", "resolve_within": "4h"}, "P2": {"ack_within": "1h", "remind_at": "20m"}},
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
    assert walk(3, 2, repeat_from=2) == [Position(1, 0), Position(2, 0), Position(3, 0), Position(2, 1), Position(3, 1), Position(2, 2), Position(3, 2)]
    assert walk(3, 1, repeat_from=3) == [Position(1, 0), Position(2, 0), Position(3, 0), Position(3, 1)]
    assert model(repeat=1, repeat_from="Lead").repeat_from_tier == 3
    assert model(repeat=1).repeat_from_tier == 1, "tier 1 unless repeat_from says otherwise"


def test_repeat_forever_never_runs_out_by_itself() -> None:
    rounds = walk(2, None, repeat_from=2, limit=2001)
    assert len(rounds) == 2001 and rounds[-1] == Position(2, 1999)
    assert model(repeat="forever").repeat_rounds is None
    assert model(repeat=3).repeat_rounds == 3


def test_repeat_from_and_on_exhausted_are_checked() -> None:
    with pytest.raises(ValidationError, match="repeat_from 'Secundary' is not a tier: did you mean 'Secondary'\\? the tiers are Primary, Secondary, Lead"):
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


# ── per-tier windows ─────────────────────────────────────────────────────────────────────────

TIERED = policy(
    "tiered",
    windows={
        "P1": {"ack_within": "15m", "remind_before": "10m"},  # reminder 5m after a page
        "P2": {"ack_within": "30m", "remind_before": "4m"},  # reminder 26m after a page
    },
    tiers=[
        tier("Primary", "ana", ack_within={"P1": "5m"}),  # P1 only; 10m before the end does not fit
        tier("Secondary", "ben", ack_within="8m"),  # every priority; P1's reminder does not fit, P2's does
        tier("Lead", "cat"),
    ],
)


async def test_tier_windows_override_the_priority_window_and_drop_reminders_that_do_not_fit(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, TIERED))
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "tiered", "tier-window-p1")
        opened = await escalations.status(key)
        assert (opened.next_escalation_at, opened.next_reminder_at) == (trigger + 5 * MINUTE, None)

        await time_env.sleep(29 * MINUTE)
        status = await settled(escalations, key, lambda s: bool(events(s, "notified", who="mia")))
        await save_history(time_env.client, key, "paging_tier_windows_p1")

    shown = timeline_text(status)
    # Primary: 5m (its P1 window); Secondary: 8m (flat); Lead: the policy's 15m, whose reminder fits.
    assert steps(status) == [(2, trigger + 5 * MINUTE), (3, trigger + 13 * MINUTE)], shown
    first, second = events(status, "escalated")
    assert "no ack at tier 1 (Primary) within 5m" in first.detail and "no ack at tier 2 (Secondary) within 8m" in second.detail
    assert [(e.tier, e.due_at) for e in events(status, "reminded")] == [(3, trigger + 18 * MINUTE)], (
        f"10m before the end fits neither the 5m nor the 8m window: no reminder there\n{shown}"
    )
    [exhausted] = events(status, "exhausted")
    assert exhausted.due_at == trigger + 28 * MINUTE
    assert got(receiver, key) == [
        ("ana", "page", 1),
        ("ben", "escalated", 2),
        ("cat", "escalated", 3),
        ("cat", "reminder", 3),
        ("mia", "exhausted", 3),
    ]
    [ana_page] = bodies(receiver, key, "ana", "page")
    assert ana_page["incident"]["ack_by"] == (trigger + 5 * MINUTE).isoformat(), "the page says the tier's own deadline"


async def test_a_per_priority_tier_window_leaves_the_other_priorities_alone(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, TIERED))
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "tiered", "tier-window-p2", priority="P2")
        opened = await escalations.status(key)
        assert (opened.next_escalation_at, opened.next_reminder_at) == (trigger + 30 * MINUTE, trigger + 26 * MINUTE)

        await time_env.sleep(39 * MINUTE)
        status = await settled(escalations, key, lambda s: bool(events(s, "notified", who="cat")))
        await save_history(time_env.client, key, "paging_tier_windows_p2")

    shown = timeline_text(status)
    # Primary has no P2 window of its own (30m, reminder at 26m); Secondary's flat 8m keeps P2's
    # reminder 4m before its end.
    assert steps(status) == [(2, trigger + 30 * MINUTE), (3, trigger + 38 * MINUTE)], shown
    assert [(e.tier, e.due_at) for e in events(status, "reminded")] == [(1, trigger + 26 * MINUTE), (2, trigger + 34 * MINUTE)], shown
    assert got(receiver, key) == [
        ("ana", "page", 1),
        ("ana", "reminder", 1),
        ("ben", "escalated", 2),
        ("ben", "reminder", 2),
        ("cat", "escalated", 3),
    ]
    assert status.next_escalation_at == trigger + 68 * MINUTE


# ── repeat: forever, repeat_from ─────────────────────────────────────────────────────────────


async def test_repeat_forever_from_a_chosen_tier_pages_until_the_resolution_sla_then_stops(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    written = policy(
        "forever",
        windows={"P1": {"ack_within": "10m", "resolve_within": "75m"}},
        tiers=[tier("Primary", "ana"), tier("Secondary", "ben"), tier("Lead", "cat")],
        repeat="forever",
        repeat_from="Secondary",
    )
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, written))
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "forever", "forever-sla")
        await time_env.sleep(74 * MINUTE)
        before = await settled(escalations, key)
        assert not before.sla_breached and not before.exhausted

        await time_env.sleep(26 * MINUTE)  # SLA at 75m; the round under way ends at 90m
        status = await settled(escalations, key, lambda s: len(events(s, "notified", who="mia")) == 2)
        ended_with = len(status.timeline)
        await time_env.sleep(2 * timedelta(hours=1))
        later = await settled(escalations, key)
        acked = await escalations.acknowledge(key, by="cat", note="on it at last")
        await save_history(time_env.client, key, "paging_repeat_forever_until_sla")

    shown = timeline_text(status)
    # Round 1 is tiers 1-3; every later round starts at Secondary (tier 2), 10 minutes a tier.
    assert steps(status) == [
        (2, trigger + 10 * MINUTE),
        (3, trigger + 20 * MINUTE),
        (2, trigger + 30 * MINUTE),
        (3, trigger + 40 * MINUTE),
        (2, trigger + 50 * MINUTE),
        (3, trigger + 60 * MINUTE),
        (2, trigger + 70 * MINUTE),
        (3, trigger + 80 * MINUTE),
    ], shown
    assert "round 2" in events(status, "escalated")[2].detail
    [breach] = events(status, "sla_breached")
    assert (breach.due_at, breach.who) == (trigger + 75 * MINUTE, "mia")
    # The round under way when the SLA passed is finished (Lead is paged at 80m), then it stops.
    [exhausted] = events(status, "exhausted")
    assert exhausted.due_at == trigger + 90 * MINUTE
    assert "after 4 round(s) of 3 tier(s)" in exhausted.detail and exhausted.who == "mia"
    assert (status.status, status.exhausted, status.round, status.next_escalation_at) == ("triggered", True, 3, None)

    received = got(receiver, key)
    assert [r for r in received if r[0] == "ana"] == [("ana", "page", 1)], "tier 1 is paged in the first round only"
    assert [r for r in received if r[0] == "ben"] == [("ben", "escalated", 2)] * 4
    assert [r for r in received if r[0] == "cat"] == [("cat", "escalated", 3)] * 4
    assert [r for r in received if r[0] == "mia"] == [("mia", "sla_breach", 2), ("mia", "exhausted", 3)]
    assert len(later.timeline) == ended_with, f"nothing more happens once exhausted\n{timeline_text(later)}"
    assert acked.status == "acknowledged", "an exhausted incident stays open to an ack"


async def test_repeat_forever_without_an_sla_keeps_paging_across_runs(time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver) -> None:
    written = policy(
        "endless",
        windows={"P2": {"ack_within": "1m"}},
        tiers=[tier("Primary", "ana"), tier("Secondary", "ben")],
        repeat="forever",
    )
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, written))
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "endless", "forever-runs", priority="P2", history_limit=150)
        handle = time_env.client.get_workflow_handle(workflow_id(key))
        first_run = (await handle.describe()).run_id
        await time_env.sleep(20 * MINUTE + 30 * SECOND)
        status = await settled(escalations, key, lambda s: len(events(s, "escalated")) >= 20)
        latest_run = (await handle.describe()).run_id
        final = await resolve_and_close(time_env, escalations, key, by="ben", resolution="cleared the queue")
        await save_history(time_env.client, key, "paging_repeat_forever_across_runs")

    assert latest_run != first_run, "a long incident continues as a new run"
    assert steps(status) == [(2 - k % 2, trigger + (k + 1) * MINUTE) for k in range(20)], timeline_text(status)
    assert [e.detail.rsplit(", ", 1)[-1] for e in events(status, "escalated")[-2:]] == ["round 10", "round 11"]
    assert events(status, "exhausted") == [] and not status.exhausted
    assert status.timeline[0].kind == "triggered", "one story across runs"
    assert len([r for r in got(receiver, key) if r[1] in ("page", "escalated")]) == 21
    assert final.resolved_by == "ben"


# ── on_exhausted ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("on_exhausted", ["notify_manager", "resolve", "keep_open"])
async def test_on_exhausted(time_env: WorkflowEnvironment, tmp_path: Path, on_exhausted: str, receiver: Receiver) -> None:
    written = policy(
        "exhaust",
        windows={"P1": {"ack_within": "5m", "remind_before": "2m"}},
        tiers=[tier("Primary", "ana"), tier("Secondary", "ben")],
        # notify_manager is the default: written without on_exhausted, as every policy of before
        **({} if on_exhausted == "notify_manager" else {"on_exhausted": on_exhausted}),
    )
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, written))
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "exhaust", f"exhausted-{on_exhausted}")
        await time_env.sleep(11 * MINUTE)
        status = await settled(escalations, key, lambda s: bool(events(s, "exhausted")))
        handle = time_env.client.get_workflow_handle(workflow_id(key), result_type=IncidentStatus)
        if on_exhausted == "resolve":
            for _ in range(30):  # its last notices go out, then it closes by itself
                if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                    break
                await time_env.sleep(5 * SECOND)
            final = await handle.result()
            with pytest.raises(IncidentRejected, match="already resolved"):
                await escalations.acknowledge(key, by="ben")
        else:
            await time_env.sleep(timedelta(hours=1))
            final = await escalations.acknowledge(key, by="ben", note="found it")
        await save_history(time_env.client, key, f"paging_on_exhausted_{on_exhausted}")
        status = await escalations.status(key)

    shown = timeline_text(status)
    [exhausted] = events(status, "exhausted")
    assert exhausted.due_at == trigger + 10 * MINUTE
    assert "nobody acknowledged after 1 round(s) of 2 tier(s)" in exhausted.detail
    [top_reminder] = events(status, "reminded")[1:]
    received = got(receiver, key)
    to_mia = [r for r in received if r[0] == "mia"]
    pages = [r for r in received if r[1] in ("page", "escalated", "reminder")]
    assert pages == [("ana", "page", 1), ("ana", "reminder", 1), ("ben", "escalated", 2), ("ben", "reminder", 2)], shown

    if on_exhausted == "notify_manager":
        assert exhausted.who == "mia" and "manager mia told; it stays open for an ack" in exhausted.detail
        assert to_mia == [("mia", "exhausted", 2)]
        assert top_reminder.detail.endswith("before it escalates to the manager")
        assert (final.status, final.acknowledged_by) == ("acknowledged", "ben")
    elif on_exhausted == "keep_open":
        assert exhausted.who is None and exhausted.detail.endswith("; it stays open for an ack")
        assert to_mia == [], "keep_open tells nobody"
        assert top_reminder.detail.endswith("nowhere (every round is over)")
        assert (final.status, final.acknowledged_by) == ("acknowledged", "ben")
    else:
        assert exhausted.who is None and "closed, as the policy says (on_exhausted: resolve)" in exhausted.detail
        [resolved] = events(final, "resolved")
        assert (resolved.who, resolved.at) == ("escalate", exhausted.at)
        assert (final.status, final.resolved_by) == ("resolved", "escalate")
        assert final.resolution == "closed unacknowledged: every tier was paged and nobody acknowledged"
        assert to_mia == [], "the manager is not paged when the policy closes it"
        assert sorted(r for r in received if r[1] == "resolved") == [("ana", "resolved", 2), ("ben", "resolved", 2)], (
            "everyone paged is told it was closed"
        )
        assert final.next_escalation_at is None and final.exhausted


# ── escalate up --to ─────────────────────────────────────────────────────────────────────────

LADDER = policy(
    "ladder",
    windows={"P1": {"ack_within": "10m", "remind_before": "3m"}},
    tiers=[tier("L1 desk", "ana"), tier("L2 engineers", "ben"), tier("L3 head", "cat"), tier("L4 director", "dan")],
)
LADDER_TIERS = "1 L1 desk, 2 L2 engineers, 3 L3 head, 4 L4 director"


async def test_escalate_to_a_named_tier_pages_it_at_once_and_its_window_starts_then(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, LADDER))
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "ladder", "escalate-to")
        await time_env.sleep(2 * MINUTE)

        jumped = await escalations.escalate(key, by="ana", reason="the customer asks for the head", to="l3 HEAD")
        [manual] = events(jumped, "escalated")
        at = manual.at
        assert (jumped.status, jumped.tier, jumped.tier_name, jumped.owners) == ("triggered", 3, "L3 head", ["cat"])
        assert (manual.who, manual.tier) == ("ana", 3)
        assert manual.detail == "manual escalation from tier 1 to tier 3 (L3 head): the customer asks for the head"
        assert (jumped.next_escalation_at, jumped.next_reminder_at) == (at + 10 * MINUTE, at + 7 * MINUTE)
        paged = await settled(escalations, key, lambda s: bool(events(s, "notified", who="cat")))
        assert got(receiver, key) == [("ana", "page", 1), ("cat", "escalated", 3)], "tier 3 is paged at once, tier 2 never"

        for wanted, says in [
            ("L9", f"there is no tier 'L9' in policy ladder: the tiers are {LADDER_TIERS}"),
            ("5", f"there is no tier '5' in policy ladder: the tiers are {LADDER_TIERS}"),
            ("3", f"incident {key} is already at tier 3 (L3 head)"),
            ("L3 head", f"incident {key} is already at tier 3 (L3 head)"),
        ]:
            with pytest.raises(IncidentRejected) as refused:
                await escalations.escalate(key, by="ana", reason="typo", to=wanted)
            assert str(refused.value) == says
        unchanged = await escalations.status(key)
        assert (unchanged.tier, len(unchanged.timeline)) == (3, len(paged.timeline)), "a refused escalation changes nothing"

        # From an acknowledged incident: it is triggered again at the chosen tier.
        await escalations.acknowledge(key, by="cat")
        again = await escalations.escalate(key, by="cat", reason="needs budget", to="4")
        assert (again.status, again.tier, again.acknowledged_by, again.owners) == ("triggered", 4, None, ["dan"])
        second_at = events(again, "escalated")[0].at

        await time_env.sleep(11 * MINUTE)
        status = await settled(escalations, key, lambda s: bool(events(s, "exhausted")))
        await save_history(time_env.client, key, "paging_escalate_to_tier")

    shown = timeline_text(status)
    [exhausted] = events(status, "exhausted")
    assert exhausted.due_at == second_at + 10 * MINUTE, f"the top tier's window counts from the manual escalation\n{shown}"
    assert [(e.tier, e.due_at) for e in events(status, "reminded")] == [(4, second_at + 7 * MINUTE)], (
        f"tier 3's reminder was stopped by the ack\n{shown}"
    )
    assert got(receiver, key) == [
        ("ana", "page", 1),
        ("cat", "escalated", 3),
        ("dan", "escalated", 4),
        ("dan", "reminder", 4),
        ("mia", "exhausted", 4),
    ]


@pytest.mark.skipif(not ESCALATE.exists(), reason="needs the escalate console script")
async def test_cli_up_to_a_tier_and_a_bad_tier_is_a_clear_rejection(time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, LADDER))
    env = server_env(time_env, settings, tmp_path)
    async with running(time_env, settings) as escalations:
        # Opened by the CLI too: it starts incidents on ESCALATE_TASK_QUEUE, where the worker is.
        key = unique_key("cli-up-to")
        code, out, err = (
            await escalate(env, "start", "--policy", "ladder", "--key", key, "--priority", "P1", "--summary", "Checkout failing")
        ).reported
        assert code == 0, err
        assert f"{key}  [P1] ladder: Checkout failing" in out and "(L1 desk)" in out
        escalations.opened.add(key)

        code, out, err = (await escalate(env, "up", key, "--by", "ana", "--reason", "VIP customer", "--to", "L4 director")).reported
        assert code == 0, err
        assert out.splitlines()[0] == f"escalated {key} to tier 4 (L4 director)"
        assert "tier      4 of 4 (L4 director)" in out

        code, out, err = (await escalate(env, "up", key, "--by", "ana", "--reason", "typo", "--to", "L5")).reported
        assert code == 1, out
        assert err.splitlines()[0] == f"escalate: there is no tier 'L5' in policy ladder: the tiers are {LADDER_TIERS}"
        assert out == ""

        status = await settled(escalations, key, lambda s: bool(events(s, "notified", who="dan")))
        await save_history(time_env.client, key, "paging_cli_up_to")
    assert (status.tier, status.owners) == (4, ["dan"])
    assert [(e.who, e.tier) for e in events(status, "escalated")] == [("ana", 4)]
    assert got(receiver, key) == [("ana", "page", 1), ("dan", "escalated", 4)]


# ── ack_timeout ──────────────────────────────────────────────────────────────────────────────

ACK_TIMEOUT = policy(
    "acktimeout",
    windows={
        "P1": {"ack_within": "10m", "remind_before": "3m", "ack_timeout": "20m", "resolve_within": "4h"},
        "P2": {"ack_within": "10m"},
    },
    tiers=[tier("Primary", "ana"), tier("Secondary", "ben")],
)


async def test_an_acknowledgement_runs_out_the_acker_is_reminded_first_and_a_new_ack_renews_it(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, ACK_TIMEOUT))
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "acktimeout", "ack-timeout")
        await time_env.sleep(11 * MINUTE)
        await settled(escalations, key, lambda s: bool(events(s, "notified", who="ben")))

        acked = await escalations.acknowledge(key, by="ben", note="checking the gateway")
        first = events(acked, "acknowledged")[0].at
        assert acked.ack_expires_at == first + 20 * MINUTE

        await time_env.sleep(17 * MINUTE + 30 * SECOND)
        reminded = await settled(escalations, key, lambda s: bool(events(s, "reminded", who="ben")))
        [reminder] = events(reminded, "reminded", who="ben")
        assert (reminder.tier, reminder.due_at, reminded.status) == (2, first + 17 * MINUTE, "acknowledged")
        assert "resolve it, or acknowledge again to keep it" in reminder.detail
        [ack_reminder] = bodies(receiver, key, "ben", "ack_reminder")
        assert "Your acknowledgement runs out soon" in ack_reminder["text"]

        with pytest.raises(IncidentRejected, match="already acknowledged by ben"):
            await escalations.acknowledge(key, by="ana")
        renewed = await escalations.acknowledge(key, by="ben")
        second = events(renewed, "acknowledged")[0]
        assert renewed.ack_expires_at == second.at + 20 * MINUTE
        assert second.detail.startswith("acknowledged again until ")

        await time_env.sleep(5 * MINUTE)  # past the first acknowledgement's end
        kept = await settled(escalations, key)
        assert (kept.status, events(kept, "ack_expired")) == ("acknowledged", []), timeline_text(kept)

        await time_env.sleep(16 * MINUTE)  # past the renewed one's end
        expired = await settled(escalations, key, lambda s: len(bodies(receiver, key, "ben", "page")) == 1)
        await time_env.sleep(10 * MINUTE)  # the tier's window starts again and runs out
        status = await settled(escalations, key, lambda s: bool(events(s, "exhausted")))
        await save_history(time_env.client, key, "paging_ack_timeout_renewed_then_expired")

    shown = timeline_text(status)
    expiry = second.at + 20 * MINUTE
    [ran_out] = events(expired, "ack_expired")
    assert (ran_out.who, ran_out.tier, ran_out.due_at) == ("ben", 2, expiry), shown
    assert "back to tier 2 (Secondary), paged again" in ran_out.detail
    assert (expired.status, expired.tier, expired.acknowledged_by, expired.owners) == ("triggered", 2, None, ["ben"])
    assert expired.ack_expires_at is None
    assert expired.next_escalation_at == expiry + 10 * MINUTE
    assert [e.due_at for e in events(status, "reminded", who="ben")] == [first + 17 * MINUTE, second.at + 17 * MINUTE]
    assert [(e.tier, e.due_at) for e in events(status, "reminded") if e.who is None] == [
        (1, trigger + 7 * MINUTE),
        (2, expiry + 7 * MINUTE),
    ], "the tier's own reminders: none while acknowledged, and again once the ack ran out"
    [exhausted] = events(status, "exhausted")
    assert exhausted.due_at == expiry + 10 * MINUTE
    assert [r for r in got(receiver, key) if r[0] == "ben"] == [
        ("ben", "escalated", 2),
        ("ben", "ack_reminder", 2),
        ("ben", "ack_reminder", 2),
        ("ben", "page", 2),
        ("ben", "reminder", 2),
    ], shown
    assert [r for r in got(receiver, key) if r[0] == "ana"] == [("ana", "page", 1), ("ana", "reminder", 1)], (
        "the incident went back to its tier (2), not to tier 1"
    )


async def test_a_resolve_before_the_acknowledgement_runs_out_stops_it_and_a_priority_without_timeout_never_runs_out(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver, ACK_TIMEOUT))
    async with running(time_env, settings) as escalations:
        key, _ = await open_incident(escalations, "acktimeout", "ack-resolved")
        calm, _ = await open_incident(escalations, "acktimeout", "ack-no-timeout", priority="P2")
        acked = await escalations.acknowledge(key, by="ana")
        at = events(acked, "acknowledged")[0].at
        calm_acked = await escalations.acknowledge(calm, by="ana")
        assert calm_acked.ack_expires_at is None

        await time_env.sleep(18 * MINUTE)  # reminded at 17m; it would run out at 20m
        await settled(escalations, key, lambda s: bool(events(s, "reminded", who="ana")))
        final = await resolve_and_close(time_env, escalations, key, by="ana", resolution="gateway restarted")
        await save_history(time_env.client, key, "paging_ack_timeout_resolved_in_time")

        await time_env.sleep(2 * timedelta(hours=1))
        still = await settled(escalations, calm)
        calm_final = await resolve_and_close(time_env, escalations, calm, by="ana", resolution="cache warmed")
        await save_history(time_env.client, calm, "paging_no_ack_timeout")

    assert final.status == "resolved"
    assert events(final, "ack_expired") == []
    [reminder] = events(final, "reminded", who="ana")
    assert reminder.due_at == at + 17 * MINUTE
    assert [r for r in got(receiver, key) if r[0] == "ana"] == [("ana", "page", 1), ("ana", "ack_reminder", 1), ("ana", "resolved", 1)]

    assert (still.status, still.acknowledged_by, still.ack_expires_at) == ("acknowledged", "ana", None)
    assert events(still, "reminded") == [] and events(still, "ack_expired") == [], timeline_text(still)
    assert got(receiver, calm) == [("ana", "page", 1), ("ana", "resolved", 1)], "no ack reminder without a timeout"
    assert calm_final.status == "resolved"


# ── drift-free deadlines, in real time ───────────────────────────────────────────────────────

HOLD = 3.0
"""How long the receiver holds every page before it answers 200."""
WINDOW = timedelta(seconds=4)
ON_TIME = timedelta(seconds=1.5)
"""How late a step may come on a busy 2-core machine; a drifting chain would be 3 s late at the
first escalation already, and 9 s by the last."""


@needs_temporal
async def test_deadlines_are_absolute_with_slow_notifications_on_the_real_server(tmp_path: Path) -> None:
    """4 tiers × 4 s; every page takes 3 s to deliver. Tier k is paged at trigger + 4(k-1) s and
    the manager told at trigger + 16 s, each within scheduling noise: the lateness never adds up."""
    began = time.monotonic()
    slow = Reply(delay=HOLD)
    written = policy(
        "drift",
        windows={"P1": {"ack_within": "4s"}},
        tiers=[tier(f"Tier {n}", owner) for n, owner in enumerate(("ana", "ben", "cat", "dan"), start=1)],
    )
    with Receiver() as receiver:
        for name in PEOPLE:
            receiver.route(f"/{name}", lambda request: slow if request.kind != "resolved" else Reply())
        async with dev_server(ui=False) as env:
            settings = make_settings(policy_dir=write_policies(tmp_path, receiver, written), webhook_timeout_seconds=10.0)
            escalations = Escalations(env.client, settings.task_queue)
            async with create_worker(env.client, settings):
                key, trigger = await open_incident(escalations, "drift", "drift")
                deadline = time.monotonic() + 40
                while True:
                    status = await escalations.status(key)
                    if events(status, "notified", who="mia") or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.25)
                final = await escalations.resolve(key, by="dan", resolution="failed over")
                handle = env.client.get_workflow_handle(workflow_id(key), result_type=IncidentStatus)
                final = await asyncio.wait_for(handle.result(), timeout=20)
                await save_history(env.client, key, "paging_drift_free_slow_webhooks")

    shown = timeline_text(final)
    chain = [(kind, tier_, trigger + k * WINDOW) for k, (kind, tier_) in enumerate(
        [("escalated", 2), ("escalated", 3), ("escalated", 4), ("exhausted", 4)], start=1
    )]
    assert [(e.kind, e.tier, e.due_at) for e in final.timeline if e.kind in ("escalated", "exhausted")] == chain, shown
    lateness = []
    for event in (e for e in final.timeline if e.kind in ("escalated", "exhausted")):
        assert event.due_at is not None
        late = event.at - event.due_at
        assert timedelta(0) <= late < ON_TIME, f"{event.kind} to tier {event.tier} {late.total_seconds():.2f}s late\n{shown}"
        lateness.append(late)

    # What the people saw: each page arrived on the chain, though each took 3 s to deliver.
    arrivals: dict[str, datetime] = {}
    for request in receiver.requests():
        body = request.json()
        if body["incident"]["key"] == key and body["kind"] != "resolved":
            arrivals.setdefault(body["person"], datetime.fromtimestamp(request.at, UTC))
    for person, due in zip(PEOPLE, [trigger + k * WINDOW for k in range(5)], strict=True):
        assert person in arrivals, f"{person} got nothing\n{shown}"
        late = arrivals[person] - due
        assert -0.2 < late.total_seconds() < ON_TIME.total_seconds(), f"{person}'s notice came {late.total_seconds():.2f}s after it was due"
    for person in ("ana", "ben", "cat", "dan"):
        [page] = [e for e in events(final, "notified", who=person) if "resolved" not in e.detail]
        assert page.at - arrivals[person] >= timedelta(seconds=HOLD - 0.1), f"{person}'s page was not slow\n{shown}"
    print(
        f"\n[drift] steps late by {', '.join(f'{d.total_seconds():.3f}s' for d in lateness)}; "
        f"arrivals late by {', '.join(f'{(arrivals[p] - trigger - k * WINDOW).total_seconds():.3f}s' for k, p in enumerate(PEOPLE))}; "
        f"test took {time.monotonic() - began:.1f}s"
    )
