"""Incident scenarios on the time-skipping test server: days of escalation in milliseconds.

Each scenario keeps its history under tests/histories/ (replayed by tests/test_replay.py).
Times are exact here: the test server fires timers precisely when they are due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations, IncidentNotFound, IncidentRejected, InvalidRequest
from tests.support.histories import save_history
from tests.support.temporal import make_settings, tracked, unique_key
from tests.support.timeline import assert_on_time, events
from worker import create_worker
from workflows.model import IncidentStatus, workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def paged(status: IncidentStatus, *, after: datetime | None = None) -> list[str]:
    """Who was notified (in any way), optionally only after a moment."""
    return [
        event.who or ""
        for event in events(status, "notified")
        if after is None or event.at > after
    ]


async def advance(env: WorkflowEnvironment, by: timedelta) -> None:
    await env.sleep(by)


async def test_service_desk_case_reminds_on_day_4_and_escalates_every_5_days(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("case")
    opened = await escalations.start_incident(
        policy="service-desk", key=key, priority="medium", summary="Customer cannot export invoices"
    )
    assert opened.created
    assert opened.status.priority == "P3"
    assert opened.status.tier_name == "L1 service desk"
    assert opened.status.owners == ["grace", "heidi"]
    trigger = opened.status.triggered_at
    assert trigger is not None

    await advance(time_env, 3 * DAY + 23 * timedelta(hours=1))
    status = await escalations.status(key)
    assert events(status, "reminded") == [], "no reminder before day 4"
    assert sorted(paged(status)) == ["grace", "heidi"]

    await advance(time_env, 2 * timedelta(hours=1))  # day 4 + 1h
    status = await escalations.status(key)
    [reminder] = events(status, "reminded")
    assert_on_time(reminder, trigger + 4 * DAY)
    assert reminder.tier == 1
    assert sorted(paged(status, after=trigger + DAY)) == ["grace", "heidi"], "the reminder goes to tier 1"
    assert status.tier == 1

    await advance(time_env, DAY)  # day 5 + 1h
    status = await escalations.status(key)
    [to_l2] = events(status, "escalated")
    assert_on_time(to_l2, trigger + 5 * DAY)
    assert (status.tier, status.tier_name, status.owners) == (2, "L2 product specialists", ["alice", "bob"])
    assert sorted(paged(status, after=trigger + 5 * DAY - MINUTE)) == ["alice", "bob"]
    assert status.next_escalation_at == trigger + 10 * DAY

    await advance(time_env, 5 * DAY)  # day 10 + 1h
    status = await escalations.status(key)
    to_l2, to_l3 = events(status, "escalated")
    assert_on_time(to_l3, trigger + 10 * DAY)
    assert [event.due_at for event in events(status, "reminded")] == [trigger + 4 * DAY, trigger + 9 * DAY]
    assert (status.tier, status.tier_name, status.owners) == (3, "L3 engineering manager", ["carol"])
    assert status.status == "triggered"
    await save_history(time_env.client, key, "service_desk_escalates_by_days")


async def test_ack_at_tier_2_stops_every_page_and_escalation(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("ack")
    opened = await escalations.start_incident(policy="payments", key=key, priority="P1", summary="Card auths failing")
    trigger = opened.status.triggered_at
    assert trigger is not None
    await advance(time_env, 16 * MINUTE)
    assert (await escalations.status(key)).tier == 2

    acked = await escalations.acknowledge(key, by="alice", note="looking at the gateway")
    assert acked.status == "acknowledged"
    assert acked.acknowledged_by == "alice"
    assert acked.owners == ["alice"]
    assert acked.next_escalation_at is None
    ack_event = events(acked, "acknowledged")[-1]
    assert (ack_event.who, ack_event.tier, ack_event.detail) == ("alice", 2, "looking at the gateway")

    await advance(time_env, 3 * timedelta(hours=1))  # past every tier's window and repeat round
    status = await escalations.status(key)
    assert status.status == "acknowledged"
    assert status.tier == 2
    after_ack = [event for event in status.timeline if event.at > ack_event.at]
    assert [event.kind for event in after_ack] == [], f"nothing may happen after the ack: {after_ack}"

    with pytest.raises(IncidentRejected, match="already acknowledged by alice"):
        await escalations.acknowledge(key, by="bob")
    await save_history(time_env.client, key, "ack_at_tier_2_stops_escalation")


async def test_resolve_returns_the_final_status_and_ends_the_incident(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("resolve")
    await escalations.start_incident(policy="payments", key=key, priority="P2", summary="Refunds delayed")
    await advance(time_env, 10 * MINUTE)
    resolved = await escalations.resolve(key, by="erin", resolution="Restarted the refund worker")
    assert resolved.status == "resolved"
    assert resolved.resolved_by == "erin"
    assert resolved.resolution == "Restarted the refund worker"
    assert [(event.kind, event.who) for event in resolved.timeline] == [("resolved", "erin")], (
        "an action's result carries the events it added"
    )

    final = await time_env.client.get_workflow_handle(workflow_id(key), result_type=IncidentStatus).result()
    assert final.status == "resolved"
    assert final.timeline[0].kind == "triggered"
    told = sorted((event.who or "", event.detail.split(" via ")[0]) for event in events(final, "notified"))
    assert told == [("erin", "page"), ("erin", "resolved"), ("frank", "page"), ("frank", "resolved")], (
        "tier 1 was paged, and everyone paged is told the outcome"
    )
    assert events(final, "resolved") == resolved.timeline
    assert final == await escalations.status(key)

    with pytest.raises(IncidentRejected, match="already resolved .*erin.*cannot be acknowledged"):
        await escalations.acknowledge(key, by="bob")
    with pytest.raises(IncidentRejected, match="already resolved"):
        await escalations.resolve(key, by="bob", resolution="again")
    assert (await escalations.status(key)).status == "resolved"
    await save_history(time_env.client, key, "resolve_returns_timeline")


async def test_repeat_rounds_then_exhausted_manager_told_and_still_open(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("exhaust")
    opened = await escalations.start_incident(policy="payments", key=key, priority="P1", summary="Checkout down")
    trigger = opened.status.triggered_at
    assert trigger is not None
    await advance(time_env, 95 * MINUTE)  # 3 tiers x 15m, twice (repeat: 1), then 5m more
    status = await escalations.status(key)

    escalations_seen = [(event.tier, event.due_at) for event in events(status, "escalated")]
    assert escalations_seen == [
        (2, trigger + 15 * MINUTE),
        (3, trigger + 30 * MINUTE),
        (1, trigger + 45 * MINUTE),  # round 2 starts again at tier 1
        (2, trigger + 60 * MINUTE),
        (3, trigger + 75 * MINUTE),
    ]
    [exhausted] = events(status, "exhausted")
    assert exhausted.due_at == trigger + 90 * MINUTE
    assert "dana" in exhausted.detail
    assert status.exhausted
    assert status.status == "triggered"
    assert status.next_escalation_at is None
    manager_notices = [event for event in events(status, "notified") if event.who == "dana"]
    assert len(manager_notices) == 1 and "exhausted" in manager_notices[0].detail

    await advance(time_env, 60 * MINUTE)
    later = await escalations.status(key)
    assert paged(later, after=exhausted.at + MINUTE) == [], "nothing more pages once exhausted"

    acked = await escalations.acknowledge(key, by="carol")
    assert acked.status == "acknowledged"
    await save_history(time_env.client, key, "repeat_rounds_then_exhausted")


async def test_snooze_pauses_escalation_then_pages_the_current_tier_again(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("snooze")
    await escalations.start_incident(policy="payments", key=key, priority="P2", summary="Slow settlement report")
    await advance(time_env, 10 * MINUTE)
    snoozed = await escalations.snooze(key, duration="2h", by="erin")
    assert snoozed.status == "snoozed"
    assert snoozed.snoozed_until is not None
    assert snoozed.next_escalation_at is None
    until = snoozed.snoozed_until

    await advance(time_env, 110 * MINUTE)  # the 1h window would have ended long ago
    during = await escalations.status(key)
    assert during.status == "snoozed"
    assert events(during, "escalated") == []
    assert events(during, "reminded") == []

    await advance(time_env, 20 * MINUTE)
    woke = await escalations.status(key)
    [wake] = events(woke, "woke")
    assert_on_time(wake, until)
    assert woke.status == "triggered"
    assert woke.tier == 1
    assert sorted(paged(woke, after=until - timedelta(seconds=1))) == ["erin", "frank"]
    assert woke.next_escalation_at == until + timedelta(hours=1), "the window starts again when the snooze ends"

    await advance(time_env, 60 * MINUTE)
    escalated = await escalations.status(key)
    [to_l2] = events(escalated, "escalated")
    assert to_l2.due_at == until + timedelta(hours=1)

    with pytest.raises(IncidentRejected, match="cannot snooze"):
        await escalations.snooze(key, duration="60d", by="erin")
    resolved = await escalations.resolve(key, by="alice", resolution="Report job re-run")
    assert resolved.status == "resolved"
    await save_history(time_env.client, key, "snooze_then_wake")


async def test_reassign_starts_the_other_policy_at_tier_1_and_stops_the_old_timers(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("reassign")
    await escalations.start_incident(policy="payments", key=key, priority="P1", summary="Ledger writes timing out")
    await advance(time_env, 5 * MINUTE)

    with pytest.raises(IncidentRejected, match="already on policy payments"):
        await escalations.reassign(key, policy="payments", by="erin", reason="same team")
    with pytest.raises(IncidentRejected, match="unknown policy 'databse': did you mean 'database'"):
        await escalations.reassign(key, policy="databse", by="erin", reason="typo")

    moved = await escalations.reassign(key, policy="database", by="erin", reason="the primary DB is saturated")
    moved_at = events(moved, "reassigned")[-1].at
    assert moved.policy == "database"
    assert (moved.tier, moved.tier_name, moved.owners) == (1, "DB on-call", ["ivan", "judy"])
    assert moved.next_escalation_at == moved_at + timedelta(minutes=10)  # database P1 window

    await advance(time_env, 11 * MINUTE)  # payments would have escalated at 15m; database at +10m
    status = await escalations.status(key)
    [to_lead] = events(status, "escalated")
    assert to_lead.due_at == moved_at + timedelta(minutes=10)
    assert (status.tier, status.tier_name, status.owners) == (2, "DB lead", ["carol"])
    assert sorted(paged(status, after=moved_at - timedelta(seconds=1))) == ["carol", "ivan", "ivan", "judy", "judy"]
    assert "alice" not in paged(status), "the old policy's tier 2 is never paged"
    await save_history(time_env.client, key, "reassign_to_database")


async def test_priority_change_recomputes_windows_from_now(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("priority")
    opened = await escalations.start_incident(policy="payments", key=key, priority="P3", summary="Typos on receipts")
    trigger = opened.status.triggered_at
    assert trigger is not None
    assert opened.status.next_escalation_at == trigger + 5 * DAY

    await advance(time_env, DAY)
    with pytest.raises(IncidentRejected, match="already P3"):
        await escalations.set_priority(key, priority="P3", by="erin")
    with pytest.raises(IncidentRejected, match="no windows for P4"):
        await escalations.set_priority(key, priority="P4", by="erin")
    with pytest.raises(InvalidRequest, match="unknown priority .P9."):
        await escalations.set_priority(key, priority="P9", by="erin")

    raised = await escalations.set_priority(key, priority="P1", by="erin")
    changed_at = events(raised, "priority_changed")[-1].at
    assert raised.priority == "P1"
    assert raised.next_escalation_at == changed_at + 15 * MINUTE
    assert raised.next_reminder_at == changed_at + 10 * MINUTE
    assert raised.resolve_by == changed_at + 4 * timedelta(hours=1)

    await advance(time_env, 16 * MINUTE)
    status = await escalations.status(key)
    [to_l2] = events(status, "escalated")
    assert to_l2.due_at == changed_at + 15 * MINUTE
    await save_history(time_env.client, key, "priority_change")


async def test_resolution_sla_breach_tells_the_manager_and_keeps_going(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("sla")
    opened = await escalations.start_incident(policy="payments", key=key, priority="P1", summary="Payouts stuck")
    trigger = opened.status.triggered_at
    assert trigger is not None
    assert opened.status.resolve_by == trigger + 4 * timedelta(hours=1)
    await advance(time_env, 5 * MINUTE)
    await escalations.acknowledge(key, by="erin")

    await advance(time_env, 4 * timedelta(hours=1))
    status = await escalations.status(key)
    assert status.sla_breached
    [breach] = events(status, "sla_breached")
    assert_on_time(breach, trigger + 4 * timedelta(hours=1))
    notices = [event for event in events(status, "notified") if event.who == "dana"]
    assert len(notices) == 1 and "sla_breach" in notices[0].detail
    assert status.status == "acknowledged", "a breach is recorded; the incident carries on"

    await advance(time_env, 4 * timedelta(hours=1))
    assert len(events(await escalations.status(key), "sla_breached")) == 1, "a breach is told once"
    resolved = await escalations.resolve(key, by="erin", resolution="Payout batch replayed")
    assert resolved.sla_breached
    await save_history(time_env.client, key, "sla_breach")


async def test_a_repeated_start_joins_the_open_incident_without_paging_again(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("dedup")
    first = await escalations.start_incident(policy="payments", key=key, priority="P2", summary="5xx on /charge")
    await advance(time_env, MINUTE)
    pages_before = paged(await escalations.status(key))
    assert sorted(pages_before) == ["erin", "frank"]

    again = await escalations.start_incident(policy="payments", key=key, priority="P2", summary="5xx on /charge (2)")
    assert first.created and not again.created
    assert again.status.occurrences == 2
    await advance(time_env, MINUTE)
    status = await escalations.status(key)
    assert paged(status) == pages_before, "joining pages nobody"
    [repeat] = events(status, "repeated")
    assert "5xx on /charge (2)" in repeat.detail
    assert status.summary == "5xx on /charge", "the incident keeps its first summary"

    await escalations.resolve(key, by="frank", resolution="Bad deploy rolled back")
    reopened = await escalations.start_incident(policy="payments", key=key, priority="P2", summary="5xx again")
    assert reopened.created, "a resolved key opens a new incident"
    assert reopened.status.occurrences == 1
    await escalations.resolve(key, by="frank", resolution="duplicate")
    await save_history(time_env.client, key, "repeated_start_joins")


async def test_manual_escalation_pages_the_next_tier_at_once(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("up")
    await escalations.start_incident(policy="payments", key=key, priority="P2", summary="Customer asks for a manager")
    await advance(time_env, 5 * MINUTE)
    await escalations.acknowledge(key, by="erin")

    up = await escalations.escalate(key, by="erin", reason="the customer asks for a manager")
    moved_at = events(up, "escalated")[-1].at
    assert (up.status, up.tier, up.owners, up.acknowledged_by) == ("triggered", 2, ["alice", "bob"], None)
    assert up.next_escalation_at == moved_at + timedelta(hours=1)
    await advance(time_env, MINUTE)
    status = await escalations.status(key)
    assert sorted(paged(status, after=moved_at - timedelta(seconds=1))) == ["alice", "bob"]

    top = await escalations.escalate(key, by="alice", reason="needs the head of payments")
    assert top.tier == 3
    with pytest.raises(IncidentRejected, match="already at the top tier"):
        await escalations.escalate(key, by="carol", reason="nowhere to go")
    await escalations.resolve(key, by="carol", resolution="Refund approved")
    await save_history(time_env.client, key, "manual_escalation")


async def test_unknown_policy_or_priority_is_rejected_and_opens_nothing(escalations: Escalations) -> None:
    with pytest.raises(IncidentRejected, match="unknown policy 'paymnts': did you mean 'payments'"):
        await escalations.start_incident(policy="paymnts", key=unique_key("bad"), priority="P1", summary="x")
    key = unique_key("bad")
    with pytest.raises(IncidentRejected, match="no windows for P5: it defines P1, P2, P3"):
        await escalations.start_incident(policy="payments", key=key, priority="P5", summary="x")
    with pytest.raises(IncidentRejected, match="not opened"):
        await escalations.status(key)
    with pytest.raises(IncidentNotFound):
        await escalations.acknowledge(unique_key("never"), by="alice")


async def test_worker_restart_mid_window_skips_no_tier_and_repeats_none(time_env: WorkflowEnvironment) -> None:
    settings = make_settings()
    escalations = tracked(time_env.client, settings)
    key = unique_key("restart")
    # No sticky cache, so that nothing waits for this worker once it is gone (the test server
    # does not time out a dead worker's sticky queue while it skips time).
    async with create_worker(time_env.client, settings, max_cached_workflows=0):
        opened = await escalations.start_incident(
            policy="service-desk", key=key, priority="medium", summary="Invoices missing VAT"
        )
        await advance(time_env, 2 * DAY)
    trigger = opened.status.triggered_at
    assert trigger is not None

    # No worker for a day in the middle of tier 1's window. (The time-skipping server cannot
    # skip past a timer that fires with no worker to take it; tests/reliability covers a worker
    # that is down across a deadline, on the real dev server.)
    await advance(time_env, DAY)

    async with create_worker(time_env.client, settings):  # a fresh worker: replays the history, then carries on
        await advance(time_env, 8 * DAY)  # day 11
        status = await escalations.status(key)
        await save_history(time_env.client, key, "worker_restart_mid_window")
        await escalations.terminate_open()
    assert [(event.tier, event.due_at) for event in events(status, "escalated")] == [
        (2, trigger + 5 * DAY),
        (3, trigger + 10 * DAY),
    ], "each tier exactly once, on the policy's clock"
    for event, due in zip(events(status, "escalated"), (trigger + 5 * DAY, trigger + 10 * DAY), strict=True):
        assert_on_time(event, due)
    assert [event.due_at for event in events(status, "reminded")] == [trigger + 4 * DAY, trigger + 9 * DAY]
    assert [event.who for event in events(status, "notified") if event.tier == 1].count("grace") == 2, (
        "tier 1 paged once and reminded once: the restart repeats nothing"
    )
    assert len(events(status, "triggered")) == 1
