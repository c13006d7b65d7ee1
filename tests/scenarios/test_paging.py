"""On-call paging parity (issue 13), part 1: per-tier windows, repeat and exhaustion, escalating
to a chosen tier, the acknowledgement timeout (the pure decisions: tests/unit/test_paging_decisions.py;
drift-free deadlines on the real server: tests/e2e/test_paging_drift.py).

Everything is real: every person is reached by webhook at their own path of a real HTTP receiver
on 127.0.0.1 (``tests.support.receiver.Receiver``), so each scenario checks what the receivers got as
well as the timeline and the status. The scenarios run on the time-skipping test server, where
times are exact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from starter.api import IncidentRejected
from tests.support.cli import escalate, server_env
from tests.support.histories import save_history
from tests.support.incidents import open_incident, settled
from tests.support.paths import ESCALATE
from tests.support.policies import policy, tier, webhooks, write_folder
from tests.support.receiver import Receiver, got
from tests.support.temporal import make_settings, resolve_and_close, running, unique_key
from tests.support.timeline import events, timeline_text
from workflows.model import IncidentStatus, workflow_id

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
PEOPLE = ("ana", "ben", "cat", "dan", "mia")
"""Tier owners (ana, ben, cat, dan) and the manager (mia); each has a webhook and nothing else."""


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


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


async def test_repeat_forever_without_an_sla_keeps_paging_across_runs(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
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


@pytest.mark.slow  # runs the console script
@pytest.mark.skipif(not ESCALATE.exists(), reason="needs the escalate console script")
async def test_cli_up_to_a_tier_and_a_bad_tier_is_a_clear_rejection(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
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
