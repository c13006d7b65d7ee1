"""Every recorded scenario history must replay against today's workflow code.

This runs before the scenario tests (see conftest.py), so it replays the histories recorded by
earlier code, as committed: a change to the workflow that is not replay-safe (a new activity or
timer in the middle of the story without ``workflow.patched``) fails here, in CI, before it can
wedge the incidents that are open in production. Incidents replay with ``IncidentWorkflow``, the
maintenance windows (tests/histories/maintenance/) with ``MaintenanceWorkflow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.worker import WorkflowReplayResult

from tests.support.histories import MAINTENANCE_HISTORIES, load, recorded, replay_all
from tests.support.markers import patches
from tests.support.paths import HISTORIES
from workflows.patches import PATCH_EXTEND_HELD, PATCH_IDLE_EXIT

RECORDED = recorded()
"""Every generation's recordings (see ``tests.support.histories``)."""

pytestmark = pytest.mark.replay


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def replayed() -> dict[Path, WorkflowReplayResult]:
    """Every recorded history replayed once, in one replayer (one worker for all of them)."""
    return await replay_all(RECORDED)


def test_the_scenarios_have_recorded_histories() -> None:
    assert len(RECORDED) >= 10, f"expected the scenario histories under {HISTORIES}, found {len(RECORDED)}"


def test_the_maintenance_windows_have_recorded_histories_through_both_patches() -> None:
    windows = [load(path) for path in RECORDED if path.parent == MAINTENANCE_HISTORIES]
    assert windows, f"expected the maintenance windows' histories under {MAINTENANCE_HISTORIES}"
    assert {patch for history in windows for patch in patches(history)} >= {PATCH_EXTEND_HELD, PATCH_IDLE_EXIT}


@pytest.mark.parametrize("path", RECORDED, ids=[str(path.relative_to(HISTORIES).with_suffix("")) for path in RECORDED])
def test_recorded_history_replays_with_todays_code(path: Path, replayed: dict[Path, WorkflowReplayResult]) -> None:
    failure = replayed[path].replay_failure
    assert failure is None, f"{path.name} no longer replays: {failure}"
