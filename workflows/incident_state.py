"""What an incident knows: its state as one model, and the state's changes as methods.

The incident workflow holds one ``IncidentState`` and hands it whole to the next run when a
long-lived incident continues as new, so that the incident tells one story across runs. Every
change here is pure: the moment it happens at is passed in, and nothing here talks to Temporal.
The field names are those of the earlier ``CarriedState``, so histories recorded with it decode.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows import decisions
from workflows.decisions import AckClock, Pause, TierClock
from workflows.durations import format_duration, format_time
from workflows.policy import PolicySnapshot, Windows
from workflows.timeline import TimelineEvent, fold_timeline

Status = Literal["triggered", "acknowledged", "snoozed", "waiting", "resolved"]

REPEATS_SHARE_AN_ENTRY = timedelta(minutes=1)
COUNTED_REQUESTS_KEPT = 1_000
"""Ids of the latest triggers counted, so that a starter's retried trigger is counted once."""


class IncidentStatus(BaseModel):
    """The status JSON of the contract (``escalate status --json``, ``GET /v1/incidents/{key}``)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    policy: str
    priority: str
    status: Status
    tier: int
    tier_name: str
    owners: list[str]
    acknowledged_by: str | None
    resolve_by: datetime | None
    sla_breached: bool
    timeline: list[TimelineEvent]
    sla_reason: str | None = None
    summary: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    reporter: str | None = None
    tier_count: int = 0
    round: int = 0
    exhausted: bool = False
    next_reminder_at: datetime | None = None
    next_escalation_at: datetime | None = None
    snoozed_until: datetime | None = None
    waiting_since: datetime | None = None
    """Set while waiting on the customer: escalation and the SLA clock are stopped."""
    held_until: datetime | None = None
    """Set while the policy's maintenance window holds this incident back: it pages nobody."""
    ack_expires_at: datetime | None = None
    """When the acknowledgement runs out (policies with ack_timeout), unless resolved first."""
    occurrences: int = 1
    triggered_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class IncidentState(BaseModel):
    """Everything an incident knows. ``state`` is its status; ``snapshot`` the policy it is under
    (None only while a new incident loads it)."""

    model_config = ConfigDict(extra="forbid")

    priority: str
    triggered_at: datetime
    snapshot: PolicySnapshot | None = None
    policies_in_force: list[PolicySnapshot] = Field(default_factory=list)
    """Every policy this incident was under, in order (the review shows them)."""
    state: Status = "triggered"
    tier: int = 1
    round: int = 0
    clock: TierClock | None = None
    """The running timers of the tier being paged; None once acknowledged, snoozed or exhausted."""
    exhausted: bool = False
    resolve_by: datetime | None = None
    sla_breached: bool = False
    sla_reason: str | None = None
    snoozed_until: datetime | None = None
    pause: Pause | None = None
    """Set while waiting on the customer: the escalation and SLA clocks are stopped."""
    paused_clock: TierClock | None = None
    status_before_wait: Status = "triggered"
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    ack_clock: AckClock | None = None
    occurrences: int = 1
    counted_requests: list[str] = Field(default_factory=list)
    """Ids of the triggers counted lately: a starter's retried request is counted once."""
    tried: list[str] = Field(default_factory=list)
    """The tiers paged so far without an ack, as messages name them."""
    timeline: list[TimelineEvent] = Field(default_factory=list)
    notification_count: int = 0
    paged_people: list[str] = Field(default_factory=list)
    """Everyone paged so far, in order: they are told the outcome."""
    tier_people_now: list[str] = Field(default_factory=list)
    """Who the current tier's page went to (schedules resolved when it was paged)."""
    skipped_in_a_row: int = 0
    runs: int = 1
    held_until: datetime | None = None
    """Set while the policy's maintenance window holds a new incident back."""
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None

    # ── reading ──────────────────────────────────────────────────────────────────────────────

    @property
    def policy(self) -> PolicySnapshot:
        assert self.snapshot is not None, "policy not loaded yet"
        return self.snapshot

    @property
    def windows(self) -> Windows:
        return self.policy.policy.windows_for(self.priority)

    def tier_windows(self, tier: int) -> Windows:
        """The windows of one tier at the current priority (a tier may have its own window)."""
        return self.policy.policy.windows_for_tier(self.priority, tier)

    def running_sla(self) -> datetime | None:
        """The resolution deadline, unless its clock is stopped (waiting on the customer)."""
        return None if self.pause is not None else self.resolve_by

    def next_wakeup(self) -> datetime | None:
        return decisions.next_wakeup(self.clock, self.running_sla(), self.sla_breached, self.snoozed_until, self.ack_clock)

    def held_so_far(self, now: datetime) -> timedelta:
        return now - self.clock.started_at if self.clock is not None else timedelta(0)

    def next_position(self, clock: TierClock) -> decisions.Position | None:
        policy = self.policy.policy
        rounds = policy.repeat_rounds
        if rounds is None and self.sla_breached:
            rounds = clock.round  # repeat: forever ends with the resolution SLA
        return decisions.next_position(clock.tier, clock.round, self.policy.tier_count, rounds, policy.repeat_from_tier)

    def acknowledged_before(self) -> bool:
        """Whether an acknowledgement before the latest timeline entry is recorded."""
        return any(event.kind == "acknowledged" for event in self.timeline[:-1])

    def notes_written(self) -> int:
        return sum(len(event.detail) for event in self.timeline if event.kind == "noted")

    def owners(self) -> list[str]:
        if self.acknowledged_by is not None:
            return [self.acknowledged_by]
        return list(self.tier_people_now) if self.snapshot is not None else []

    # ── changes ──────────────────────────────────────────────────────────────────────────────

    def record(self, event: TimelineEvent) -> None:
        self.timeline.append(event)

    def take_policy(self, snapshot: PolicySnapshot) -> None:
        self.snapshot = snapshot
        self.policies_in_force.append(snapshot)

    def start_tier(self, tier: int, *, round: int, at: datetime) -> None:
        self.tier, self.round = tier, round
        self.clock = decisions.clock_for_tier(tier, round, at, self.tier_windows(tier), self.policy.calendar)

    def skip_tier(self) -> None:
        """The tier that just started pages nobody: its window ends as it begins."""
        assert self.clock is not None
        self.skipped_in_a_row += 1
        self.tier_people_now = []
        self.clock = self.clock.model_copy(update={"deadline": self.clock.started_at, "remind_at": None})

    def note_paged(self, person: str) -> None:
        if person not in self.paged_people:
            self.paged_people.append(person)

    def mark_reminded(self) -> TierClock:
        assert self.clock is not None
        self.clock = self.clock.model_copy(update={"reminded": True})
        return self.clock

    def retrigger(self) -> None:
        """Back to paging (escalated, reassigned, woken, or an acknowledgement that ran out):
        nobody holds it, nothing is snoozed, and the tier has a window once more."""
        self.state = "triggered"
        self.acknowledged_by = None
        self.ack_clock = None
        self.snoozed_until = None
        self.exhausted = False

    def exhaust(self) -> None:
        self.clock = None
        self.exhausted = True

    def acknowledge(self, by: str, at: datetime) -> None:
        if self.state == "waiting":
            # Still waiting on the customer; when it resumes, nothing escalates any more.
            self.status_before_wait, self.paused_clock = "acknowledged", None
        else:
            self.state = "acknowledged"
        self.acknowledged_by, self.acknowledged_at = by, at
        self.ack_clock = decisions.ack_clock(at, self.windows)
        self.clock = None
        self.snoozed_until = None

    def remind_acker(self) -> AckClock:
        assert self.ack_clock is not None
        self.ack_clock = self.ack_clock.model_copy(update={"reminded": True})
        return self.ack_clock

    def snooze(self, until: datetime) -> None:
        self.state = "snoozed"
        self.clock = None
        self.ack_clock = None
        self.snoozed_until = until

    def wait_on_customer(self, at: datetime) -> None:
        """Stop the escalation and SLA clocks, keeping what was left of each."""
        self.pause = decisions.pause_clocks(
            self.clock, self.resolve_by, self.sla_breached, at, self.tier_windows(self.tier), self.policy.calendar
        )
        self.paused_clock = self.clock
        self.status_before_wait = self.state
        self.state = "waiting"
        self.ack_clock = None  # waiting on the customer is not the acker's delay
        self.clock = None

    def end_wait(self, at: datetime) -> None:
        """Start the stopped clocks again with the time they had left."""
        assert self.pause is not None
        clock, resolve_by = decisions.resume_clocks(
            self.pause, self.paused_clock, at, self.tier_windows(self.tier), self.policy.calendar
        )
        if self.pause.sla_left is not None:  # else there is none, or it was breached already
            self.resolve_by = resolve_by
        self.state = self.status_before_wait
        self.clock = clock if self.state == "triggered" else None
        if self.state == "acknowledged":
            self.ack_clock = decisions.ack_clock(at, self.windows)
        self.pause, self.paused_clock = None, None

    def close(self, by: str, resolution: str, at: datetime) -> None:
        self.ack_clock = None
        self.state = "resolved"
        self.pause, self.paused_clock = None, None
        self.resolved_by, self.resolved_at, self.resolution = by, at, resolution
        self.clock = None
        self.snoozed_until = None

    def count_occurrences(self, count: int, *, at: datetime) -> int:
        """Count repeat occurrences; a burst of them within a minute shares one timeline entry:
        the latest "repeated" entry, if that recent, is taken out and its count returned with
        these (the caller records the entry anew)."""
        self.occurrences += count
        last = self.timeline[-1] if self.timeline else None
        if last is not None and last.kind == "repeated" and at - last.at < REPEATS_SHARE_AN_ENTRY:
            self.timeline.pop()
            return count + _repeats_in(last.detail)
        return count

    def first_time(self, request_id: str | None) -> bool:
        """Whether a trigger is new (and remember it): a starter's retried request is counted once."""
        if not request_id:
            return True
        if request_id in self.counted_requests:
            return False
        self.counted_requests = [*self.counted_requests[-(COUNTED_REQUESTS_KEPT - 1) :], request_id]
        return True

    def for_next_run(self) -> IncidentState:
        """The state a new run of this incident starts from: the timeline folded to what a run
        may carry (each folded entry stays in the history of the run that recorded it)."""
        return self.model_copy(update={"timeline": fold_timeline(self.timeline), "runs": self.runs + 1}, deep=True)

    # ── wording ──────────────────────────────────────────────────────────────────────────────

    def tier_phrase(self, tier: int, *, held: timedelta) -> str:
        """A tier as messages list it among the tiers tried: "tier 1 L1 support (erin) for 15m"."""
        people = ", ".join(self.tier_people_now if tier == self.tier else self.policy.people_of(tier)) or "nobody"
        return f"tier {tier} {self.policy.tier_name(tier)} ({people}) for {format_duration(held)}"

    def next_tier_phrase(self) -> str:
        """Where it goes if nobody acknowledges in time: " to tier 3 (L3 head of payments)"."""
        target = self.next_position(self.clock) if self.clock is not None else None
        if target is None:
            return " to the manager" if self.policy.policy.on_exhausted == "notify_manager" else " nowhere (every round is over)"
        return f" to tier {target.tier} ({self.policy.tier_name(target.tier)})"

    def details(self) -> str:
        """What the Temporal UI shows as the current details: "[P1] tier 2 of 3 (L2): waiting
        for an ack until …"."""
        where = f"tier {self.tier} of {self.policy.tier_count} ({self.policy.tier_name(self.tier)})"
        if self.state == "triggered" and self.clock is not None:
            now = f"waiting for an ack until {format_time(self.clock.deadline)}"
        elif self.state == "triggered" and self.exhausted:
            now = "every tier was paged; nobody acknowledged"
        elif self.state == "acknowledged":
            now = f"acknowledged by {self.acknowledged_by}"
        elif self.state == "snoozed":
            now = f"snoozed until {format_time(self.snoozed_until)}"
        elif self.state == "waiting":
            now = "waiting on the customer (clocks stopped)"
        else:
            now = f"resolved by {self.resolved_by}"
        sla = ""
        if self.sla_breached:
            sla = "; SLA breached"
        elif self.resolve_by is not None and self.state != "resolved":
            sla = f"; resolve by {format_time(self.resolve_by)}"
        return f"[{self.priority}] {where}: {now}{sla}"

    def wait_summary(self, moment: datetime | None) -> str:
        """What the incident's timer is for, as the Temporal UI shows it beside the timer."""
        clock, acknowledgement = self.clock, self.ack_clock
        if moment is None:
            return "waiting for a responder"
        if clock is not None and not clock.reminded and moment == clock.remind_at:
            return f"tier {clock.tier} reminder at {format_time(moment)}"
        if clock is not None and moment == clock.deadline:
            return f"tier {clock.tier} ack window until {format_time(moment)}"
        if moment == self.snoozed_until:
            return f"snoozed until {format_time(moment)}"
        if acknowledgement is not None and not acknowledgement.reminded and moment == acknowledgement.remind_at:
            return f"remind {self.acknowledged_by} of the acknowledgement at {format_time(moment)}"
        if acknowledgement is not None and moment == acknowledgement.expires_at:
            return f"{self.acknowledged_by}'s acknowledgement runs out at {format_time(moment)}"
        return f"resolution SLA until {format_time(moment)}"

    def status(
        self, *, key: str, policy: str, summary: str, details: dict[str, Any], reporter: str | None, since: int = 0
    ) -> IncidentStatus:
        """The status JSON (``policy`` names the policy asked for while none is loaded). Update
        results carry only the timeline events the action added (``since``): they are stored in
        the history, and a whole timeline in each of them would make a long incident's history
        grow with the square of its length (see docs/adr/0004-update-results-carry-new-events-only.md)."""
        snapshot, clock = self.snapshot, self.clock
        return IncidentStatus(
            key=key,
            policy=snapshot.name if snapshot else policy,
            priority=self.priority,
            status=self.state,
            tier=self.tier,
            tier_name=snapshot.tier_name(self.tier) if snapshot else "",
            owners=self.owners(),
            acknowledged_by=self.acknowledged_by,
            resolve_by=self.resolve_by,
            sla_breached=self.sla_breached,
            sla_reason=self.sla_reason,
            timeline=self.timeline[since:],
            summary=summary,
            details=details,
            reporter=reporter,
            tier_count=snapshot.tier_count if snapshot else 0,
            round=self.round,
            exhausted=self.exhausted,
            next_reminder_at=clock.remind_at if clock and not clock.reminded else None,
            next_escalation_at=clock.deadline if clock else None,
            snoozed_until=self.snoozed_until,
            waiting_since=self.pause.since if self.pause else None,
            ack_expires_at=self.ack_clock.expires_at if self.ack_clock else None,
            held_until=self.held_until,
            occurrences=self.occurrences,
            triggered_at=self.triggered_at,
            resolved_at=self.resolved_at,
            resolved_by=self.resolved_by,
            resolution=self.resolution,
        )


def _repeats_in(detail: str) -> int:
    """The count of a "repeated N times (total T): …" timeline entry."""
    words = detail.split(" ", 2)
    return int(words[1]) if len(words) > 2 and words[0] == "repeated" and words[1].isdigit() else 1
