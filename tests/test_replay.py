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

from tests.support.histories import load, recorded, replay
from tests.support.paths import HISTORIES

RECORDED = recorded()
"""Every generation's recordings (see ``tests.support.histories``)."""

pytestmark = pytest.mark.replay


def test_the_scenarios_have_recorded_histories() -> None:
    assert len(RECORDED) >= 10, f"expected the scenario histories under {HISTORIES}, found {len(RECORDED)}"


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("path", RECORDED, ids=[str(path.relative_to(HISTORIES).with_suffix("")) for path in RECORDED])
async def test_recorded_history_replays_with_todays_code(path: Path) -> None:
    history, workflow = load(path)
    result = await replay(history, workflow)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
