"""The absolute deadline chain of an unacknowledged incident, and checking a timeline against it
after a crash, a restart or an outage: each tier's deadline counts from the previous one (or the
trigger), never from when the previous step actually happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.support.timeline import events, timeline_text
from workflows.model import IncidentStatus, TimelineEvent

ON_TIME = timedelta(seconds=3)
"""How late a timer-driven step may be recorded while a worker is running, on a shared 2-core
CI machine (the e2e tests allow the same)."""
STICKY_SLACK = timedelta(seconds=10) + ON_TIME
"""After a SIGKILL: the SDK's sticky schedule-to-start timeout, plus ``ON_TIME``."""
STEP_KINDS = ("escalated", "exhausted")


def seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.2f}s"


def steps(status: IncidentStatus) -> list[TimelineEvent]:
    """The timer-driven steps of an unacknowledged incident: escalations, then exhaustion."""
    return events(status, *STEP_KINDS)


Windows = timedelta | Sequence[timedelta]
"""One window for every tier, or each tier's own (tier 1 first; the last one holds for the rest)."""


def tier_window(windows: Windows, tier: int) -> timedelta:
    if isinstance(windows, timedelta):
        return windows
    return windows[min(tier, len(windows)) - 1]


def expected_chain(trigger: datetime, window: Windows, tiers: int) -> list[tuple[str, int, datetime]]:
    """(kind, tier, due_at) of every step of an unacknowledged incident with ``repeat: 0``:
    each deadline counts from the previous one (with one window, step k is due at
    trigger + k × window), never from when the previous step actually happened."""
    chain: list[tuple[str, int, datetime]] = []
    due = trigger
    for tier in range(1, tiers + 1):
        due += tier_window(window, tier)
        chain.append(("escalated", tier + 1, due) if tier < tiers else ("exhausted", tiers, due))
    return chain


@dataclass
class StepCheck:
    """How one incident's steps kept to the chain; lateness of each step recorded."""

    key: str
    lateness: list[timedelta] = field(default_factory=list)
    overdue: list[timedelta] = field(default_factory=list)
    """Lateness of the steps that fell due while nothing ran them."""


def check_chain(
    status: IncidentStatus,
    trigger: datetime,
    window: Windows,
    tiers: int,
    *,
    back_at: datetime,
    first_after: datetime,
    recovery_slack: timedelta,
    until_step: int | None = None,
) -> StepCheck:
    """The incident's steps are exactly the chain (none skipped, none repeated, in order), each
    ``due_at`` exactly on it. A step due before the worker (or the server) was back
    (``back_at``) is recorded after ``first_after`` (nothing ran it before) and at most
    ``recovery_slack`` after ``back_at``; the others at most ``ON_TIME`` after the later of their due time and the
    incident's catching up."""
    chain = expected_chain(trigger, window, tiers)
    if until_step is not None:
        chain = chain[:until_step]
    got = steps(status)
    shown = f"incident {status.key}, triggered {trigger:%H:%M:%S.%f}:\n{timeline_text(status)}"
    assert [(e.kind, e.tier, e.due_at) for e in got[: len(chain)]] == chain, (
        f"the steps are not the absolute chain (each deadline from the previous one), or one was skipped or repeated\n{shown}"
    )
    assert len(got) == len(chain) or until_step is not None, f"more steps than the policy has\n{shown}"
    assert [e.at for e in got] == sorted(e.at for e in got), f"steps out of order\n{shown}"
    check = StepCheck(status.key)
    caught_up: datetime | None = None
    for event in got[: len(chain)]:
        assert event.due_at is not None
        late = event.at - event.due_at
        assert late >= timedelta(0), f"{event.kind} to tier {event.tier} before it was due\n{shown}"
        check.lateness.append(late)
        if event.due_at < back_at:
            assert event.at >= first_after, f"a step was recorded while nothing could have run it\n{shown}"
            assert event.at <= back_at + recovery_slack, (
                f"an overdue step waited {seconds(event.at - back_at)} after the worker or server was back\n{shown}"
            )
            check.overdue.append(late)
            caught_up = max(caught_up or event.at, event.at)
        else:
            allowed = max(event.due_at, caught_up or event.due_at) + ON_TIME
            assert event.at <= allowed, f"{event.kind} to tier {event.tier} {seconds(late)} late\n{shown}"
    return check
