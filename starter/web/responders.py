"""What responders do to an incident (each a Temporal update); each answers with the status JSON.

An update's own result carries only the timeline events the action added (so that a long
incident's history does not grow with the square of its length): the answer is the incident's
whole status, read after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter

from starter.api import Escalations
from starter.web.bodies import (
    AckBody,
    EscalateBody,
    NoteBody,
    PriorityBody,
    ReassignBody,
    ResolveBody,
    ResumeBody,
    SlaReasonBody,
    SnoozeBody,
    WaitBody,
)
from starter.web.deps import Authorised, Temporal, TemporalDep
from starter.web.incidents import Key
from starter.web.problems import problems
from workflows.model import IncidentStatus

router = APIRouter(
    prefix="/v1/incidents/{key}",
    tags=["responders"],
    dependencies=[Authorised],
    responses=problems(400, 401, 404, 409, 413, 422, 503),
)


async def act(temporal: Temporal, key: str, action: Callable[[Escalations], Awaitable[Any]]) -> IncidentStatus:
    escalations = await temporal.escalations()
    await action(escalations)
    return await escalations.status(key)


@router.post("/ack", response_model=IncidentStatus)
async def acknowledge(key: Key, body: AckBody, temporal: TemporalDep) -> IncidentStatus:
    """Take the incident: every pending page, reminder and escalation stops at once."""
    return await act(temporal, key, lambda e: e.acknowledge(key, by=body.by, note=body.note))


@router.post("/resolve", response_model=IncidentStatus)
async def resolve(key: Key, body: ResolveBody, temporal: TemporalDep) -> IncidentStatus:
    """Resolve, at any status but resolved: everyone paged is told the outcome."""
    return await act(temporal, key, lambda e: e.resolve(key, by=body.by, resolution=body.resolution))


@router.post("/escalate", response_model=IncidentStatus)
async def escalate(key: Key, body: EscalateBody, temporal: TemporalDep) -> IncidentStatus:
    """Escalate by hand, to the next tier (or the tier ``to``), paged at once."""
    return await act(temporal, key, lambda e: e.escalate(key, by=body.by, reason=body.reason, to=body.to))


@router.post("/reassign", response_model=IncidentStatus)
async def reassign(key: Key, body: ReassignBody, temporal: TemporalDep) -> IncidentStatus:
    """Hand the incident to another policy: its tier 1 is paged at once."""
    return await act(temporal, key, lambda e: e.reassign(key, policy=body.policy, by=body.by, reason=body.reason))


@router.post("/snooze", response_model=IncidentStatus)
async def snooze(key: Key, body: SnoozeBody, temporal: TemporalDep) -> IncidentStatus:
    """Nothing pages until the snooze ends (``"for": "2h"``)."""
    return await act(temporal, key, lambda e: e.snooze(key, duration=body.duration, by=body.by))


@router.post("/notes", response_model=IncidentStatus)
async def add_note(key: Key, body: NoteBody, temporal: TemporalDep) -> IncidentStatus:
    return await act(temporal, key, lambda e: e.add_note(key, by=body.by, text=body.note))


@router.post("/priority", response_model=IncidentStatus)
async def set_priority(key: Key, body: PriorityBody, temporal: TemporalDep) -> IncidentStatus:
    return await act(temporal, key, lambda e: e.set_priority(key, priority=body.priority, by=body.by))


@router.post("/wait", response_model=IncidentStatus)
async def wait_on_customer(key: Key, body: WaitBody, temporal: TemporalDep) -> IncidentStatus:
    """Waiting on the customer: escalation and the SLA clock stop until /resume."""
    return await act(temporal, key, lambda e: e.wait_on_customer(key, by=body.by, reason=body.reason))


@router.post("/resume", response_model=IncidentStatus)
async def resume(key: Key, body: ResumeBody, temporal: TemporalDep) -> IncidentStatus:
    """The customer answered: the clocks run again with the time they had left."""
    return await act(temporal, key, lambda e: e.resume(key, by=body.by, note=body.note))


@router.post("/sla-reason", response_model=IncidentStatus)
async def sla_reason(key: Key, body: SlaReasonBody, temporal: TemporalDep) -> IncidentStatus:
    """Why the resolution SLA was missed (shown in the status and the review)."""
    return await act(temporal, key, lambda e: e.explain_sla(key, by=body.by, reason=body.reason))
