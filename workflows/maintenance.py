"""Maintenance windows: one workflow per policy (id ``maintenance-<policy>``) while a window is
on. Incidents opened for the policy meanwhile are recorded but page nobody; when the window
ends (on time, or ended early) the ones still open page their current tier."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import lookups
    from workflows.durations import format_duration
    from workflows.errors import Rejected, reason
    from workflows.model import (
        EXTEND_SIGNAL,
        HOLD_SIGNAL,
        RELEASE_SIGNAL,
        MaintenanceEnd,
        MaintenanceRequest,
        MaintenanceWindow,
        workflow_id,
    )
    from workflows.patches import PATCH_EXTEND_HELD, PATCH_IDLE_EXIT

MAX_WINDOW = timedelta(days=7)
FIRST_WINDOW_WAIT = timedelta(minutes=1)


@workflow.defn(name="Maintenance")
class MaintenanceWorkflow:
    @workflow.init
    def __init__(self, request: MaintenanceRequest) -> None:
        self.policy = request.policy
        self.window: MaintenanceWindow | None = None
        self.held: list[str] = []
        self.revision = 0
        self.beginning = 0
        """Starts under way (loading the policy)."""

    @workflow.run
    async def run(self, request: MaintenanceRequest) -> MaintenanceWindow | None:
        if workflow.patched(PATCH_IDLE_EXIT):
            while self.window is None:
                try:
                    await workflow.wait_condition(
                        lambda: self.window is not None, timeout=FIRST_WINDOW_WAIT, timeout_summary="waiting for the first window"
                    )
                except TimeoutError:
                    if self.window is None and self.beginning == 0:
                        return None  # the start was refused (unknown policy, too long): nothing to keep
        else:
            await workflow.wait_condition(lambda: self.window is not None)
        while await self._changed_before_the_end():
            pass  # extended or ended early: wait for the window's new end
        # Over: every incident held meanwhile pages its tier now.
        for key in self.held:
            try:
                await workflow.get_external_workflow_handle(workflow_id(key)).signal(RELEASE_SIGNAL)
            except Exception:  # resolved and closed during the window: nothing to page
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self.window is not None
        return self.window

    async def _changed_before_the_end(self) -> bool:
        """Wait for the window's end; True when it changed before (extended, ended early)."""
        window, seen = self.window, self.revision
        assert window is not None
        timeout = window.until - workflow.now()
        if timeout <= timedelta(0) or window.ended_by:
            return False
        try:
            summary = f"maintenance of {window.policy} until {window.until:%H:%M UTC}"
            await workflow.wait_condition(lambda: self.revision != seen, timeout=timeout, timeout_summary=summary)
        except TimeoutError:
            return False
        return True

    @workflow.update
    async def begin(self, request: MaintenanceRequest) -> MaintenanceWindow:
        """Start a window, or extend the one on (a window runs until the later end)."""
        self.beginning += 1
        try:
            return await self._begin(request)
        finally:
            self.beginning -= 1

    async def _begin(self, request: MaintenanceRequest) -> MaintenanceWindow:
        try:  # a window for a policy that does not exist would hold nothing, silently
            await lookups.policy(request.policy, local=False)
        except ActivityError as err:
            raise Rejected(reason(err), field="policy") from None
        now = workflow.now()
        until = now + request.duration
        if self.window is not None and self.window.until > until:
            until = self.window.until
        extended = self.window is not None and until > self.window.until
        self.window = MaintenanceWindow(
            policy=request.policy, since=self.window.since if self.window else now, until=until, by=request.by, reason=request.reason
        )
        self.revision += 1
        window = self.window
        if extended and self.held and workflow.patched(PATCH_EXTEND_HELD):
            # The incidents held so far wait for the window's end: tell them it moved.
            for key in list(self.held):
                try:
                    await workflow.get_external_workflow_handle(workflow_id(key)).signal(EXTEND_SIGNAL, until)
                except Exception:  # resolved and closed meanwhile
                    pass
        return window

    @begin.validator
    def _validate_begin(self, request: MaintenanceRequest) -> None:
        if not timedelta(0) < request.duration <= MAX_WINDOW:
            raise Rejected(
                f"a maintenance window of {format_duration(request.duration)}: give between 1s and "
                f"{format_duration(MAX_WINDOW)}, e.g. --for 2h",
                field="for",
            )
        if self.window is not None and self.window.ended_by:
            raise Rejected("this window has just ended: start a new one in a moment")

    @workflow.update
    def end(self, request: MaintenanceEnd) -> MaintenanceWindow:
        """End the window early: held incidents page at once."""
        assert self.window is not None
        self.window = self.window.model_copy(update={"until": workflow.now(), "ended_by": request.by})
        self.revision += 1
        return self.window

    @end.validator
    def _validate_end(self, request: MaintenanceEnd) -> None:
        if self.window is None or self.window.ended_by:
            raise Rejected(f"no maintenance window is on for policy {self.policy!r}")

    @workflow.signal(name=HOLD_SIGNAL)
    def hold(self, key: str) -> None:
        """An incident opened during the window, waiting to page when it ends."""
        if key not in self.held:
            self.held.append(key)

    @workflow.query
    def current(self) -> MaintenanceWindow | None:
        if self.window is None:
            return None
        return self.window.model_copy(update={"held": list(self.held)})

