"""The incident's state as one model: its changes, its wording, and what a new run carries.

Pure tests: no Temporal. The policy is the example ``payments`` policy, loaded as a worker does."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.policy_store import PolicyStore
from escalate.settings import EXAMPLE_POLICIES
from workflows.incident_state import COUNTED_REQUESTS_KEPT, IncidentState
from workflows.model import IncidentRequest
from workflows.timeline import CARRIED_TIMELINE_LIMIT, TimelineEvent

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def payments_snapshot():  # type: ignore[no-untyped-def]
    return PolicyStore(EXAMPLE_POLICIES).load("payments")


@pytest.fixture
def incident(payments_snapshot) -> IncidentState:  # type: ignore[no-untyped-def]
    state = IncidentState(priority="P1", triggered_at=T0)
    state.take_policy(payments_snapshot)
    state.resolve_by = T0 + 4 * 60 * MINUTE  # P1: resolve within 4h
    state.start_tier(1, round=0, at=T0)
    return state


def test_a_tier_clock_counts_from_the_moment_given(incident: IncidentState) -> None:
    assert incident.clock is not None
    assert (incident.clock.deadline, incident.clock.remind_at) == (T0 + 15 * MINUTE, T0 + 10 * MINUTE)
    assert incident.next_wakeup() == T0 + 10 * MINUTE
    assert incident.policies_in_force == [incident.snapshot]


def test_acknowledging_stops_the_clock_and_retrigger_gives_the_tier_a_window_again(incident: IncidentState) -> None:
    incident.exhausted = True
    incident.acknowledge("alice", T0 + MINUTE)
    assert (incident.state, incident.acknowledged_by, incident.clock) == ("acknowledged", "alice", None)
    assert incident.owners() == ["alice"]
    incident.retrigger()
    assert (incident.state, incident.acknowledged_by, incident.ack_clock, incident.exhausted) == ("triggered", None, None, False)


def test_an_ack_while_waiting_on_the_customer_takes_effect_when_it_resumes(incident: IncidentState) -> None:
    incident.wait_on_customer(T0 + MINUTE)
    assert (incident.state, incident.clock, incident.running_sla()) == ("waiting", None, None)
    incident.acknowledge("bob", T0 + 2 * MINUTE)
    assert incident.state == "waiting", "still waiting on the customer"
    incident.end_wait(T0 + 30 * MINUTE)
    assert (incident.state, incident.clock) == ("acknowledged", None), "nothing escalates after the resume"
    assert incident.resolve_by == T0 + 4 * 60 * MINUTE + 29 * MINUTE, "the SLA clock stood still while waiting"


def test_closing_stops_every_clock(incident: IncidentState) -> None:
    incident.snooze(T0 + 60 * MINUTE)
    incident.close("carol", "fixed", T0 + 5 * MINUTE)
    assert (incident.state, incident.clock, incident.snoozed_until, incident.ack_clock) == ("resolved", None, None, None)
    assert (incident.resolved_by, incident.resolved_at, incident.resolution) == ("carol", T0 + 5 * MINUTE, "fixed")


def test_repeats_within_a_minute_share_one_entry(incident: IncidentState) -> None:
    assert incident.count_occurrences(1, at=T0) == 1
    incident.record(TimelineEvent(at=T0, kind="repeated", detail="repeated 1 time (total 2): disk full"))
    assert incident.count_occurrences(3, at=T0 + 30 * timedelta(seconds=1)) == 4, "joined with the entry before"
    assert incident.timeline == [], "the earlier entry is taken out, to be recorded anew with the sum"
    incident.record(TimelineEvent(at=T0, kind="repeated", detail="repeated 4 times (total 5): disk full"))
    assert incident.count_occurrences(1, at=T0 + 2 * MINUTE) == 1, "a minute later: an entry of its own"
    assert incident.occurrences == 6


def test_a_retried_trigger_is_counted_once_and_the_memory_of_triggers_is_bounded(incident: IncidentState) -> None:
    assert incident.first_time("a") and not incident.first_time("a")
    assert incident.first_time(None) and incident.first_time("")
    for number in range(2 * COUNTED_REQUESTS_KEPT):
        incident.first_time(f"r{number}")
    assert len(incident.counted_requests) == COUNTED_REQUESTS_KEPT
    assert incident.counted_requests[-1] == f"r{2 * COUNTED_REQUESTS_KEPT - 1}"


def test_a_skipped_tier_ends_its_window_as_it_begins(incident: IncidentState) -> None:
    incident.tier_people_now = ["erin"]
    incident.skip_tier()
    assert incident.clock is not None and incident.clock.deadline == T0 and incident.clock.remind_at is None
    assert (incident.tier_people_now, incident.skipped_in_a_row) == ([], 1)


def test_the_next_run_carries_the_state_whole_with_the_timeline_folded(incident: IncidentState) -> None:
    for minute in range(CARRIED_TIMELINE_LIMIT + 10):
        incident.record(TimelineEvent(at=T0 + minute * MINUTE, kind="reminded", detail="routine"))
    incident.record(TimelineEvent(at=T0, kind="acknowledged", who="alice"))
    carried = incident.for_next_run()
    assert carried.runs == incident.runs + 1
    assert len(carried.timeline) <= CARRIED_TIMELINE_LIMIT
    assert carried.timeline[-1].kind == "acknowledged", "decisions are never folded"
    assert any(event.kind == "folded" for event in carried.timeline)
    assert carried.model_dump(exclude={"timeline", "runs"}) == incident.model_dump(exclude={"timeline", "runs"})


def test_the_timer_summary_names_what_each_wake_up_is_for(incident: IncidentState) -> None:
    assert incident.wait_summary(T0 + 10 * MINUTE) == "tier 1 reminder at 2026-12-07 03:10:00 UTC"
    assert incident.wait_summary(T0 + 15 * MINUTE) == "tier 1 ack window until 2026-12-07 03:15:00 UTC"
    incident.clock = None
    incident.acknowledged_by = "alice"
    incident.ack_clock = incident.ack_clock or _ack_clock(T0)
    assert incident.wait_summary(incident.ack_clock.remind_at) == "remind alice of the acknowledgement at 2026-12-07 03:45:00 UTC"
    assert incident.wait_summary(incident.ack_clock.expires_at) == "alice's acknowledgement runs out at 2026-12-07 04:00:00 UTC"
    assert incident.wait_summary(T0 + 4 * 60 * MINUTE) == "resolution SLA until 2026-12-07 07:00:00 UTC"
    assert incident.wait_summary(None) == "waiting for a responder"


def _ack_clock(at: datetime):  # type: ignore[no-untyped-def]
    from workflows.decisions import AckClock

    return AckClock(acknowledged_at=at, remind_at=at + 45 * MINUTE, expires_at=at + 60 * MINUTE)


def test_the_status_json_says_what_the_state_holds(incident: IncidentState) -> None:
    incident.tier_people_now = ["erin", "frank"]
    status = incident.status(key="pay-1", policy="payments", summary="Card authorisations failing", details={"a": 1}, reporter=None)
    assert (status.key, status.policy, status.status, status.tier, status.tier_name) == ("pay-1", "payments", "triggered", 1, "L1 support")
    assert (status.owners, status.next_reminder_at, status.next_escalation_at) == (["erin", "frank"], T0 + 10 * MINUTE, T0 + 15 * MINUTE)
    unloaded = IncidentState(priority="P2", triggered_at=T0)
    assert unloaded.status(key="k", policy="asked-for", summary="s", details={}, reporter=None).policy == "asked-for"


def test_a_state_carried_by_an_earlier_version_decodes_into_the_one_model() -> None:
    """The second run of a 30-day incident, recorded with the earlier CarriedState: its input
    decodes into IncidentState, field for field."""
    recorded = json.loads((HISTORIES / "baseline-1" / "long_life_second_run.json").read_text())
    started = recorded["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    request = IncidentRequest.model_validate(payload)
    assert isinstance(request.carried, IncidentState)
    assert request.carried.snapshot is not None and request.carried.timeline
    assert request.carried.runs == 2 and request.carried.resolved_by is None
