"""Why an incident refuses a responder's action: each check, at each status, as a table.

Pure tests of ``workflows.refusals``: no Temporal. The policy is the example ``payments`` policy
(3 tiers, P1-P3), loaded as a worker does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.policy_store import PolicyStore
from escalate.settings import EXAMPLE_POLICIES
from workflows import refusals
from workflows.errors import ALREADY_RESOLVED, REJECTED, Rejected
from workflows.incident_state import IncidentState
from workflows.model import (
    MAX_NOTE,
    MAX_NOTES_TOTAL,
    AckRequest,
    EscalateRequest,
    NoteRequest,
    PriorityRequest,
    ReassignRequest,
    ResolveRequest,
    ResumeRequest,
    SlaReasonRequest,
    SnoozeRequest,
    WaitRequest,
)
from workflows.timeline import TimelineEvent

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
KEY = "pay-7"
SNAPSHOT = PolicyStore(EXAMPLE_POLICIES).load("payments")


def incident(status: str = "triggered", *, tier: int = 1, **fields: Any) -> IncidentState:
    state = IncidentState(priority="P1", triggered_at=T0)
    state.take_policy(SNAPSHOT)
    state.start_tier(tier, round=0, at=T0)
    if status == "acknowledged":
        state.acknowledge("alice", T0)
    elif status == "waiting":
        state.wait_on_customer(T0)
    elif status == "snoozed":
        state.snooze(T0 + timedelta(hours=1))
    elif status == "resolved":
        state.close("carol", "fixed", T0)
    for name, value in fields.items():
        setattr(state, name, value)
    return state


ACK = AckRequest(by="bob")
NOTE = NoteRequest(by="bob", note="looking")
CASES: list[tuple[str, Any, Any, IncidentState, str | None]] = [
    # (name, check, request, incident, the reason it is refused with, or None when allowed)
    ("ack when triggered", refusals.acknowledge, ACK, incident(), None),
    ("ack again by another", refusals.acknowledge, ACK, incident("acknowledged"),
     "already acknowledged by alice at 2026-12-07 03:00:00 UTC"),
    ("ack while waiting, acked before", refusals.acknowledge, ACK,
     incident("acknowledged", state="waiting", status_before_wait="acknowledged"), "already acknowledged by alice"),
    ("ack after resolve", refusals.acknowledge, ACK, incident("resolved"),
     "already resolved (by carol at 2026-12-07 03:00:00 UTC): it cannot be acknowledged"),
    ("resolve twice", refusals.resolve, ResolveRequest(by="a", resolution="x"), incident("resolved"), "cannot be resolved again"),
    ("resolve while waiting", refusals.resolve, ResolveRequest(by="a", resolution="x"), incident("waiting"), None),
    ("escalate at the top", refusals.escalate, EscalateRequest(by="a", reason="r"), incident(tier=3),
     "already at the top tier (3 of 3: L3 head of payments); reassign it to another policy instead"),
    ("escalate to a tier by name", refusals.escalate, EscalateRequest(by="a", reason="r", to="L3 head of payments"), incident(), None),
    ("escalate to an unknown tier", refusals.escalate, EscalateRequest(by="a", reason="r", to="L9"), incident(),
     "there is no tier 'L9' in policy payments: the tiers are 1 L1 support, 2 L2 payments engineering, 3 L3 head of payments"),
    ("escalate to the tier it is at", refusals.escalate, EscalateRequest(by="a", reason="r", to="1"), incident(),
     "already at tier 1 (L1 support)"),
    ("reassign to the same policy", refusals.reassign, ReassignRequest(by="a", policy="payments", reason="r"), incident(),
     "already on policy payments"),
    ("reassign while waiting", refusals.reassign, ReassignRequest(by="a", policy="database", reason="r"), incident("waiting"),
     "waiting on the customer (since 2026-12-07 03:00:00 UTC): resume it first, then it can be reassigned"),
    ("snooze for 31 days", refusals.snooze, SnoozeRequest.model_validate({"by": "a", "for": "31d"}), incident(),
     "cannot snooze for 31d: give a duration between 1s and 30d, e.g. --for 2h"),
    ("snooze for 2 hours", refusals.snooze, SnoozeRequest.model_validate({"by": "a", "for": "2h"}), incident(), None),
    ("wait twice", refusals.wait_on_customer, WaitRequest(by="a", reason="r"), incident("waiting"), "already waiting on the customer"),
    ("wait while snoozed", refusals.wait_on_customer, WaitRequest(by="a", reason="r"), incident("snoozed"),
     "snoozed until 2026-12-07 04:00:00 UTC: it cannot wait on the customer as well"),
    ("resume when not waiting", refusals.resume, ResumeRequest(by="a"), incident("acknowledged"),
     "not waiting on the customer (it is acknowledged)"),
    ("note on an open incident", refusals.note, NOTE, incident("snoozed"), None),
    ("note after resolve", refusals.note, NOTE, incident("resolved"), "cannot be given a note"),
    ("same priority", refusals.set_priority, PriorityRequest(by="a", priority="P1"), incident(), "already P1"),
    ("a priority the policy has no window for", refusals.set_priority, PriorityRequest(by="a", priority="P5"), incident(), "P5"),
    ("an SLA reason before any breach", refusals.explain_sla, SlaReasonRequest(by="a", reason="r"), incident(),
     "has not breached its resolution SLA (it has none): there is nothing to explain; use a note instead"),
    ("an SLA reason after the breach", refusals.explain_sla, SlaReasonRequest(by="a", reason="r"), incident(sla_breached=True), None),
]


@pytest.mark.parametrize(("check", "request_", "state", "refused"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_action_is_refused_with_its_reason_or_allowed(check: Any, request_: Any, state: IncidentState, refused: str | None) -> None:
    if refused is None:
        check(state, KEY, request_)
        return
    with pytest.raises(Rejected) as raised:
        check(state, KEY, request_)
    assert refused in raised.value.message
    assert raised.value.non_retryable


def test_a_refusal_after_the_resolution_says_so_by_its_type() -> None:
    with pytest.raises(Rejected) as raised:
        refusals.note(incident("resolved"), KEY, NOTE)
    assert raised.value.type == ALREADY_RESOLVED
    with pytest.raises(Rejected) as other:
        refusals.resume(incident(), KEY, ResumeRequest(by="a"))
    assert other.value.type == REJECTED


def test_the_acker_may_renew_an_acknowledgement_that_runs_out() -> None:
    state = incident("acknowledged")
    from workflows.decisions import AckClock

    state.ack_clock = AckClock(acknowledged_at=T0, remind_at=T0 + timedelta(minutes=45), expires_at=T0 + timedelta(hours=1))
    refusals.acknowledge(state, KEY, AckRequest(by="alice"))
    with pytest.raises(Rejected):
        refusals.acknowledge(state, KEY, AckRequest(by="bob"))


def test_notes_are_bounded_one_by_one_and_all_together_naming_the_field() -> None:
    refusals.long_note(None)
    refusals.long_note("x" * MAX_NOTE)
    with pytest.raises(Rejected) as raised:
        refusals.long_note("x" * (MAX_NOTE + 1))
    assert raised.value.details == ("note",)
    full = incident()
    full.timeline = [TimelineEvent(at=T0, kind="noted", detail="x" * (MAX_NOTES_TOTAL - 5))]
    refusals.notes_full(full, "12345")
    with pytest.raises(Rejected) as raised:
        refusals.notes_full(full, "123456")
    assert "notes are full" in raised.value.message and raised.value.details == ("note",)
