"""The SDK's own markers in a recorded history: ``workflow.patched`` markers (their patch id) and
local activities (their activity type; the result is the marker's other detail)."""

from __future__ import annotations

import json
from typing import Any

from temporalio.client import WorkflowHistory


def _marker(event: Any, name: str, detail: str) -> Any:
    """What a marker event called ``name`` records under ``detail`` (decoded), or None for any
    other event."""
    if not event.HasField("marker_recorded_event_attributes"):
        return None
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != name:
        return None
    return json.loads(attributes.details[detail].payloads[0].data)


def patch_id(event: Any) -> str | None:
    """The patch a ``workflow.patched`` marker records, or None for any other event."""
    recorded = _marker(event, "core_patch", "patch-data")
    return None if recorded is None else str(recorded["id"])


def local_activity_type(event: Any) -> str | None:
    """The activity type of a local activity's marker, or None for any other event."""
    recorded = _marker(event, "core_local_activity", "data")
    return None if recorded is None else str(recorded["activity_type"])


def patches(history: WorkflowHistory, *, before: int | None = None) -> list[str]:
    """The patch ids the history's markers record, in order (only before event ``before``)."""
    return [
        found
        for event in history.events
        if (before is None or event.event_id < before) and (found := patch_id(event)) is not None
    ]


def local_activities(history: WorkflowHistory) -> list[tuple[int, str]]:
    """The local activities the history records: (marker event id, activity type), in order."""
    return [(event.event_id, found) for event in history.events if (found := local_activity_type(event)) is not None]
