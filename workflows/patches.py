"""Behaviour added while incidents may be open, each behind a ``workflow.patched`` id, so that
histories recorded before it replay unchanged (see docs/adr/0001-baseline-marker.md)."""

from __future__ import annotations

from temporalio import workflow

PATCH_REPORTER_UPDATES = "reporter-updates"
PATCH_RESOLUTION_FEEDBACK = "resolution-feedback"
PATCH_UNREACHABLE_TIER = "unreachable-tier-notice"
PATCH_SEARCH_ATTRIBUTES = "search-attributes"
PATCH_MAINTENANCE = "maintenance-windows"
PATCH_LOCAL_LOOKUPS = "local-lookups"
PATCH_BASELINE = "baseline-1"
"""Incidents opened from here on take the new path of every patch above with this one marker:
each patch marker also upserts the TemporalChangeVersion search attribute, a visibility write
per patch per incident. A patch added later is checked on its own, as before."""

PATCH_EXTEND_HELD = "maintenance-extend-held"
"""Maintenance: extending a window tells the incidents it holds."""
PATCH_IDLE_EXIT = "maintenance-idle-exit"
"""Maintenance: a start whose first window was refused ends, rather than wait for a window for ever."""


class Patches:
    """``workflow.patched(patch)`` for an incident's run, or True without a marker of its own for
    a run that began on PATCH_BASELINE: opened on it by the starter (its request says so; no
    marker at all), or else at the run's first patch check (one marker, which replays at the same
    point)."""

    def __init__(self, baseline: str | None) -> None:
        self._opened_on_baseline = baseline == PATCH_BASELINE
        self._since_baseline: bool | None = None

    def on(self, patch: str) -> bool:
        if self._since_baseline is None:
            self._since_baseline = self._opened_on_baseline or workflow.patched(PATCH_BASELINE)
        return self._since_baseline or workflow.patched(patch)
