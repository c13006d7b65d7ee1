"""A carried state is for the incident's own next run only. One sent with a new incident (by a
starter, or by anyone who can start workflows) would open an incident with no page and no story,
one that never pages anybody, and could name its own addresses for the worker to call: the
workflow refuses it, and nothing is paged.

Time-skipping scenarios, with the real worker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.policy_store import PolicyStore
from escalate.settings import EXAMPLE_POLICIES
from starter.api import Escalations, IncidentRejected
from workflows.errors import INCIDENT_REJECTED
from workflows.incident import IncidentWorkflow
from workflows.incident_state import IncidentState
from workflows.model import IncidentRequest, workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


def forged(key: str) -> IncidentRequest:
    """A request whose state names an address of the sender's choosing for tier 1."""
    snapshot = PolicyStore(EXAMPLE_POLICIES).load("payments")
    people = dict(snapshot.people)
    hook = people["frank"].channels[0].model_copy(update={"address": "https://attacker.example/hook"})
    people["erin"] = people["erin"].model_copy(update={"channels": [hook]})
    state = IncidentState(priority="P1", triggered_at=datetime.now(UTC), snapshot=snapshot.model_copy(update={"people": people}))
    return IncidentRequest(policy="payments", key=key, priority="P1", summary="forged", carried=state)


async def test_a_starter_cannot_open_an_incident_with_a_carried_state(escalations: Escalations) -> None:
    key = "forged-starter"
    with pytest.raises(IncidentRejected) as refused:
        await escalations.start_incident(forged(key))
    assert refused.value.field == "carried"
    assert "cannot bring a carried state" in str(refused.value)
    history = await escalations.client.get_workflow_handle(workflow_id(key)).fetch_history()
    assert not [event for event in history.events if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED], "nobody paged"


async def test_a_workflow_started_directly_with_a_carried_state_fails_as_no_incident(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = "forged-direct"
    handle = await time_env.client.start_workflow(
        IncidentWorkflow.run, forged(key), id=workflow_id(key), task_queue=escalations.task_queue
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == INCIDENT_REJECTED
    assert "cannot bring a carried state" in cause.message
    history = await handle.fetch_history()
    kinds = {event.event_type for event in history.events}
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds and EventType.EVENT_TYPE_MARKER_RECORDED not in kinds, (
        "no page, and not even the policy read: the state is refused before anything runs"
    )
