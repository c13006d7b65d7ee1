"""Recorded histories: every scenario keeps the history of what it ran, and tests/test_replay.py
replays each one against today's workflow code.

A history already recorded is kept as it is (it is what older code wrote, which is the point of
replaying it); ``ESCALATE_RECORD_HISTORIES=1`` records them all afresh. Incidents: each
generation of the workflow code (``PATCH_BASELINE``: the patches an incident opened today takes)
records its own copy under ``tests/histories/<baseline>/``, beside those of earlier generations
(``tests/histories/*.json`` are from before the first baseline). Maintenance windows (workflow
id ``maintenance-<policy>``) under ``tests/histories/maintenance/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, WorkflowReplayResult

from tests.support.paths import HISTORIES
from worker import workflow_runner
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWorkflow
from workflows.model import maintenance_id, workflow_id
from workflows.patches import PATCH_BASELINE

RECORD_HISTORIES = os.environ.get("ESCALATE_RECORD_HISTORIES") == "1"
MAINTENANCE_HISTORIES = HISTORIES / "maintenance"


def history_path(name: str) -> Path:
    """Where this generation of the code keeps the incident history called ``name``."""
    folder = HISTORIES / PATCH_BASELINE
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.json"


def _kept(path: Path) -> bool:
    return path.exists() and not RECORD_HISTORIES


def _write(history: WorkflowHistory, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(history.to_json())
    return path


async def _keep(client: Client, workflow: str, path: Path, run_id: str | None = None) -> Path:
    if _kept(path):
        return path
    return _write(await client.get_workflow_handle(workflow, run_id=run_id).fetch_history(), path)


def keep_history(history: WorkflowHistory, name: str) -> Path:
    """Keep this incident history (one run of a chain, say) as ``name``, as ``save_history`` does."""
    path = history_path(name)
    return path if _kept(path) else _write(history, path)


async def save_history(client: Client, key: str, name: str) -> Path:
    """Keep incident ``key``'s history as ``name`` (see the module's docstring)."""
    return await _keep(client, workflow_id(key), history_path(name))


async def save_maintenance_history(client: Client, policy: str, name: str, run_id: str | None = None) -> Path:
    """Keep the history of ``policy``'s maintenance window (the latest run, or ``run_id``) as
    ``name``; the run should have closed."""
    return await _keep(client, maintenance_id(policy), MAINTENANCE_HISTORIES / f"{name}.json", run_id)


def recorded() -> list[Path]:
    """Every recorded history, of every generation and workflow."""
    return sorted(HISTORIES.rglob("*.json"))


def recorded_incidents() -> list[Path]:
    """Every recorded incident history, of every generation (no maintenance window)."""
    return [path for path in recorded() if path.parent != MAINTENANCE_HISTORIES]


def load(path: Path) -> WorkflowHistory:
    """A recorded history, under its workflow's id: ``maintenance-<policy>`` for a maintenance
    window (from the policy its run was started for), ``incident-<name>`` for an incident."""
    text = path.read_text()
    if path.parent == MAINTENANCE_HISTORIES:
        started = WorkflowHistory.from_json("maintenance", text).events[0].workflow_execution_started_event_attributes
        request: dict[str, Any] = json.loads(started.input.payloads[0].data)
        return WorkflowHistory.from_json(maintenance_id(request["policy"]), text)
    return WorkflowHistory.from_json(f"incident-{path.stem}", text)


def replayer() -> Replayer:
    """Today's workflows as the worker runs them (its sandbox): each history replays with the
    workflow its type names (``Incident``, ``Maintenance``)."""
    return Replayer(
        workflows=[IncidentWorkflow, MaintenanceWorkflow], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )


async def replay(history: WorkflowHistory) -> WorkflowReplayResult:
    """Replay with today's code; the failure, if any, is in the result's ``replay_failure``."""
    return await replayer().replay_workflow(history, raise_on_replay_failure=False)


async def replay_all(paths: list[Path]) -> dict[Path, WorkflowReplayResult]:
    """Replay these recorded histories with today's code, one after the other in one replayer."""

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in paths:
            yield load(path)

    results: dict[Path, WorkflowReplayResult] = {}
    async with replayer().workflow_replay_iterator(histories()) as replayed:
        async for result in replayed:
            results[paths[len(results)]] = result
    return results


async def check_replays(client: Client, key: str) -> None:
    """Incident ``key``'s history as it is now replays with today's code (no nondeterminism)."""
    history = await client.get_workflow_handle(workflow_id(key)).fetch_history()
    result = await replay(history)
    assert result.replay_failure is None, f"the history of {key} does not replay: {result.replay_failure}"
