"""Why an incident refuses a responder's action: pure checks of its state.

Each check raises ``Rejected`` with the reason the responder sees, in the words of the incident,
or returns when the action is allowed. The incident runs each one twice: as the update's
validator when the action arrives (a refused action leaves no trace in the history), and again
under the incident's lock just before the change, since the incident may have moved on since.
"""

from __future__ import annotations

from datetime import timedelta

from workflows import decisions
from workflows.durations import format_duration, format_time
from workflows.errors import ALREADY_RESOLVED, Rejected
from workflows.incident_state import IncidentState
from workflows.model import (
    MAX_NOTE,
    MAX_NOTES_TOTAL,
    AckRequest,
    EscalateRequest,
    IncidentRequest,
    NoteRequest,
    PriorityRequest,
    ReassignRequest,
    ResolveRequest,
    ResumeRequest,
    SlaReasonRequest,
    SnoozeRequest,
    WaitRequest,
)

MAX_SNOOZE = timedelta(days=30)


def if_resolved(incident: IncidentState, key: str, verb: str) -> None:
    if incident.state == "resolved":
        raise Rejected(
            f"incident {key} is already resolved (by {incident.resolved_by} at "
            f"{format_time(incident.resolved_at)}): it cannot be {verb}",
            kind=ALREADY_RESOLVED,
        )


def if_waiting(incident: IncidentState, key: str, verb: str) -> None:
    if incident.state == "waiting":
        since = format_time(incident.pause.since if incident.pause else None)
        raise Rejected(f"incident {key} is waiting on the customer (since {since}): resume it first, then it can be {verb}")


def long_note(note: str | None) -> None:
    """An action's note is at most as long as a note. Checked when the action arrives only (not
    again under the lock): actions of before, with longer notes, still replay as they were."""
    if note is not None and len(note) > MAX_NOTE:
        raise Rejected(f"the note is {len(note)} characters long; the limit is {MAX_NOTE}: put a link to the rest", field="note")


def notes_full(incident: IncidentState, note: str) -> None:
    """All of an incident's notes stay within MAX_NOTES_TOTAL (checked on arrival only)."""
    written = incident.notes_written()
    if written + len(note) > MAX_NOTES_TOTAL:
        raise Rejected(
            f"this incident's notes are full ({written} characters; the limit is {MAX_NOTES_TOTAL}, "
            "so that the incident stays within Temporal's limits): put the rest in a linked document",
            field="note",
        )


def trigger(incident: IncidentState, key: str, request: IncidentRequest) -> None:
    if_resolved(incident, key, "triggered again")


def acknowledge(incident: IncidentState, key: str, request: AckRequest) -> None:
    if_resolved(incident, key, "acknowledged")
    if incident.state == "acknowledged" and request.by == incident.acknowledged_by and incident.ack_clock is not None:
        return  # the acker renews an acknowledgement that would otherwise run out
    if incident.state == "acknowledged" or (incident.state == "waiting" and incident.status_before_wait == "acknowledged"):
        raise Rejected(f"incident {key} is already acknowledged by {incident.acknowledged_by} at {format_time(incident.acknowledged_at)}")


def resolve(incident: IncidentState, key: str, request: ResolveRequest) -> None:
    if_resolved(incident, key, "resolved again")


def escalate(incident: IncidentState, key: str, request: EscalateRequest) -> None:
    if_resolved(incident, key, "escalated")
    if incident.snapshot is None:
        return
    policy = incident.policy
    if request.to is not None:
        wanted = policy.policy.tier_number(request.to)
        if wanted is None:
            names = ", ".join(f"{n} {tier.name}" for n, tier in enumerate(policy.policy.tiers, 1))
            raise Rejected(f"there is no tier {request.to!r} in policy {policy.name}: the tiers are {names}")
        if wanted == incident.tier:
            raise Rejected(f"incident {key} is already at tier {incident.tier} ({policy.tier_name(incident.tier)})")
    elif decisions.manual_escalation_target(incident.tier, policy.tier_count) is None:
        raise Rejected(
            f"incident {key} is already at the top tier ({incident.tier} of {policy.tier_count}: "
            f"{policy.tier_name(incident.tier)}); reassign it to another policy instead"
        )


def reassign(incident: IncidentState, key: str, request: ReassignRequest) -> None:
    if_resolved(incident, key, "reassigned")
    if_waiting(incident, key, "reassigned")
    if incident.snapshot is not None and request.policy == incident.policy.name:
        raise Rejected(f"incident {key} is already on policy {request.policy}")


def snooze(incident: IncidentState, key: str, request: SnoozeRequest) -> None:
    if_resolved(incident, key, "snoozed")
    if_waiting(incident, key, "snoozed")
    if not timedelta(0) < request.duration <= MAX_SNOOZE:
        raise Rejected(
            f"cannot snooze for {format_duration(request.duration)}: "
            f"give a duration between 1s and {format_duration(MAX_SNOOZE)}, e.g. --for 2h"
        )


def wait_on_customer(incident: IncidentState, key: str, request: WaitRequest) -> None:
    if_resolved(incident, key, "put on hold")
    if incident.state == "waiting":
        raise Rejected(f"incident {key} is already waiting on the customer")
    if incident.state == "snoozed":
        until = format_time(incident.snoozed_until)
        raise Rejected(f"incident {key} is snoozed until {until}: it cannot wait on the customer as well")


def resume(incident: IncidentState, key: str, request: ResumeRequest) -> None:
    if_resolved(incident, key, "resumed")
    if incident.state != "waiting":
        raise Rejected(f"incident {key} is not waiting on the customer (it is {incident.state})")


def note(incident: IncidentState, key: str, request: NoteRequest) -> None:
    if_resolved(incident, key, "given a note")


def set_priority(incident: IncidentState, key: str, request: PriorityRequest) -> None:
    if_resolved(incident, key, "given a new priority")
    if_waiting(incident, key, "given a new priority")
    if request.priority == incident.priority:
        raise Rejected(f"incident {key} is already {incident.priority}")
    if incident.snapshot is not None:
        try:
            incident.policy.policy.windows_for(request.priority)
        except ValueError as err:
            raise Rejected(str(err)) from None


def explain_sla(incident: IncidentState, key: str, request: SlaReasonRequest) -> None:
    if not incident.sla_breached:
        due = f" (resolve by {format_time(incident.resolve_by)})" if incident.resolve_by else " (it has none)"
        raise Rejected(f"incident {key} has not breached its resolution SLA{due}: there is nothing to explain; use a note instead")
