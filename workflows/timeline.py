"""The timeline: the ordered record of what happened to an incident, and how much of it a new
run carries (continue-as-new), as a pure function."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

EventKind = Literal[
    "triggered",
    "repeated",
    "notified",
    "notify_failed",
    "reminded",
    "escalated",
    "skipped",
    "exhausted",
    "acknowledged",
    "ack_expired",
    "noted",
    "reassigned",
    "snoozed",
    "woke",
    "held",
    "released",
    "waiting",
    "resumed",
    "priority_changed",
    "sla_breached",
    "sla_reason",
    "unreachable",
    "folded",
    "resolved",
]


class TimelineEvent(BaseModel):
    """One step of an incident's story: what happened, when, at which tier, to or by whom."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    kind: EventKind
    tier: int | None = None
    who: str | None = None
    detail: str = ""
    channel: str | None = None
    due_at: datetime | None = None
    """When the step was due, for the steps a timer drives (reminders, escalations, SLA)."""
    policy: str | None = None
    """The policy the incident is under from this event on (on triggered and reassigned)."""

CARRIED_TIMELINE_LIMIT = 3_000
"""Timeline entries a new run carries at most (about 150 bytes each): an incident open for
months with hourly reminders would otherwise carry megabytes, and past Temporal's 2 MB payload
limit it could neither continue nor close."""
ROUTINE_KINDS = frozenset({"notified", "notify_failed", "reminded", "repeated", "skipped"})
"""Entries that can be folded into a count; decisions, acks, notes and the rest are always kept."""


def fold_timeline(timeline: list[TimelineEvent], limit: int = CARRIED_TIMELINE_LIMIT) -> list[TimelineEvent]:
    """The timeline with at most ``limit`` entries where it can be done: the oldest routine
    entries are folded into one ``folded`` entry saying how many of each there were and when.
    Every other entry is kept, whatever the count."""
    if len(timeline) <= limit:
        return list(timeline)
    excess = len(timeline) - limit + 1  # room for the summary entry
    folded: list[TimelineEvent] = []
    kept: list[TimelineEvent] = []
    place: int | None = None
    for event in timeline:
        if len(folded) < excess and event.kind in ROUTINE_KINDS:
            if place is None:
                place = len(kept)
            folded.append(event)
        else:
            kept.append(event)
    if place is None:
        return list(timeline)
    counts: dict[str, int] = {}
    for event in folded:
        counts[event.kind] = counts.get(event.kind, 0) + 1
    what = ", ".join(f"{kind} x{count}" for kind, count in counts.items())
    summary = TimelineEvent(
        at=folded[0].at,
        kind="folded",
        detail=(
            f"{len(folded)} routine entries from {folded[0].at:%Y-%m-%d %H:%M} to {folded[-1].at:%Y-%m-%d %H:%M} UTC "
            f"({what}) folded to keep the incident within Temporal's limits; each is in the history of "
            "the run that recorded it, and escalate review shows them all"
        ),
    )
    return [*kept[:place], summary, *kept[place:]]
