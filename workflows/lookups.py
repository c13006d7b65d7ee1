"""Reads a workflow's next step depends on: a policy, and the policy's maintenance window.

An incident reads them as local activities, on the worker already running its task, so that it
opens and pages tier 1 in one workflow task (see docs/adr/0002-policy-reads-as-local-activities.md);
incidents opened before that, and the maintenance workflow, read them as queued activities.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.model import LOAD_POLICY_ACTIVITY, MAINTENANCE_ACTIVITY, POLICY_RETRY, MaintenanceWindow, PolicyRef
    from workflows.policy import PolicySnapshot

LOOKUP_FAILED = (ActivityError, ApplicationError)
"""How a failed read reaches the workflow: a queued activity's failure as an ActivityError
wrapping the activity's error, a local activity's as that error itself."""
LOOKUP_TIMEOUT = timedelta(seconds=30)


async def policy(name: str, *, local: bool) -> PolicySnapshot:
    """The policy's snapshot; UnknownPolicy or InvalidPolicy (not retried) when it cannot be had."""
    snapshot: PolicySnapshot = await _read(LOAD_POLICY_ACTIVITY, name, PolicySnapshot, f"load policy {name}", local=local)
    return snapshot


async def maintenance_window(name: str, *, local: bool) -> MaintenanceWindow | None:
    """The policy's maintenance window, if one is on."""
    summary = f"maintenance window of {name}?"
    window: MaintenanceWindow | None = await _read(MAINTENANCE_ACTIVITY, name, MaintenanceWindow, summary, local=local)
    return window


async def _read(activity: str, name: str, result_type: type, summary: str, *, local: bool) -> Any:
    options: dict[str, Any] = {
        "result_type": result_type,
        "start_to_close_timeout": LOOKUP_TIMEOUT,
        "retry_policy": POLICY_RETRY,
        "summary": summary,
    }
    if local:
        return await workflow.execute_local_activity(activity, PolicyRef(name=name), **options)
    return await workflow.execute_activity(activity, PolicyRef(name=name), **options)
