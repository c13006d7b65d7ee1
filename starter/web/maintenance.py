"""Maintenance windows of a policy: incidents opened for it meanwhile page nobody until the
window ends; then those still open page their current tier."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from activities.policy_store import PolicyStore, UnknownPolicy
from starter.api import IncidentRejected
from starter.web.bodies import MaintenanceBody, PolicyName, Who
from starter.web.deps import Authorised, SettingsDep, TemporalDep
from starter.web.problems import Problem, problems, refused
from workflows.model import MaintenanceWindow

router = APIRouter(
    prefix="/v1/policies/{policy}/maintenance",
    tags=["maintenance"],
    dependencies=[Authorised],
    responses=problems(401, 422, 503),
)

Policy = Annotated[PolicyName, Path(description="The policy", examples=["payments"])]
STARTED = "Maintenance window not started"


def no_such_policy(settings: SettingsDep, policy: str) -> Problem | None:
    """404 when the policy is unknown to the policies this API reads (those of the workers)."""
    try:
        PolicyStore(settings.policy_dir).load(policy)
    except UnknownPolicy as err:
        return Problem(404, "No such policy", str(err))
    except Exception:  # a policy that does not load still exists
        return None
    return None


@router.post("", response_model=MaintenanceWindow, responses=problems(400, 409, 413))
async def start_maintenance(policy: Policy, body: MaintenanceBody, temporal: TemporalDep) -> MaintenanceWindow:
    """Start (or extend) a maintenance window: incidents opened for the policy meanwhile page
    nobody until it ends, then those still open page their current tier."""
    escalations = await temporal.escalations()
    try:
        return await escalations.start_maintenance(policy, duration=body.duration, by=body.by, reason=body.reason)
    except IncidentRejected as err:
        raise refused(err, STARTED) from None


@router.delete("", response_model=MaintenanceWindow, responses=problems(404, 409))
async def end_maintenance(
    policy: Policy, settings: SettingsDep, temporal: TemporalDep, by: Annotated[Who, Query(description="Who ends it")]
) -> MaintenanceWindow:
    """End the window now: the incidents it held page at once."""
    escalations = await temporal.escalations()
    try:
        return await escalations.end_maintenance(policy, by=by)
    except IncidentRejected as err:
        raise no_such_policy(settings, policy) or Problem(409, "No maintenance window", str(err)) from None


@router.get("", response_model=MaintenanceWindow | None, responses=problems(404))
async def get_maintenance(policy: Policy, settings: SettingsDep, temporal: TemporalDep) -> MaintenanceWindow | None:
    """The window that is on, with the incidents it holds; null when none is."""
    window = await (await temporal.escalations()).maintenance(policy)
    if window is None and (problem := no_such_policy(settings, policy)) is not None:
        raise problem
    return window
