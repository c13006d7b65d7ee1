"""Reading an incident's timeline: as the Python API gives it (``IncidentStatus``) or as the
JSON of the CLI and the HTTP API (``{"timeline": [{"at", "kind", "tier", "who", "detail"}]}``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tests.support.clock import local
from workflows.model import IncidentStatus, TimelineEvent

ON_TIME = timedelta(seconds=1)
"""How late a step may be acted on where the time-skipping server fires timers exactly."""


def events(source: IncidentStatus | Sequence[TimelineEvent], *kinds: str, who: str | None = None) -> list[TimelineEvent]:
    """The events of these kinds (all, without kinds), in order; only ``who``'s if given."""
    timeline = source.timeline if isinstance(source, IncidentStatus) else source
    return [e for e in timeline if (not kinds or e.kind in kinds) and (who is None or e.who == who)]


def json_events(status: dict[str, Any], *kinds: str, who: str | None = None) -> list[dict[str, Any]]:
    """``events`` of a status JSON."""
    return [e for e in status["timeline"] if (not kinds or e["kind"] in kinds) and (who is None or e["who"] == who)]


def json_kinds(status: dict[str, Any]) -> list[str]:
    """The kind of each event of a status JSON, in order."""
    return [event["kind"] for event in status["timeline"]]


def told(status: IncidentStatus, what: str, *, tier: int | None = None, after: datetime | None = None) -> list[str]:
    """Who got a message of kind ``what`` (page, reminder, escalated, sla_breach, …), sorted;
    only at ``tier``, or at or after ``after``, if given."""
    return sorted(
        event.who or ""
        for event in events(status, "notified")
        if event.detail.startswith(f"{what} via ")
        and (tier is None or event.tier == tier)
        and (after is None or event.at >= after)
    )


def assert_on_time(event: TimelineEvent, due: datetime, within: timedelta = ON_TIME) -> None:
    """Due exactly when the policy says (absolute deadlines), and acted on within ``within``."""
    assert event.due_at == due, f"{event.kind} due {local(event.due_at)}, expected {local(due)}: {event.detail}"
    assert timedelta(0) <= event.at - due < within, f"{event.kind} late by {event.at - due}"


def timeline_text(source: IncidentStatus | dict[str, Any]) -> str:
    """The timeline, one line an event, for a failure message."""
    if isinstance(source, IncidentStatus):
        return "\n".join(
            f"  {e.at:%H:%M:%S.%f}  {e.kind:<14} t{e.tier}  {e.who or '':<5} "
            f"{'due ' + format(e.due_at, '%H:%M:%S.%f') if e.due_at else ''} {e.detail}"
            for e in source.timeline
        )
    return "\n".join(
        f"  {e['at']}  {e['kind']:<14} t{e['tier']}  {e.get('who') or '':<6} {e['detail']}" for e in source["timeline"]
    )


# ── the status JSON of the contract (CLI ``--json``, HTTP) ───────────────────────────────────

CONTRACT_KEYS = {
    "key", "policy", "priority", "status", "tier", "tier_name", "owners",
    "acknowledged_by", "resolve_by", "sla_breached", "timeline",
}
EVENT_KEYS = {"at", "kind", "tier", "who", "detail"}
