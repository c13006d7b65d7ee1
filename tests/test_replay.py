"""Every recorded scenario history must replay against today's workflow code.

This runs before the scenario tests (see conftest.py), so it replays the histories recorded by
earlier code, as committed: a change to the workflow that is not replay-safe (a new activity or
timer in the middle of the story without ``workflow.patched``) fails here, in CI, before it can
wedge the incidents that are open in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.conftest import HISTORIES
from worker import workflow_runner
from workflows.incident import IncidentWorkflow

RECORDED = sorted(HISTORIES.rglob("*.json"))
"""Every generation's recordings (see ``save_history``)."""

pytestmark = pytest.mark.replay


def test_the_scenarios_have_recorded_histories() -> None:
    assert len(RECORDED) >= 10, f"expected the scenario histories under {HISTORIES}, found {len(RECORDED)}"


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("path", RECORDED, ids=[str(path.relative_to(HISTORIES).with_suffix("")) for path in RECORDED])
async def test_recorded_history_replays_with_todays_code(path: Path) -> None:
    history = WorkflowHistory.from_json(f"incident-{path.stem}", path.read_text())
    replayer = Replayer(
        workflows=[IncidentWorkflow], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
