"""The maintenance hold: a new incident opened during its policy's maintenance window is
recorded, but pages nobody until the window ends (on time, ended early, or later when extended).

A plain class the incident workflow owns; the policy's maintenance workflow
(``workflows/maintenance.py``) releases the incidents it holds, and tells them when the window
is extended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import lookups
    from workflows.durations import format_time
    from workflows.errors import reason
    from workflows.incident_state import IncidentState
    from workflows.model import HOLD_SIGNAL, MaintenanceWindow, maintenance_id
    from workflows.paging import Recorder

FALLBACK_AFTER = timedelta(seconds=5)
"""A held incident releases itself this long after its window's end if the window's own
release has not come by then."""


class MaintenanceHold:
    def __init__(self, incident: Callable[[], IncidentState], key: str, record: Recorder, changed: Callable[[], None]) -> None:
        self._incident = incident
        self._key = key
        self._record = record
        self._changed = changed
        self.released = False

    async def wait_out_any_window(self, policy: str, *, local: bool) -> datetime:
        """Hold the new incident until the policy's maintenance window, if one is on, is over;
        the moment the incident's clocks start is returned."""
        incident = self._incident()
        try:
            window = await lookups.maintenance_window(policy, local=local)
        except lookups.LOOKUP_FAILED as err:
            # Paging when in doubt: an incident held by mistake is worse than one paged during a window.
            detail = f"could not tell whether {policy} is in maintenance ({reason(err)}): paging as usual"
            self._record("noted", tier=incident.tier, detail=detail)
            return incident.triggered_at
        if window is None or window.until <= workflow.now():
            return incident.triggered_at
        return await self._wait_out(incident, window)

    async def _wait_out(self, incident: IncidentState, window: MaintenanceWindow) -> datetime:
        incident.held_until = window.until
        self._record(
            "held",
            tier=incident.tier,
            who=window.by,
            detail=(
                f"opened during maintenance of {window.policy} until {format_time(window.until)} "
                f"({window.reason}): nobody paged until it ends"
            ),
        )
        try:
            await workflow.get_external_workflow_handle(maintenance_id(window.policy)).signal(HOLD_SIGNAL, self._key)
        except Exception:
            pass  # the window closed meanwhile: it ends by its time below anyway
        self._changed()
        await self._until_released(incident)
        incident.held_until = None
        released = workflow.now()
        if incident.state != "resolved":
            after = "paging starts now" if incident.state == "triggered" else f"nothing to page ({incident.state})"
            self._record("released", tier=incident.tier, detail=f"the maintenance window is over: {after}")
        return released

    async def _until_released(self, incident: IncidentState) -> None:
        """Released by the maintenance workflow when the window ends (on time, early, or later
        when extended: that moves held_until). The timer is the fallback should that signal never
        come; it runs a little past the end so that the two never race."""
        while incident.held_until is not None:
            if await self._ran_out(incident, incident.held_until):
                return
            if self.released or incident.state == "resolved":
                return

    async def _ran_out(self, incident: IncidentState, until: datetime) -> bool:
        """Wait for the release, the resolution or a new end; True when none came in time."""
        try:
            await workflow.wait_condition(
                lambda: self.released or incident.state == "resolved" or incident.held_until != until,
                timeout=until - workflow.now() + FALLBACK_AFTER,
                timeout_summary=f"held by maintenance until {format_time(until)}",
            )
        except TimeoutError:
            return True
        return False

    def release(self) -> None:
        """The window is over: page now."""
        self.released = True

    def extend(self, until: datetime) -> None:
        """The window holding this incident was extended: it stays held until the new end."""
        incident = self._incident()
        if incident.held_until is not None and not self.released and until > incident.held_until:
            incident.held_until = until
            detail = f"the maintenance window was extended until {format_time(until)}: still nobody paged"
            self._record("held", tier=incident.tier, detail=detail)
            self._changed()
