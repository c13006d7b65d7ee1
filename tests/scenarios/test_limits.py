"""What keeps one incident inside Temporal's payload limits: the notes of an incident have a
budget, and a refused note says why and changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations, IncidentRejected
from tests.support.temporal import unique_key
from workflows.model import MAX_NOTE, MAX_NOTES_TOTAL


async def test_notes_past_the_incidents_budget_are_refused_and_the_incident_carries_on(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("notes-budget")
    await escalations.start_incident(policy="payments", key=key, priority="P3", summary="Ledger drift")
    long_note = "x" * MAX_NOTE
    fits = MAX_NOTES_TOTAL // MAX_NOTE
    for batch in range(0, fits, 10):
        await asyncio.gather(
            *(escalations.add_note(key, by="alice", text=long_note) for _ in range(min(10, fits - batch)))
        )
    with pytest.raises(IncidentRejected) as refused:
        await escalations.add_note(key, by="alice", text="one more line")
    assert "this incident's notes are full" in str(refused.value)
    assert "put the rest in a linked document" in str(refused.value)

    status = await escalations.status(key)
    assert sum(1 for event in status.timeline if event.kind == "noted") == fits, "the refused note left no trace"
    # Everything else still works: an ack (with a short note), then the resolution.
    acked = await escalations.acknowledge(key, by="erin", note="on it")
    assert acked.status == "acknowledged"
    resolved = await escalations.resolve(key, by="erin", resolution="ledger re-synced")
    assert resolved.status == "resolved"
