"""Deliberately changed copies of the incident workflow, for tests/reliability/test_safe_change.py.

Each is registered under the workflow's own name (``Incident``), as a new release of the worker
would be, and makes a change a developer might well make:

* ``DebouncedIncident``: waits a moment (a timer) after loading the policy, before the first
  page: "debounce, the alert may clear itself";
* ``AuditedIncident``: records every timed-out escalation with an extra activity.

``PatchedIncident`` makes both changes, each behind ``workflow.patched``, as the README asks.
They live in their own module (not the test file) because the workflow sandbox imports the
module of each workflow class it runs: this one imports nothing but the workflow itself.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # This module as the test process has it (not the sandbox's fresh copy): REACHED outlives a replay.
    from tests.support import changed_incident as outside
    from workflows.incident import IncidentWorkflow
    from workflows.model import IncidentRequest, IncidentStatus

DEBOUNCE = timedelta(seconds=30)
AUDIT_ACTIVITY = "audit_escalation"
DEBOUNCE_PATCH = "debounce-first-page"
AUDIT_PATCH = "audit-escalations"
REACHED: dict[str, set[str]] = {DEBOUNCE_PATCH: set(), AUDIT_PATCH: set()}
"""The workflow ids of the runs in which a guarded change was reached and left out (``patched``
said no: the history was recorded before the change)."""


class _Changes(IncidentWorkflow):
    guarded = False
    debounce = False
    audit = False

    def _take(self, patch: str) -> bool:
        """Take the new path: always (unguarded), or where ``workflow.patched`` says (guarded)."""
        if not self.guarded:
            return True
        if workflow.patched(patch):
            return True
        outside.REACHED[patch].add(workflow.info().workflow_id)
        return False

    async def _take_policy_snapshot(self, name: str) -> bool:
        loaded = await super()._take_policy_snapshot(name)
        if self.debounce and loaded and self._take(DEBOUNCE_PATCH):
            await workflow.sleep(DEBOUNCE)  # the new timer, before anyone is paged
        return loaded

    def _escalate_on_timeout(self) -> None:
        if self.audit and self._take(AUDIT_PATCH):
            assert self.incident.clock is not None
            asyncio.create_task(self._audit(self.incident.clock.tier))  # the new activity, as the window ends
        super()._escalate_on_timeout()

    async def _audit(self, tier: int) -> None:
        await workflow.execute_activity(AUDIT_ACTIVITY, tier, start_to_close_timeout=timedelta(seconds=10))


# Each is a new release of the workflow: ``run`` must be declared again (the SDK asks for it on a
# subclass); the updates, signals, query and ``@workflow.init`` are inherited.


@workflow.defn(name="Incident")
class DebouncedIncident(_Changes):
    debounce = True

    @workflow.run
    async def run(self, request: IncidentRequest) -> IncidentStatus:
        return await super().run(request)


@workflow.defn(name="Incident")
class AuditedIncident(_Changes):
    audit = True

    @workflow.run
    async def run(self, request: IncidentRequest) -> IncidentStatus:
        return await super().run(request)


@workflow.defn(name="Incident")
class PatchedIncident(_Changes):
    """Both changes, each behind its own ``workflow.patched``."""

    guarded = debounce = audit = True

    @workflow.run
    async def run(self, request: IncidentRequest) -> IncidentStatus:
        return await super().run(request)
