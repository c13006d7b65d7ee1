"""The story of one incident, from trigger to resolution.

One workflow per incident (id ``incident-<key>``). It snapshots its escalation policy, pages
tier 1, reminds before each window ends, escalates tier by tier when nobody acknowledges, and
tells the manager when the policy is exhausted or the resolution SLA is breached. Responders act
through updates; every decision comes from the pure functions of ``workflows.decisions`` and is
recorded in the timeline, so the history replays to exactly why every page went out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import decisions, search
    from workflows.decisions import TierClock
    from workflows.durations import format_duration
    from workflows.metrics import IncidentMetrics
    from workflows.model import (
        EXTEND_SIGNAL,
        LOAD_POLICY_ACTIVITY,
        LOG_CHANNEL,
        MAINTENANCE_ACTIVITY,
        MAX_NOTE,
        MAX_NOTES_TOTAL,
        NOTIFY_ACTIVITY,
        RELEASE_SIGNAL,
        REPORTER,
        AckRequest,
        CarriedState,
        Delivery,
        EscalateRequest,
        EventKind,
        IncidentRequest,
        IncidentStatus,
        MaintenanceWindow,
        MessageKind,
        NoteRequest,
        Notification,
        OccurrenceBatch,
        PolicyRef,
        PriorityRequest,
        ReassignRequest,
        ResolveRequest,
        ResumeRequest,
        SlaReasonRequest,
        SnoozeRequest,
        Status,
        TimelineEvent,
        TriggerResult,
        WaitRequest,
        maintenance_id,
    )
    from workflows.patches import (
        PATCH_BASELINE,
        PATCH_LOCAL_LOOKUPS,
        PATCH_MAINTENANCE,
        PATCH_REPORTER_UPDATES,
        PATCH_RESOLUTION_FEEDBACK,
        PATCH_SEARCH_ATTRIBUTES,
        PATCH_UNREACHABLE_TIER,
    )
    from workflows.policy import ContactPoint, Person, PolicySnapshot, Windows
    from workflows.timeline import fold_timeline

SINGLE_ATTEMPT = RetryPolicy(maximum_attempts=1)
POLICY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=["UnknownPolicy", "InvalidPolicy"],
)
MAX_SNOOZE = timedelta(days=30)
SUMMARY_VERB: dict[str, str] = {
    "page": "page",
    "reminder": "remind",
    "escalated": "page (escalated)",
    "exhausted": "tell the manager (exhausted):",
    "sla_breach": "tell the manager (SLA breached):",
    "unreachable": "tell the manager (tier unreachable):",
    "resolved": "tell the outcome to",
    "customer_update": "update the reporter",
    "ack_reminder": "remind the acker",
}
"""How each kind of message reads in the Temporal UI's event list: "remind erin via email"."""
HISTORY_LIMIT = 10_000
"""Events after which an incident continues as a new run (Temporal's hard limit is 51,200)."""
MAX_TRIED_IN_MESSAGE = 10
"""A message names at most this many of the tiers tried before (the latest, after a count of the
earlier ones): a policy repeating for weeks would otherwise put hundreds in every page, and into
every notification's activity input in the history."""

LOOKUP_FAILED = (ActivityError, ApplicationError)
"""How a failed read reaches the workflow: a queued activity's failure as an ActivityError
wrapping the activity's error, a local activity's as that error itself."""
HOLD_SIGNAL = "hold"
HOLD_FALLBACK_AFTER = timedelta(seconds=5)
"""A held incident releases itself this long after its window's end if the window's own
release has not come by then."""


@dataclass
class TierReach:
    """How the pages of one tier fared, to tell the manager when nobody could be reached."""

    tier: int
    people: int
    done: int = 0
    reached: int = 0
    unreachable: list[str] = field(default_factory=list)


class Rejected(ApplicationError):
    """An action the incident refuses; the message is the reason shown to the responder."""

    def __init__(self, reason: str, *, kind: str = "Rejected", field: str | None = None) -> None:
        # The field of the request at fault, if one is (the HTTP API names it).
        super().__init__(reason, *([field] if field else []), type=kind, non_retryable=True)


@workflow.defn(name="Incident")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, request: IncidentRequest) -> None:
        self.request = request
        self.priority = request.priority
        self.snapshot: PolicySnapshot | None = None
        self.policies_in_force: list[PolicySnapshot] = []
        """Every policy this incident was under, in order (the review shows them)."""
        self.sla_reason: str | None = None
        self.rejection: str | None = None
        self.rejection_field: str | None = None
        self.state: Status = "triggered"
        self.tier = 1
        self.round = 0
        self.clock: TierClock | None = None
        self.exhausted = False
        self.triggered_at: datetime = workflow.now()
        self.resolve_by: datetime | None = None
        self.sla_breached = False
        self.snoozed_until: datetime | None = None
        self.pause: decisions.Pause | None = None
        """Set while waiting on the customer: the escalation and SLA clocks are stopped."""
        self.paused_clock: TierClock | None = None
        self.status_before_wait: Status = "triggered"
        self.acknowledged_by: str | None = None
        self.acknowledged_at: datetime | None = None
        self.ack_clock: decisions.AckClock | None = None
        self.resolved_by: str | None = None
        self.resolved_at: datetime | None = None
        self.resolution: str | None = None
        self.occurrences = 1
        self.counted_requests: list[str] = []
        """Ids of the triggers counted lately: a starter's retried request is counted once."""
        self.tried: list[str] = []
        self.timeline: list[TimelineEvent] = []
        self.paging_round = 0
        self.paged_people: dict[str, None] = {}
        self.tier_people_now: list[str] = []
        """Who the current tier's page went to (schedules resolved when it was paged)."""
        self.skipped_in_a_row = 0
        self.held_until: datetime | None = None
        self.released = False
        self.opened = request.carried is not None
        """True once the new incident has paged its first tier, or been held by maintenance."""
        self.deliveries_in_flight = 0
        self.notification_count = 0
        self.revision = 0
        self.published: search.Values = (
            search.values_of(workflow.info().typed_search_attributes) if request.carried is None else {}
        )
        """The search attributes as the server has them: a new incident's starter sets them with
        the start (``search.at_start``). A continued run publishes its own afresh."""
        self.metrics = IncidentMetrics(workflow.metric_meter())
        self.lock = asyncio.Lock()
        self.runs = 1
        self.since_baseline: bool | None = None
        if request.carried is not None:
            self._restore(request.carried)

    # ── the story ────────────────────────────────────────────────────────────────────────────

    @workflow.run
    async def run(self, request: IncidentRequest) -> IncidentStatus:
        if request.carried is None:
            if not await self._take_policy_snapshot(request.policy):
                if self.published:  # a refused start is no incident: not one the UI lists as open
                    workflow.upsert_search_attributes([key.value_unset() for key in search.ALL if key.name in self.published])
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise ApplicationError(self.rejection or "rejected", type="IncidentRejected", non_retryable=True)

            self._record(
                "triggered", tier=1, who=request.reporter, detail=f"[{self.priority}] {request.summary}", policy=self.policy.name
            )
            self.metrics.opened(self.policy.name, self.priority)
            starts = self.triggered_at
            if self._patched(PATCH_MAINTENANCE):
                starts = await self._hold_for_maintenance()
            self.opened = True
            if self.state == "triggered" and self.clock is None:
                self.resolve_by = decisions.resolve_by(starts, self.windows, self.policy.calendar)
                self._start_tier(self.tier, round=0, at=starts)
                self._page_or_skip("page")
                self._update_reporter("customer_update")

        while self.state != "resolved":
            if self._time_for_a_new_run():
                self._publish()
                workflow.continue_as_new(self.request.model_copy(update={"carried": self._carry()}))
            await self._wait_for_change_until(self._next_wakeup())
            now = workflow.now()
            if self.snoozed_until is not None and self.snoozed_until <= now:
                self._wake_from_snooze()
            if self.ack_clock is not None and not self.ack_clock.reminded and self.ack_clock.remind_at <= now:
                self._remind_acker()
            if self.ack_clock is not None and self.ack_clock.expires_at <= now:
                self._expire_acknowledgement()
            if self.clock is not None and decisions.reminder_due(self.clock, now):
                self._remind()
            while self.clock is not None and decisions.window_ended(self.clock, now):
                self._escalate_on_timeout()
            if decisions.sla_breached(self._running_sla(), self.sla_breached, now):
                self._breach_sla()

        await workflow.wait_condition(workflow.all_handlers_finished)
        self._publish()
        # Attempts already on the wire report back before the incident closes.
        await workflow.wait_condition(lambda: self.deliveries_in_flight == 0)
        return self._status()

    async def _hold_for_maintenance(self) -> datetime:
        """Opened during the policy's maintenance window: recorded, but nobody is paged until the
        window ends (or is ended early). Its clocks start then; the moment is returned."""
        try:
            window: MaintenanceWindow | None = await self._look_up(
                MAINTENANCE_ACTIVITY,
                PolicyRef(name=self.policy.name),
                MaintenanceWindow,
                f"maintenance window of {self.policy.name}?",
            )
        except LOOKUP_FAILED as err:
            # Paging when in doubt: an incident held by mistake is worse than one paged during
            # a window.
            self._record(
                "noted",
                tier=self.tier,
                detail=f"could not tell whether {self.policy.name} is in maintenance ({_reason(err)}): paging as usual",
            )
            return self.triggered_at
        if window is None or window.until <= workflow.now():
            return self.triggered_at
        self.held_until = window.until
        self.opened = True  # the starter learns it is held, rather than wait for the window
        self._record(
            "held",
            tier=self.tier,
            who=window.by,
            detail=f"opened during maintenance of {window.policy} until {_clock_time(window.until)} ({window.reason}): nobody paged until it ends",
        )
        try:
            await workflow.get_external_workflow_handle(maintenance_id(self.policy.name)).signal(HOLD_SIGNAL, self.request.key)
        except Exception:
            pass  # the window closed meanwhile: it ends by its time below anyway
        self._changed()
        while self.held_until is not None:
            # Released by the maintenance workflow when the window ends (on time, early, or
            # later when extended: that moves held_until). The timer is the fallback should that
            # signal never come; it runs a little past the end so that the two never race.
            until = self.held_until
            try:
                await workflow.wait_condition(
                    lambda: self.released or self.state == "resolved" or self.held_until != until,
                    timeout=until - workflow.now() + HOLD_FALLBACK_AFTER,
                    timeout_summary=f"held by maintenance until {_clock_time(until)}",
                )
            except TimeoutError:
                break
            if self.released or self.state == "resolved":
                break
        self.held_until = None
        released = workflow.now()
        if self.state != "resolved":
            self._record(
                "released",
                tier=self.tier,
                detail="the maintenance window is over: "
                + ("paging starts now" if self.state == "triggered" else f"nothing to page ({self.state})"),
            )
        return released

    @workflow.signal(name=RELEASE_SIGNAL)
    def maintenance_over(self) -> None:
        self.released = True

    @workflow.signal(name=EXTEND_SIGNAL)
    def maintenance_extended(self, until: datetime) -> None:
        """The window holding this incident was extended: it stays held until the new end."""
        if self.held_until is not None and not self.released and until > self.held_until:
            self.held_until = until
            self._record("held", tier=self.tier, detail=f"the maintenance window was extended until {_clock_time(until)}: still nobody paged")
            self._changed()

    async def _take_policy_snapshot(self, name: str) -> bool:
        try:
            self.snapshot = await self._fetch_policy(name)
            self.snapshot.policy.windows_for(self.priority)
            self.policies_in_force.append(self.snapshot)
        except LOOKUP_FAILED as err:
            self.rejection = _reason(err)
            self.rejection_field = "policy"
        except ValueError as err:
            self.rejection = str(err)
            self.rejection_field = "priority"
        if self.rejection is not None:
            self.snapshot = None
            workflow.logger.warning("incident rejected: %s", self.rejection)
            return False
        return True

    async def _fetch_policy(self, name: str) -> PolicySnapshot:
        return await self._look_up(LOAD_POLICY_ACTIVITY, PolicyRef(name=name), PolicySnapshot, f"load policy {name}")

    async def _look_up(self, activity: str, ref: PolicyRef, result_type: type, summary: str) -> Any:
        """A read the incident's next step depends on (its policy, a maintenance window). Run as
        a local activity, on the worker already running the incident's task: the incident opens
        and pages tier 1 in one workflow task, instead of one task and one task-queue round trip
        per read. Incidents opened before that kept the queued activities."""
        options: dict[str, Any] = {
            "result_type": result_type,
            "start_to_close_timeout": timedelta(seconds=30),
            "retry_policy": POLICY_RETRY,
            "summary": summary,
        }
        if self._patched(PATCH_LOCAL_LOOKUPS):
            return await workflow.execute_local_activity(activity, ref, **options)
        return await workflow.execute_activity(activity, ref, **options)

    async def _wait_for_change_until(self, moment: datetime | None) -> None:
        """Sleep until ``moment`` or until a responder changes something, whichever is first."""
        self._publish()
        seen = self.revision
        timeout = None if moment is None else moment - workflow.now()
        if timeout is not None and timeout <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                lambda: self.revision != seen or self.state == "resolved" or self._time_for_a_new_run(),
                timeout=timeout,
                timeout_summary=self._wait_summary(moment),
            )
        except TimeoutError:
            pass

    def _time_for_a_new_run(self) -> bool:
        """Time for a fresh run (the same incident, its state carried over): before the history
        nears Temporal's limits, or when the server suggests it; and only between steps, with no
        notification on the wire and no responder's action half done."""
        info = workflow.info()
        limit = self.request.history_limit or HISTORY_LIMIT
        long = info.is_continue_as_new_suggested() or info.get_current_history_length() >= limit
        return long and self.deliveries_in_flight == 0 and workflow.all_handlers_finished()

    def _carry(self) -> CarriedState:
        assert self.snapshot is not None
        return CarriedState(
            priority=self.priority,
            snapshot=self.snapshot,
            policies_in_force=self.policies_in_force,
            state=self.state,
            tier=self.tier,
            round=self.round,
            clock=self.clock,
            exhausted=self.exhausted,
            triggered_at=self.triggered_at,
            resolve_by=self.resolve_by,
            sla_breached=self.sla_breached,
            sla_reason=self.sla_reason,
            snoozed_until=self.snoozed_until,
            pause=self.pause,
            paused_clock=self.paused_clock,
            status_before_wait=self.status_before_wait,
            acknowledged_by=self.acknowledged_by,
            acknowledged_at=self.acknowledged_at,
            occurrences=self.occurrences,
            counted_requests=self.counted_requests,
            tried=self.tried,
            timeline=fold_timeline(self.timeline),
            notification_count=self.notification_count,
            paged_people=list(self.paged_people),
            runs=self.runs + 1,
            ack_clock=self.ack_clock,
            tier_people_now=self.tier_people_now,
            skipped_in_a_row=self.skipped_in_a_row,
        )

    def _restore(self, carried: CarriedState) -> None:
        self.priority = carried.priority
        self.snapshot = carried.snapshot
        self.policies_in_force = list(carried.policies_in_force)
        self.state = carried.state
        self.tier, self.round = carried.tier, carried.round
        self.clock = carried.clock
        self.exhausted = carried.exhausted
        self.triggered_at = carried.triggered_at
        self.resolve_by = carried.resolve_by
        self.sla_breached = carried.sla_breached
        self.sla_reason = carried.sla_reason
        self.snoozed_until = carried.snoozed_until
        self.pause = carried.pause
        self.paused_clock = carried.paused_clock
        self.status_before_wait = carried.status_before_wait
        self.acknowledged_by, self.acknowledged_at = carried.acknowledged_by, carried.acknowledged_at
        self.occurrences = carried.occurrences
        self.counted_requests = list(carried.counted_requests)
        self.tried = list(carried.tried)
        self.timeline = list(carried.timeline)
        self.notification_count = carried.notification_count
        self.paged_people = dict.fromkeys(carried.paged_people)
        self.runs = carried.runs  # search attributes are published afresh by the new run
        self.ack_clock = carried.ack_clock
        self.tier_people_now = list(carried.tier_people_now)
        self.skipped_in_a_row = carried.skipped_in_a_row

    def _patched(self, patch: str) -> bool:
        """``workflow.patched(patch)``, or True without a marker of its own for a run that began
        on PATCH_BASELINE: opened on it by the starter (its request says so; no marker at all),
        or else at the run's first patch check (one marker, which replays at the same point)."""
        if self.since_baseline is None:
            self.since_baseline = self.request.baseline == PATCH_BASELINE or workflow.patched(PATCH_BASELINE)
        return self.since_baseline or workflow.patched(patch)

    def _publish(self) -> None:
        """What the Temporal UI shows and searches: the search attributes and the current
        details ("tier 2 of 3: waiting for an ack until 14:05 UTC")."""
        workflow.set_current_details(self._details())
        if not self._patched(PATCH_SEARCH_ATTRIBUTES):
            return
        current: search.Values = {
            search.INCIDENT_KEY.name: self.request.key,
            search.POLICY.name: self.policy.name,
            search.PRIORITY.name: self.priority,
            search.STATUS.name: self.state,
            search.TIER.name: self.tier,
            search.ACKNOWLEDGED_BY.name: self.acknowledged_by,
            search.SLA_BREACHED.name: self.sla_breached,
        }
        updates = search.changes(self.published, current)
        if updates:
            workflow.upsert_search_attributes(updates)
            self.published = current

    def _details(self) -> str:
        where = f"tier {self.tier} of {self.policy.tier_count} ({self.policy.tier_name(self.tier)})"
        if self.state == "triggered" and self.clock is not None:
            now = f"waiting for an ack until {_clock_time(self.clock.deadline)}"
        elif self.state == "triggered" and self.exhausted:
            now = "every tier was paged; nobody acknowledged"
        elif self.state == "acknowledged":
            now = f"acknowledged by {self.acknowledged_by}"
        elif self.state == "snoozed":
            now = f"snoozed until {_clock_time(self.snoozed_until)}"
        elif self.state == "waiting":
            now = "waiting on the customer (clocks stopped)"
        else:
            now = f"resolved by {self.resolved_by}"
        sla = ""
        if self.sla_breached:
            sla = "; SLA breached"
        elif self.resolve_by is not None and self.state != "resolved":
            sla = f"; resolve by {_clock_time(self.resolve_by)}"
        return f"[{self.priority}] {where}: {now}{sla}"

    def _next_wakeup(self) -> datetime | None:
        return decisions.next_wakeup(
            self.clock, self._running_sla(), self.sla_breached, self.snoozed_until, self.ack_clock
        )

    def _running_sla(self) -> datetime | None:
        """The resolution deadline, unless its clock is stopped (waiting on the customer)."""
        return None if self.pause is not None else self.resolve_by

    def _start_tier(self, tier: int, *, round: int, at: datetime) -> None:
        self.tier, self.round = tier, round
        self.clock = decisions.clock_for_tier(tier, round, at, self.tier_windows(tier), self.policy.calendar)

    def _remind(self) -> None:
        assert self.clock is not None
        self.clock = self.clock.model_copy(update={"reminded": True})
        left = format_duration(self.clock.deadline - (self.clock.remind_at or workflow.now()))
        self._record(
            "reminded",
            tier=self.tier,
            due_at=self.clock.remind_at,
            detail=f"{left} left to acknowledge before it escalates{self._next_tier_phrase()}",
        )
        self._page("reminder")

    def _escalate_on_timeout(self) -> None:
        assert self.clock is not None
        ended = self.clock
        self.tried.append(self._tier_phrase(ended.tier, held=decisions.held_for(ended, ended.deadline)))
        target = self._next_position(ended)
        if target is None or self.skipped_in_a_row >= self.policy.tier_count:
            self._exhaust(ended)
            return
        self._start_tier(target.tier, round=target.round, at=ended.deadline)
        round_note = f", round {target.round + 1}" if target.round else ""
        self._record(
            "escalated",
            tier=target.tier,
            due_at=ended.deadline,
            detail=(
                (
                    f"tier {ended.tier} ({self.policy.tier_name(ended.tier)}) was skipped"
                    if self.skipped_in_a_row
                    else f"no ack at tier {ended.tier} ({self.policy.tier_name(ended.tier)}) within "
                    f"{format_duration(self.tier_windows(ended.tier).ack_within)}"
                )
                + f"; now tier {target.tier} ({self.policy.tier_name(target.tier)}){round_note}"
            ),
        )
        self._page_or_skip("escalated")
        self._update_reporter("customer_update")
        self.metrics.escalated(self.policy.name, target.tier, "timeout")

    def _next_position(self, clock: TierClock) -> decisions.Position | None:
        policy = self.policy.policy
        rounds = policy.repeat_rounds
        if rounds is None and self.sla_breached:
            rounds = clock.round  # repeat: forever ends with the resolution SLA
        return decisions.next_position(clock.tier, clock.round, self.policy.tier_count, rounds, policy.repeat_from_tier)

    def _exhaust(self, ended: TierClock) -> None:
        """Every round is over and nobody acknowledged: what the policy's on_exhausted says."""
        policy = self.policy.policy
        self.clock = None
        self.exhausted = True
        rounds = f"after {ended.round + 1} round(s) of {self.policy.tier_count} tier(s)"
        if policy.on_exhausted == "keep_open":
            after = "it stays open for an ack"
        elif policy.on_exhausted == "resolve":
            after = "closed, as the policy says (on_exhausted: resolve)"
        else:
            after = f"manager {policy.manager} told; it stays open for an ack"
        self._record(
            "exhausted",
            tier=ended.tier,
            due_at=ended.deadline,
            who=policy.manager if policy.on_exhausted == "notify_manager" else None,
            detail=f"nobody acknowledged {rounds}; {after}",
        )
        self.metrics.exhausted(self.policy.name)
        if policy.on_exhausted == "notify_manager":
            self._notify_manager("exhausted", reason="every tier was paged and nobody acknowledged")
        elif policy.on_exhausted == "resolve":
            self._close("escalate", "closed unacknowledged: every tier was paged and nobody acknowledged")

    def _remind_acker(self) -> None:
        assert self.ack_clock is not None and self.acknowledged_by is not None
        self.ack_clock = self.ack_clock.model_copy(update={"reminded": True})
        self._record(
            "reminded",
            tier=self.tier,
            who=self.acknowledged_by,
            due_at=self.ack_clock.remind_at,
            detail=(
                f"{self.acknowledged_by}'s acknowledgement runs out at {_clock_time(self.ack_clock.expires_at)}: "
                "resolve it, or acknowledge again to keep it"
            ),
        )
        if self.acknowledged_by in self.policy.people:
            self._start_delivery(
                self._message("ack_reminder", self.acknowledged_by),
                self.policy.people[self.acknowledged_by].channels,
                paging_round=self.paging_round,
            )

    def _expire_acknowledgement(self) -> None:
        """ack_timeout: acknowledged but not resolved in time, so it goes back to its tier."""
        assert self.ack_clock is not None
        expired, acker = self.ack_clock, self.acknowledged_by
        self.ack_clock = None
        self._stop_paging()
        self.state = "triggered"
        self.acknowledged_by = None
        self.exhausted = False  # paged again: the tier has a window once more
        self._start_tier(self.tier, round=self.round, at=expired.expires_at)
        self._record(
            "ack_expired",
            tier=self.tier,
            who=acker,
            due_at=expired.expires_at,
            detail=(
                f"acknowledged by {acker} at {_clock_time(expired.acknowledged_at)} but not resolved within "
                f"{format_duration(expired.expires_at - expired.acknowledged_at)}: back to tier {self.tier} "
                f"({self.policy.tier_name(self.tier)}), paged again"
            ),
        )
        self._page_or_skip("page", reason=f"{acker}'s acknowledgement ran out")

    def _breach_sla(self) -> None:
        self.sla_breached = True
        self._record(
            "sla_breached",
            tier=self.tier,
            due_at=self.resolve_by,
            who=self.policy.policy.manager,
            detail=(
                f"not resolved within {format_duration(self.windows.resolve_within or timedelta(0))} "
                f"({self.priority}); manager {self.policy.policy.manager} asked why"
            ),
        )
        self._notify_manager("sla_breach", reason="the resolution SLA was breached")
        self.metrics.sla_breached(self.policy.name, self.priority)

    def _wake_from_snooze(self) -> None:
        woke_at = self.snoozed_until
        assert woke_at is not None
        self.snoozed_until = None
        self.state = "triggered"
        self.acknowledged_by = None
        self._start_tier(self.tier, round=self.round, at=woke_at)
        self._record("woke", tier=self.tier, due_at=woke_at, detail="snooze ended; paging the current tier again")
        self._page_or_skip("page")

    # ── responders ───────────────────────────────────────────────────────────────────────────

    @workflow.update
    async def trigger(self, request: IncidentRequest) -> TriggerResult:
        """Open the incident (the starter's own request) or count a repeat occurrence of it."""
        await self._until_ready()
        mark = len(self.timeline)
        if request.request_id and request.request_id == self.request.request_id:
            await workflow.wait_condition(lambda: self.opened or self.state == "resolved")
            return TriggerResult(created=True, status=self._status())
        self._refuse_if_resolved("triggered again")
        if self._first_time(request.request_id):
            self._count_occurrences(request, 1)
        return TriggerResult(created=False, status=self._status(since=mark))

    @workflow.signal
    def occurred(self, batch: OccurrenceBatch) -> None:
        """Repeat occurrences counted in bulk: what a flood of triggers of one key comes down to
        (a signal has no in-flight limit, and the starter batches the triggers it holds)."""
        if batch.request.request_id and batch.request.request_id == self.request.request_id:
            return  # the trigger that opened it, sent again by its starter: already counted
        if batch.count == 1 and not self._first_time(batch.request.request_id):
            return  # its update got through after all (the starter's attempt was retried)
        if self.state != "resolved":
            self._count_occurrences(batch.request, batch.count)

    def _first_time(self, request_id: str | None) -> bool:
        if not request_id:
            return True
        if request_id in self.counted_requests:
            return False
        self.counted_requests = [*self.counted_requests[-999:], request_id]
        return True

    def _count_occurrences(self, request: IncidentRequest, count: int) -> None:
        """Count repeats; a burst of them within a minute shares one timeline entry."""
        self.occurrences += count
        last = self.timeline[-1] if self.timeline else None
        burst = count
        if last is not None and last.kind == "repeated" and workflow.now() - last.at < timedelta(minutes=1):
            burst += _repeats_in(last.detail)
            self.timeline.pop()
        self._record(
            "repeated",
            tier=self.tier,
            who=request.reporter,
            detail=f"repeated {burst} time{'s' if burst > 1 else ''} (total {self.occurrences}): {request.summary}",
        )
        self._changed()

    @trigger.validator
    def _validate_trigger(self, request: IncidentRequest) -> None:
        if request.request_id != self.request.request_id:
            self._refuse_if_resolved("triggered again")

    @workflow.update
    async def acknowledge(self, request: AckRequest) -> IncidentStatus:
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_acknowledge(request)
            self._stop_paging()
            renewed = self.state == "acknowledged" and self.acknowledged_by == request.by
            if self.state == "waiting":
                # Still waiting on the customer; when it resumes, nothing escalates any more.
                self.status_before_wait, self.paused_clock = "acknowledged", None
            else:
                self.state = "acknowledged"
            self.acknowledged_by, self.acknowledged_at = request.by, workflow.now()
            self.ack_clock = decisions.ack_clock(workflow.now(), self.windows)
            if renewed and self.ack_clock is not None:
                request = request.model_copy(
                    update={"note": f"acknowledged again until {_clock_time(self.ack_clock.expires_at)}" + (f": {request.note}" if request.note else "")}
                )
            self.clock = None
            self.snoozed_until = None
            self._record("acknowledged", tier=self.tier, who=request.by, detail=request.note or "")
            if not any(event.kind == "acknowledged" for event in self.timeline[:-1]):
                seconds = (workflow.now() - self.triggered_at).total_seconds()
                self.metrics.acknowledged_after(seconds, self.policy.name, self.priority)
            self._changed()
            return self._status(since=mark)

    @acknowledge.validator
    def _admit_acknowledge(self, request: AckRequest) -> None:
        _refuse_a_long_note(request.note)
        self._validate_acknowledge(request)

    def _validate_acknowledge(self, request: AckRequest) -> None:
        self._refuse_if_resolved("acknowledged")
        if self.state == "acknowledged" and request.by == self.acknowledged_by and self.ack_clock is not None:
            return  # the acker renews an acknowledgement that would otherwise run out
        if self.state == "acknowledged" or (self.state == "waiting" and self.status_before_wait == "acknowledged"):
            raise Rejected(
                f"incident {self.request.key} is already acknowledged by {self.acknowledged_by} "
                f"at {_clock_time(self.acknowledged_at)}"
            )

    @workflow.update
    async def resolve(self, request: ResolveRequest) -> IncidentStatus:
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_resolve(request)
            self._close(request.by, request.resolution)
            return self._status(since=mark)

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        self._refuse_if_resolved("resolved again")

    @workflow.update
    async def escalate(self, request: EscalateRequest) -> IncidentStatus:
        """Manual escalation to the next tier ("the customer asks for a manager")."""
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_escalate(request)
            target = decisions.manual_escalation_target(self.tier, self.policy.tier_count, self._wanted_tier(request))
            assert target is not None
            if self.pause is not None:
                self._end_wait()
            self._stop_paging()
            self.ack_clock = None
            self.tried.append(self._tier_phrase(self.tier, held=self._held_so_far()))
            was = self.tier
            self.state = "triggered"
            self.acknowledged_by = None
            self.snoozed_until = None
            self.exhausted = False
            self._start_tier(target, round=self.round, at=workflow.now())
            self._record(
                "escalated",
                tier=target,
                who=request.by,
                detail=f"manual escalation from tier {was} to tier {target} ({self.policy.tier_name(target)}): {request.reason}",
            )
            self._page_or_skip("escalated", reason=f"{request.by} escalated it by hand: {request.reason}")
            self.metrics.escalated(self.policy.name, target, "manual")
            self._update_reporter("customer_update")
            self._changed()
            return self._status(since=mark)

    @escalate.validator
    def _validate_escalate(self, request: EscalateRequest) -> None:
        self._refuse_if_resolved("escalated")
        if self.snapshot is not None and request.to is not None:
            wanted = self._wanted_tier(request)
            names = ", ".join(f"{n} {tier.name}" for n, tier in enumerate(self.policy.policy.tiers, 1))
            if wanted is None:
                raise Rejected(f"there is no tier {request.to!r} in policy {self.policy.name}: the tiers are {names}")
            if wanted == self.tier:
                raise Rejected(f"incident {self.request.key} is already at tier {self.tier} ({self.policy.tier_name(self.tier)})")
        elif self.snapshot is not None and decisions.manual_escalation_target(self.tier, self.policy.tier_count) is None:
            raise Rejected(
                f"incident {self.request.key} is already at the top tier ({self.tier} of "
                f"{self.policy.tier_count}: {self.policy.tier_name(self.tier)}); reassign it to "
                "another policy instead"
            )

    @workflow.update
    async def reassign(self, request: ReassignRequest) -> IncidentStatus:
        """Functional escalation: hand the incident to another policy, starting at its tier 1."""
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_reassign(request)
            try:
                snapshot = await self._fetch_policy(request.policy)
                windows = snapshot.policy.windows_for(self.priority)
            except LOOKUP_FAILED as err:
                raise Rejected(f"cannot reassign to {request.policy}: {_reason(err)}") from None
            except ValueError as err:
                raise Rejected(f"cannot reassign to {request.policy}: {err}") from None
            self._validate_reassign(request)  # the incident may have changed while the policy loaded
            self._stop_paging()
            previous = self.policy.name
            self.snapshot = snapshot
            self.policies_in_force.append(snapshot)
            self.ack_clock = None
            self.state = "triggered"
            self.acknowledged_by = None
            self.snoozed_until = None
            self.exhausted = False
            self.tried = []
            self.resolve_by = decisions.resolve_by(self.triggered_at, windows, snapshot.calendar)
            self._start_tier(1, round=0, at=workflow.now())
            self._record(
                "reassigned",
                tier=1,
                who=request.by,
                detail=f"from {previous} to {snapshot.name} (tier 1: {snapshot.tier_name(1)}): {request.reason}",
                policy=snapshot.name,
            )
            self._page_or_skip("page")
            self._update_reporter("customer_update")
            self._changed()
            return self._status(since=mark)

    @reassign.validator
    def _validate_reassign(self, request: ReassignRequest) -> None:
        self._refuse_if_resolved("reassigned")
        self._refuse_if_waiting("reassigned")
        if self.snapshot is not None and request.policy == self.policy.name:
            raise Rejected(f"incident {self.request.key} is already on policy {request.policy}")

    @workflow.update
    async def snooze(self, request: SnoozeRequest) -> IncidentStatus:
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_snooze(request)
            self._stop_paging()
            self.state = "snoozed"
            self.clock = None
            self.ack_clock = None
            self.snoozed_until = workflow.now() + request.duration
            self._record(
                "snoozed",
                tier=self.tier,
                who=request.by,
                detail=f"for {format_duration(request.duration)}, until {_clock_time(self.snoozed_until)}",
            )
            self._changed()
            return self._status(since=mark)

    @snooze.validator
    def _validate_snooze(self, request: SnoozeRequest) -> None:
        self._refuse_if_resolved("snoozed")
        self._refuse_if_waiting("snoozed")
        if not timedelta(0) < request.duration <= MAX_SNOOZE:
            raise Rejected(
                f"cannot snooze for {format_duration(request.duration)}: "
                f"give a duration between 1s and {format_duration(MAX_SNOOZE)}, e.g. --for 2h"
            )

    @workflow.update
    async def wait_on_customer(self, request: WaitRequest) -> IncidentStatus:
        """Waiting on the customer: escalation and the resolution SLA stop until it resumes."""
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_wait_on_customer(request)
            self._stop_paging()
            now = workflow.now()
            self.pause = decisions.pause_clocks(
                self.clock, self.resolve_by, self.sla_breached, now, self.tier_windows(self.tier), self.policy.calendar
            )
            self.paused_clock = self.clock
            self.status_before_wait = self.state
            self.state = "waiting"
            self.ack_clock = None  # waiting on the customer is not the acker's delay
            self.clock = None
            self._record("waiting", tier=self.tier, who=request.by, detail=request.reason)
            self._changed()
            return self._status(since=mark)

    @wait_on_customer.validator
    def _validate_wait_on_customer(self, request: WaitRequest) -> None:
        self._refuse_if_resolved("put on hold")
        if self.state == "waiting":
            raise Rejected(f"incident {self.request.key} is already waiting on the customer")
        if self.state == "snoozed":
            raise Rejected(f"incident {self.request.key} is snoozed until {_clock_time(self.snoozed_until)}: it cannot wait on the customer as well")

    @workflow.update
    async def resume(self, request: ResumeRequest) -> IncidentStatus:
        """The customer answered: the clocks run again with the time they had left."""
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_resume(request)
            waited = workflow.now() - self.pause.since if self.pause else timedelta(0)
            self._end_wait()
            parts = [f"after waiting {format_duration(waited)}"]
            if self.clock is not None:
                parts.append(f"escalates at {_clock_time(self.clock.deadline)}")
            if self.resolve_by is not None and not self.sla_breached:
                parts.append(f"resolve by {_clock_time(self.resolve_by)}")
            self._record("resumed", tier=self.tier, who=request.by, detail="; ".join(parts) + (f": {request.note}" if request.note else ""))
            self._changed()
            return self._status(since=mark)

    @resume.validator
    def _admit_resume(self, request: ResumeRequest) -> None:
        _refuse_a_long_note(request.note)
        self._validate_resume(request)

    def _validate_resume(self, request: ResumeRequest) -> None:
        self._refuse_if_resolved("resumed")
        if self.state != "waiting":
            raise Rejected(f"incident {self.request.key} is not waiting on the customer (it is {self.state})")

    @workflow.update
    async def note(self, request: NoteRequest) -> IncidentStatus:
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_note(request)
            self._record("noted", tier=self.tier, who=request.by, detail=request.note)
            return self._status(since=mark)

    @note.validator
    def _admit_note(self, request: NoteRequest) -> None:
        written = sum(len(event.detail) for event in self.timeline if event.kind == "noted")
        if written + len(request.note) > MAX_NOTES_TOTAL:
            raise Rejected(
                f"this incident's notes are full ({written} characters; the limit is {MAX_NOTES_TOTAL}, "
                "so that the incident stays within Temporal's limits): put the rest in a linked document",
                field="note",
            )
        self._validate_note(request)

    def _validate_note(self, request: NoteRequest) -> None:
        self._refuse_if_resolved("given a note")

    @workflow.update
    async def set_priority(self, request: PriorityRequest) -> IncidentStatus:
        """Change the priority; the current window and the resolution SLA count again from now."""
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_set_priority(request)
            previous = self.priority
            self.priority = request.priority
            now = workflow.now()
            if self.clock is not None:
                self._start_tier(self.tier, round=self.round, at=now)
            self.resolve_by = decisions.resolve_by(now, self.windows, self.policy.calendar)
            resolve_note = f", resolve by {_clock_time(self.resolve_by)}" if self.resolve_by else ""
            self._record(
                "priority_changed",
                tier=self.tier,
                who=request.by,
                detail=(
                    f"{previous} → {request.priority}; ack within "
                    f"{format_duration(self.tier_windows(self.tier).ack_within)}{resolve_note}"
                ),
            )
            self._changed()
            return self._status(since=mark)

    @set_priority.validator
    def _validate_set_priority(self, request: PriorityRequest) -> None:
        self._refuse_if_resolved("given a new priority")
        self._refuse_if_waiting("given a new priority")
        if request.priority == self.priority:
            raise Rejected(f"incident {self.request.key} is already {self.priority}")
        if self.snapshot is not None:
            try:
                self.policy.policy.windows_for(request.priority)
            except ValueError as err:
                raise Rejected(str(err)) from None

    @workflow.update
    async def explain_sla(self, request: SlaReasonRequest) -> IncidentStatus:
        """Why the resolution SLA was missed, as the manager was asked when it was breached."""
        await self._until_ready()
        mark = len(self.timeline)
        async with self.lock:
            self._validate_explain_sla(request)
            self.sla_reason = request.reason
            self._record("sla_reason", tier=self.tier, who=request.by, detail=request.reason)
            return self._status(since=mark)

    @explain_sla.validator
    def _validate_explain_sla(self, request: SlaReasonRequest) -> None:
        if not self.sla_breached:
            raise Rejected(
                f"incident {self.request.key} has not breached its resolution SLA"
                + (f" (resolve by {_clock_time(self.resolve_by)})" if self.resolve_by else " (it has none)")
                + ": there is nothing to explain; use a note instead"
            )

    @workflow.query(name="status")
    def get_status(self) -> IncidentStatus:
        return self._status()

    @workflow.query
    def opened_by(self, request_id: str) -> bool:
        """Whether the starter's trigger with this id is the one that opened this incident."""
        return bool(request_id) and request_id == self.request.request_id

    # ── helpers ──────────────────────────────────────────────────────────────────────────────

    @property
    def policy(self) -> PolicySnapshot:
        assert self.snapshot is not None, "policy not loaded yet"
        return self.snapshot

    @property
    def windows(self) -> Windows:
        return self.policy.policy.windows_for(self.priority)

    def _wanted_tier(self, request: EscalateRequest) -> int | None:
        return self.policy.policy.tier_number(request.to) if request.to is not None else None

    def tier_windows(self, tier: int) -> Windows:
        """The windows of one tier at the current priority (a tier may have its own window)."""
        return self.policy.policy.windows_for_tier(self.priority, tier)

    async def _until_ready(self) -> None:
        await workflow.wait_condition(lambda: self.snapshot is not None or self.rejection is not None)
        if self.rejection is not None:
            raise Rejected(self.rejection, field=self.rejection_field)

    def _refuse_if_resolved(self, verb: str) -> None:
        if self.state == "resolved":
            raise Rejected(
                f"incident {self.request.key} is already resolved (by {self.resolved_by} at "
                f"{_clock_time(self.resolved_at)}): it cannot be {verb}",
                kind="AlreadyResolved",
            )

    def _close(self, by: str, resolution: str) -> None:
        self._stop_paging()
        self.ack_clock = None
        self.state = "resolved"
        self.pause, self.paused_clock = None, None
        self.resolved_by, self.resolved_at, self.resolution = by, workflow.now(), resolution
        self.clock = None
        self.snoozed_until = None
        self._record("resolved", tier=self.tier, who=by, detail=resolution)
        self.metrics.resolved(self.policy.name, self.priority)
        self._tell_everyone_paged()
        self._changed()

    def _refuse_if_waiting(self, verb: str) -> None:
        if self.state == "waiting":
            raise Rejected(
                f"incident {self.request.key} is waiting on the customer (since "
                f"{_clock_time(self.pause.since if self.pause else None)}): resume it first, then it can be {verb}"
            )

    def _end_wait(self) -> None:
        """Start the stopped clocks again with the time they had left."""
        assert self.pause is not None
        clock, resolve_by = decisions.resume_clocks(
            self.pause, self.paused_clock, workflow.now(), self.tier_windows(self.tier), self.policy.calendar
        )
        if self.pause.sla_left is not None:  # else there is none, or it was breached already
            self.resolve_by = resolve_by
        self.state = self.status_before_wait
        self.clock = clock if self.state == "triggered" else None
        if self.state == "acknowledged":
            self.ack_clock = decisions.ack_clock(workflow.now(), self.windows)
        self.pause, self.paused_clock = None, None

    def _changed(self) -> None:
        self.revision += 1

    def _held_so_far(self) -> timedelta:
        return workflow.now() - self.clock.started_at if self.clock is not None else timedelta(0)

    def _tier_phrase(self, tier: int, *, held: timedelta) -> str:
        people = ", ".join(self.tier_people_now if tier == self.tier else self.policy.people_of(tier)) or "nobody"
        return f"tier {tier} {self.policy.tier_name(tier)} ({people}) for {format_duration(held)}"

    def _next_tier_phrase(self) -> str:
        target = self._next_position(self.clock) if self.clock is not None else None
        if target is None:
            return " to the manager" if self.policy.policy.on_exhausted == "notify_manager" else " nowhere (every round is over)"
        return f" to tier {target.tier} ({self.policy.tier_name(target.tier)})"

    def _wait_summary(self, moment: datetime | None) -> str:
        """What the timer is for, as the Temporal UI shows it beside the timer."""
        clock = self.clock
        if moment is None:
            return "waiting for a responder"
        if clock is not None and not clock.reminded and moment == clock.remind_at:
            return f"tier {clock.tier} reminder at {_clock_time(moment)}"
        if clock is not None and moment == clock.deadline:
            return f"tier {clock.tier} ack window until {_clock_time(moment)}"
        if moment == self.snoozed_until:
            return f"snoozed until {_clock_time(moment)}"
        return f"resolution SLA until {_clock_time(moment)}"

    def _record(
        self,
        kind: EventKind,
        *,
        tier: int | None = None,
        who: str | None = None,
        detail: str = "",
        channel: str | None = None,
        due_at: datetime | None = None,
        policy: str | None = None,
    ) -> None:
        event = TimelineEvent(
            at=workflow.now(),
            kind=kind,
            tier=tier,
            who=who,
            detail=detail,
            channel=channel,
            due_at=due_at,
            policy=policy,
        )
        self.timeline.append(event)
        workflow.logger.info(
            f"{kind}: {detail}" if detail else kind,
            extra={"incident": self.request.key, "tier": tier, "who": who, "channel": channel},
        )

    # ── notifications ────────────────────────────────────────────────────────────────────────
    #
    # Each notification is its own background task, so a slow or failing channel never holds up
    # the timers that drive the escalation. Retries are driven from here rather than by the
    # activity retry policy: every attempt is recorded, and an ack (or any change of hands)
    # stops all further attempts at once without cancelling activities on the wire.

    def _page(self, kind: MessageKind, *, reason: str = "") -> None:
        """Notify every person of the current tier; if none of them can be reached on any
        channel, the manager is told."""
        if kind in ("page", "escalated") or not self.tier_people_now:
            self.tier_people_now = self.policy.people_at(self.tier, workflow.now())
        people = self.tier_people_now
        reach = TierReach(tier=self.tier, people=len(people)) if kind in ("page", "escalated") else None
        for person in people:
            self.paged_people.setdefault(person, None)
            contact = self.policy.people[person]
            message = self._message(kind, person, reason=reason)
            if contact.rules and kind in ("page", "escalated"):
                self.deliveries_in_flight += 1
                asyncio.create_task(self._follow_rules(message, contact, self.paging_round, reach))
            else:
                self._start_delivery(message, contact.channels, paging_round=self.paging_round, reach=reach)

    def _page_or_skip(self, kind: MessageKind, *, reason: str = "") -> None:
        """Page the tier that just started, or skip it at once when it would page nobody (a gap
        in its schedule, or outside its active hours): its window ends as it begins."""
        assert self.clock is not None
        why = self.policy.why_skipped(self.tier, self.clock.started_at)
        if why is None:
            self.skipped_in_a_row = 0
            self._page(kind, reason=reason)
            return
        self.skipped_in_a_row += 1
        self.tier_people_now = []
        self.clock = self.clock.model_copy(update={"deadline": self.clock.started_at, "remind_at": None})
        self._record(
            "skipped",
            tier=self.tier,
            due_at=self.clock.started_at,
            detail=f"tier {self.tier} ({self.policy.tier_name(self.tier)}) skipped: {why}",
        )

    def _notify_manager(self, kind: MessageKind, *, reason: str) -> None:
        # Not a page: an acknowledgement does not stop it.
        manager = self.policy.policy.manager
        self._start_delivery(
            self._message(kind, manager, reason=reason), self.policy.people[manager].channels, paging_round=None
        )

    def _update_reporter(self, kind: MessageKind) -> None:
        """Tell whoever reported the incident what happens next, or how it ended."""
        if self.request.reporter and self._patched(PATCH_REPORTER_UPDATES):
            self._start_delivery(
                self._message(kind, REPORTER),
                [ContactPoint(channel="email", address=self.request.reporter)],
                paging_round=None,
            )

    def _tell_everyone_paged(self) -> None:
        """The feedback loop: the outcome goes to the reporter and to every owner who was paged."""
        if not self._patched(PATCH_RESOLUTION_FEEDBACK):
            return
        self._update_reporter("resolved")
        for person in self.paged_people:
            if person in self.policy.people:
                self._start_delivery(
                    self._message("resolved", person), self.policy.people[person].channels, paging_round=None
                )

    def _stop_paging(self) -> None:
        """Pages of earlier rounds make no further attempt; one already on the wire finishes."""
        self.paging_round += 1

    def _start_delivery(
        self,
        message: Notification,
        points: list[ContactPoint],
        *,
        paging_round: int | None,
        reach: TierReach | None = None,
    ) -> None:
        self.deliveries_in_flight += 1
        asyncio.create_task(self._deliver(message, points, paging_round, reach))

    def _still_wanted(self, paging_round: int | None) -> bool:
        """Pages stop at an ack or any change of hands; notices (manager, reporter) always go."""
        if paging_round is None:
            return True
        return self.state != "resolved" and paging_round == self.paging_round

    def _message(self, kind: MessageKind, person: str, *, reason: str = "") -> Notification:
        """The message as of now; taken before the delivery task runs, since the incident may
        move on (even escalate again) before that task gets its turn."""
        self.notification_count += 1
        return Notification(
            idempotency_key=f"{self.request.key}/{self.notification_count}/{person}",
            kind=kind,
            incident_key=self.request.key,
            policy=self.policy.name,
            priority=self.priority,
            summary=self.request.summary,
            person=person,
            channel="",
            address="",
            tier=self.tier,
            tier_name=self.policy.tier_name(self.tier),
            tier_count=self.policy.tier_count,
            ack_by=self.clock.deadline if self.clock is not None else None,
            tried=_latest_tries(self.tried),
            reason=reason,
            next_step=self._next_tier_phrase().removeprefix(" to "),
            reporter=self.request.reporter,
            acknowledged_by=self.acknowledged_by,
            resolved_by=self.resolved_by,
            resolution=self.resolution,
        )

    async def _deliver(
        self, message: Notification, points: list[ContactPoint], paging_round: int | None, reach: TierReach | None
    ) -> None:
        """Reach one person: their channels in the order the directory lists them, falling over
        to the next when one fails for good. Channels this worker cannot send on (no SMTP
        configured, say) are skipped; if that leaves nothing, the message goes to the worker log,
        so that it is never silently dropped."""
        outcome = "stopped"
        try:
            outcome = await self._reach(message, points, paging_round)
        finally:
            self.deliveries_in_flight -= 1
            if reach is not None:
                self._count_reach(reach, outcome, paging_round, message.person)

    async def _follow_rules(
        self, message: Notification, contact: Person, paging_round: int, reach: TierReach | None
    ) -> None:
        """A person's contact rules: each step at its time after the page, on its channel, until
        the tier acknowledges (or anything else ends this paging round): then no step is left."""
        paged_at = workflow.now()
        try:
            for step, rule in enumerate(contact.rules, 1):
                due = paged_at + rule.after
                if due > workflow.now():
                    try:
                        await workflow.wait_condition(
                            lambda: not self._still_wanted(paging_round),
                            timeout=due - workflow.now(),
                            timeout_summary=f"{message.person}: contact step {step} via {rule.via}",
                        )
                    except TimeoutError:
                        pass
                if not self._still_wanted(paging_round):
                    return
                point = next(point for point in contact.channels if point.channel == rule.via)
                step_message = message.model_copy(update={"idempotency_key": f"{message.idempotency_key}/step{step}"})
                outcome = await self._reach(step_message, [point], paging_round)
                if step == 1 and reach is not None:
                    self._count_reach(reach, outcome, paging_round, message.person)
                    reach = None
        finally:
            self.deliveries_in_flight -= 1
            if reach is not None:  # stopped before the first step got anywhere
                self._count_reach(reach, "stopped", paging_round, message.person)

    async def _reach(self, message: Notification, points: list[ContactPoint], paging_round: int | None) -> str:
        skipped: list[str] = []
        failed = False
        for point in points:
            if point.channel in self.policy.channels_off:
                self.metrics.not_configured(point.channel)
                skipped.append(point.channel)
                continue
            outcome = await self._attempt_channel(message, paging_round, point.channel, point.address)
            if isinstance(outcome, Delivery):
                self._record_delivery(message, outcome, point.address, skipped)
                return "reached"
            if outcome == "stopped":
                return "stopped"
            if outcome == "not configured":
                skipped.append(point.channel)
            else:
                failed = True
        if failed:
            return "failed"
        if not self._still_wanted(paging_round):
            return "stopped"
        address = points[0].address
        outcome = await self._attempt_channel(message, paging_round, LOG_CHANNEL, address)
        if isinstance(outcome, Delivery):
            self._record_delivery(message, outcome, address, skipped)
            return "reached"
        return "failed" if outcome != "stopped" else "stopped"

    def _count_reach(self, reach: TierReach, outcome: str, paging_round: int | None, person: str) -> None:
        reach.done += 1
        if outcome == "reached":
            reach.reached += 1
        elif outcome == "failed":
            reach.unreachable.append(person)
        if reach.done == reach.people and reach.reached == 0 and len(reach.unreachable) == reach.people:
            if self._still_wanted(paging_round) and self._patched(PATCH_UNREACHABLE_TIER):
                self._record(
                    "unreachable",
                    tier=reach.tier,
                    who=self.policy.policy.manager,
                    detail=(
                        f"nobody of tier {reach.tier} ({self.policy.tier_name(reach.tier)}) could be reached "
                        f"on any channel ({', '.join(reach.unreachable)}); manager {self.policy.policy.manager} told"
                    ),
                )
                self._notify_manager("unreachable", reason=f"nobody of tier {reach.tier} could be reached")

    async def _attempt_channel(
        self, message: Notification, paging_round: int | None, channel: str, address: str
    ) -> Delivery | str:
        """Up to NOTIFY_ATTEMPTS attempts on one channel, the idempotency key the same on each."""
        notification = message.model_copy(
            update={"channel": channel, "address": address, "idempotency_key": f"{message.idempotency_key}/{channel}"}
        )
        for attempt in range(1, decisions.NOTIFY_ATTEMPTS + 1):
            if not self._still_wanted(paging_round):
                return "stopped"
            try:
                delivery: Delivery = await workflow.execute_activity(
                    NOTIFY_ACTIVITY,
                    notification,
                    result_type=Delivery,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=SINGLE_ATTEMPT,
                    summary=f"{SUMMARY_VERB[message.kind]} {message.person} via {channel}",
                )
                return "not configured" if delivery.outcome == "not_configured" else delivery
            except ActivityError as err:
                kind = _error_type(err)
                retry_in = decisions.notify_retry_delay(attempt, _retry_after(err))
                if kind == "PermanentDeliveryFailure" or retry_in is None:
                    verdict = "giving up on this channel"
                else:
                    verdict = f"retrying in {format_duration(retry_in)}"
                self._record(
                    "notify_failed",
                    tier=message.tier,
                    who=message.person,
                    channel=channel,
                    detail=f"{message.kind} via {channel} to {address}, attempt {attempt}: {_reason(err)}; {verdict}",
                )
                if kind == "PermanentDeliveryFailure" or retry_in is None:
                    return "failed"
                try:
                    await workflow.wait_condition(
                        lambda: not self._still_wanted(paging_round),
                        timeout=retry_in,
                        timeout_summary=f"retry {channel} to {message.person}",
                    )
                except TimeoutError:
                    pass
        return "failed"

    def _record_delivery(self, message: Notification, delivery: Delivery, address: str, skipped: list[str]) -> None:
        notes = [delivery.detail] if delivery.detail else []
        if skipped:
            notes.append(f"not configured on this worker: {', '.join(skipped)}")
        self._record(
            "notified",
            tier=message.tier,
            who=message.person,
            channel=delivery.channel,
            detail=f"{message.kind} via {delivery.channel} to {address}: {delivery.outcome}"
            + (f" ({'; '.join(notes)})" if notes else ""),
        )

    def _status(self, *, since: int = 0) -> IncidentStatus:
        """The status JSON. Update results carry only the timeline events the action added
        (``since``): they are stored in the history, and a whole timeline in each of them would
        make a long incident's history grow with the square of its length."""
        snapshot = self.snapshot
        if self.acknowledged_by is not None:
            owners = [self.acknowledged_by]
        elif snapshot is not None:
            owners = list(self.tier_people_now)
        else:
            owners = []
        clock = self.clock
        return IncidentStatus(
            key=self.request.key,
            policy=snapshot.name if snapshot else self.request.policy,
            priority=self.priority,
            status=self.state,
            tier=self.tier,
            tier_name=snapshot.tier_name(self.tier) if snapshot else "",
            owners=owners,
            acknowledged_by=self.acknowledged_by,
            resolve_by=self.resolve_by,
            sla_breached=self.sla_breached,
            sla_reason=self.sla_reason,
            timeline=self.timeline[since:],
            summary=self.request.summary,
            details=self.request.details,
            reporter=self.request.reporter,
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


def _refuse_a_long_note(note: str | None) -> None:
    """An action's note is at most as long as a note. Checked when the action arrives only (not
    again in its handler): actions of before, with longer notes, still replay as they were."""
    if note is not None and len(note) > MAX_NOTE:
        raise Rejected(
            f"the note is {len(note)} characters long; the limit is {MAX_NOTE}: put a link to the rest",
            field="note",
        )


def _latest_tries(tried: list[str]) -> list[str]:
    if len(tried) <= MAX_TRIED_IN_MESSAGE:
        return list(tried)
    shown = MAX_TRIED_IN_MESSAGE - 1
    return [f"{len(tried) - shown} earlier tiers", *tried[-shown:]]


def _repeats_in(detail: str) -> int:
    """The count of a "repeated N times (total T): …" timeline entry."""
    words = detail.split(" ", 2)
    return int(words[1]) if len(words) > 2 and words[0] == "repeated" and words[1].isdigit() else 1


def _error_type(err: BaseException) -> str | None:
    cause = err.__cause__
    return cause.type if isinstance(cause, ApplicationError) else None


def _retry_after(err: BaseException) -> timedelta | None:
    """The Retry-After a receiver sent, which channels pass as the failure's first detail."""
    cause = err.__cause__
    if isinstance(cause, ApplicationError) and cause.details:
        try:
            return timedelta(seconds=float(cause.details[0]))
        except (TypeError, ValueError):
            return None
    return None


def _reason(err: BaseException) -> str:
    """The innermost message of an activity failure (what actually went wrong)."""
    cause = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    return str(getattr(cause, "message", None) or cause)


def _clock_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "?"
