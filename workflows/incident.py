"""The story of one incident, from trigger to resolution.

One workflow per incident (id ``incident-<key>``). It snapshots its escalation policy, pages
tier 1, reminds before each window ends, escalates tier by tier when nobody acknowledges, and
tells the manager when the policy is exhausted or the resolution SLA is breached. Responders act
through updates. What the incident knows is one ``IncidentState``; its decisions are the pure
functions of ``workflows.decisions``; its messages go out through ``Paging``. Every step is
recorded in the timeline, so the history replays to exactly why every page went out.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import decisions, lookups, patches, refusals, search
    from workflows.decisions import TierClock
    from workflows.durations import format_duration, format_time
    from workflows.errors import INCIDENT_REJECTED, Rejected, reason
    from workflows.incident_state import IncidentState
    from workflows.maintenance_hold import MaintenanceHold
    from workflows.message_kinds import compose, traits
    from workflows.metrics import IncidentMetrics
    from workflows.model import (
        EXTEND_SIGNAL,
        RELEASE_SIGNAL,
        REPORTER,
        AckRequest,
        EscalateRequest,
        EventKind,
        IncidentRequest,
        IncidentStatus,
        MessageKind,
        NoteRequest,
        Notification,
        OccurrenceBatch,
        PriorityRequest,
        ReassignRequest,
        ResolveRequest,
        ResumeRequest,
        SlaReasonRequest,
        SnoozeRequest,
        TimelineEvent,
        TriggerResult,
        WaitRequest,
    )
    from workflows.paging import Paging, TierReach
    from workflows.patches import Patches
    from workflows.policy import ContactPoint, PolicySnapshot

HISTORY_LIMIT = 10_000
"""Events after which an incident continues as a new run (Temporal's hard limit is 51,200)."""

Request = TypeVar("Request")


@workflow.defn(name="Incident")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, request: IncidentRequest) -> None:
        self.request = request
        self.continuing = request.carried is not None and workflow.info().continued_run_id is not None
        """A later run of a long-lived incident (continue-as-new), which starts from the state
        its earlier run handed over. Only that run's own continue-as-new may hand one over."""
        self.incident = IncidentState(priority=request.priority, triggered_at=workflow.now())
        self.rejection: str | None = None
        self.rejection_field: str | None = None
        if request.carried is not None and self.continuing:
            self.incident = request.carried.model_copy(deep=True)  # the request keeps what was handed over
        elif request.carried is not None:
            # A state sent with a new incident would open it with no page and no story, and
            # could name addresses of its own for the worker to call.
            self.rejection = "a new incident cannot bring a carried state: only a run of the same incident continues one"
            self.rejection_field = "carried"
        self.opened = self.continuing
        """True once the new incident has paged its first tier."""
        self.revision = 0
        """Counts the responders' changes: the clock loop wakes at each."""
        self.published = search.Published({} if self.continuing else search.values_of(workflow.info().typed_search_attributes))
        """A new incident's starter sets the search attributes with the start
        (``search.at_start``); a continued run publishes its own afresh."""
        self.metrics = IncidentMetrics(workflow.metric_meter())
        self.lock = asyncio.Lock()
        self.patched = Patches(request.baseline)
        self.paging = Paging(
            policy=lambda: self.policy,
            resolved=lambda: self.incident.state == "resolved",
            record=self._record,
            metrics=self.metrics,
            tier_unreachable=self._tier_unreachable,
        )
        self.hold = MaintenanceHold(lambda: self.incident, request.key, self._record, self._changed)

    # ── the story ────────────────────────────────────────────────────────────────────────────

    @workflow.run
    async def run(self, request: IncidentRequest) -> IncidentStatus:
        if not self.continuing:
            await self._open()
        incident = self.incident
        while incident.state != "resolved":
            if self._time_for_a_new_run():
                self._publish()
                workflow.continue_as_new(self.request.model_copy(update={"carried": incident.for_next_run()}))
            await self._wait_for_change_until(incident.next_wakeup())
            self._do_what_is_due(workflow.now())

        await workflow.wait_condition(workflow.all_handlers_finished)
        self._publish()
        # Attempts already on the wire report back before the incident closes.
        await workflow.wait_condition(lambda: self.paging.in_flight == 0)
        return self._status()

    async def _open(self) -> None:
        """A new incident: take its policy, record the trigger, wait out a maintenance window if
        one is on, then page tier 1. A start the policy refuses ends here, as no incident."""
        incident, request = self.incident, self.request
        if not await self._take_policy_snapshot(request.policy):
            if self.published.values:  # a refused start is no incident: not one the UI lists as open
                workflow.upsert_search_attributes([key.value_unset() for key in search.ALL if key.name in self.published.values])
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(self.rejection or "rejected", type=INCIDENT_REJECTED, non_retryable=True)

        self._record("triggered", tier=1, who=request.reporter, detail=f"[{incident.priority}] {request.summary}", policy=self.policy.name)
        self.metrics.opened(self.policy.name, incident.priority)
        starts = incident.triggered_at
        if self.patched.on(patches.PATCH_MAINTENANCE):
            starts = await self.hold.wait_out_any_window(self.policy.name, local=self.patched.on(patches.PATCH_LOCAL_LOOKUPS))
        self.opened = True
        if incident.state == "triggered" and incident.clock is None:
            incident.resolve_by = decisions.resolve_by(starts, incident.windows, self.policy.calendar)
            incident.start_tier(incident.tier, round=0, at=starts)
            self._page_or_skip("page")
            self._update_reporter("customer_update")

    def _do_what_is_due(self, now: datetime) -> None:
        """Whatever the clocks say is due by ``now``, in the order it fell due."""
        incident = self.incident
        if incident.snoozed_until is not None and incident.snoozed_until <= now:
            self._wake_from_snooze()
        if incident.ack_clock is not None and not incident.ack_clock.reminded and incident.ack_clock.remind_at <= now:
            self._remind_acker()
        if incident.ack_clock is not None and incident.ack_clock.expires_at <= now:
            self._expire_acknowledgement()
        if incident.clock is not None and decisions.reminder_due(incident.clock, now):
            self._remind()
        while incident.clock is not None and decisions.window_ended(incident.clock, now):
            self._escalate_on_timeout()
        if decisions.sla_breached(incident.running_sla(), incident.sla_breached, now):
            self._breach_sla()

    @workflow.signal(name=RELEASE_SIGNAL)
    def maintenance_over(self) -> None:
        self.hold.release()

    @workflow.signal(name=EXTEND_SIGNAL)
    def maintenance_extended(self, until: datetime) -> None:
        self.hold.extend(until)

    async def _take_policy_snapshot(self, name: str) -> bool:
        if self.rejection is not None:
            return False
        try:
            snapshot = await self._fetch_policy(name)
            snapshot.policy.windows_for(self.incident.priority)
            self.incident.take_policy(snapshot)
        except lookups.LOOKUP_FAILED as err:
            self.rejection, self.rejection_field = reason(err), "policy"
        except ValueError as err:
            self.rejection, self.rejection_field = str(err), "priority"
        if self.rejection is not None:
            workflow.logger.warning("incident rejected: %s", self.rejection)
            return False
        return True

    async def _fetch_policy(self, name: str) -> PolicySnapshot:
        return await lookups.policy(name, local=self.patched.on(patches.PATCH_LOCAL_LOOKUPS))

    async def _wait_for_change_until(self, moment: datetime | None) -> None:
        """Sleep until ``moment`` or until a responder changes something, whichever is first."""
        self._publish()
        seen = self.revision
        timeout = None if moment is None else moment - workflow.now()
        if timeout is not None and timeout <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                lambda: self.revision != seen or self.incident.state == "resolved" or self._time_for_a_new_run(),
                timeout=timeout,
                timeout_summary=self.incident.wait_summary(moment),
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
        return long and self.paging.in_flight == 0 and workflow.all_handlers_finished()

    def _publish(self) -> None:
        """What the Temporal UI shows and searches: the current details ("tier 2 of 3: waiting
        for an ack until 14:05 UTC") and the search attributes."""
        incident = self.incident
        workflow.set_current_details(incident.details())
        if not self.patched.on(patches.PATCH_SEARCH_ATTRIBUTES):
            return
        updates = self.published.changes_to(search.values_for(self.request.key, incident))
        if updates:
            workflow.upsert_search_attributes(updates)

    # ── what the clocks drive ────────────────────────────────────────────────────────────────

    def _remind(self) -> None:
        clock = self.incident.mark_reminded()
        left = format_duration(clock.deadline - (clock.remind_at or workflow.now()))
        detail = f"{left} left to acknowledge before it escalates{self.incident.next_tier_phrase()}"
        self._record("reminded", tier=self.incident.tier, due_at=clock.remind_at, detail=detail)
        self._page("reminder")

    def _escalate_on_timeout(self) -> None:
        incident = self.incident
        ended = incident.clock
        assert ended is not None
        incident.tried.append(incident.tier_phrase(ended.tier, held=decisions.held_for(ended, ended.deadline)))
        target = incident.next_position(ended)
        if target is None or incident.skipped_in_a_row >= self.policy.tier_count:
            self._exhaust(ended)
            return
        incident.start_tier(target.tier, round=target.round, at=ended.deadline)
        ended_name, target_name = self.policy.tier_name(ended.tier), self.policy.tier_name(target.tier)
        if incident.skipped_in_a_row:
            why = f"tier {ended.tier} ({ended_name}) was skipped"
        else:
            why = f"no ack at tier {ended.tier} ({ended_name}) within {format_duration(incident.tier_windows(ended.tier).ack_within)}"
        now = f"now tier {target.tier} ({target_name})" + (f", round {target.round + 1}" if target.round else "")
        self._record("escalated", tier=target.tier, due_at=ended.deadline, detail=f"{why}; {now}")
        self._page_or_skip("escalated")
        self._update_reporter("customer_update")
        self.metrics.escalated(self.policy.name, target.tier, "timeout")

    def _exhaust(self, ended: TierClock) -> None:
        """Every round is over and nobody acknowledged: what the policy's on_exhausted says."""
        policy = self.policy.policy
        self.incident.exhaust()
        rounds = f"after {ended.round + 1} round(s) of {self.policy.tier_count} tier(s)"
        after = {
            "keep_open": "it stays open for an ack",
            "resolve": "closed, as the policy says (on_exhausted: resolve)",
        }.get(policy.on_exhausted, f"manager {policy.manager} told; it stays open for an ack")
        who = policy.manager if policy.on_exhausted == "notify_manager" else None
        self._record("exhausted", tier=ended.tier, due_at=ended.deadline, who=who, detail=f"nobody acknowledged {rounds}; {after}")
        self.metrics.exhausted(self.policy.name)
        if policy.on_exhausted == "notify_manager":
            self._notify_manager("exhausted", reason="every tier was paged and nobody acknowledged")
        elif policy.on_exhausted == "resolve":
            self._close("escalate", "closed unacknowledged: every tier was paged and nobody acknowledged")

    def _remind_acker(self) -> None:
        incident = self.incident
        acker, acknowledgement = incident.acknowledged_by, incident.remind_acker()
        assert acker is not None
        runs_out = format_time(acknowledgement.expires_at)
        detail = f"{acker}'s acknowledgement runs out at {runs_out}: resolve it, or acknowledge again to keep it"
        self._record("reminded", tier=incident.tier, who=acker, due_at=acknowledgement.remind_at, detail=detail)
        if acker in self.policy.people:
            self._tell(acker, "ack_reminder", paging_round=self.paging.round)

    def _expire_acknowledgement(self) -> None:
        """ack_timeout: acknowledged but not resolved in time, so it goes back to its tier."""
        incident = self.incident
        expired, acker = incident.ack_clock, incident.acknowledged_by
        assert expired is not None
        self.paging.stop()
        incident.retrigger()
        incident.start_tier(incident.tier, round=incident.round, at=expired.expires_at)
        held = format_duration(expired.expires_at - expired.acknowledged_at)
        self._record(
            "ack_expired",
            tier=incident.tier,
            who=acker,
            due_at=expired.expires_at,
            detail=(
                f"acknowledged by {acker} at {format_time(expired.acknowledged_at)} but not resolved within {held}: "
                f"back to tier {incident.tier} ({self.policy.tier_name(incident.tier)}), paged again"
            ),
        )
        self._page_or_skip("page", reason=f"{acker}'s acknowledgement ran out")

    def _breach_sla(self) -> None:
        incident, manager = self.incident, self.policy.policy.manager
        incident.sla_breached = True
        within = format_duration(incident.windows.resolve_within or timedelta(0))
        detail = f"not resolved within {within} ({incident.priority}); manager {manager} asked why"
        self._record("sla_breached", tier=incident.tier, due_at=incident.resolve_by, who=manager, detail=detail)
        self._notify_manager("sla_breach", reason="the resolution SLA was breached")
        self.metrics.sla_breached(self.policy.name, incident.priority)

    def _wake_from_snooze(self) -> None:
        incident = self.incident
        woke_at = incident.snoozed_until
        assert woke_at is not None
        incident.retrigger()
        incident.start_tier(incident.tier, round=incident.round, at=woke_at)
        self._record("woke", tier=incident.tier, due_at=woke_at, detail="snooze ended; paging the current tier again")
        self._page_or_skip("page")

    # ── who is told ──────────────────────────────────────────────────────────────────────────

    def _page(self, kind: MessageKind, *, reason: str = "") -> None:
        """Notify every person of the current tier (a page or an escalation starts a round of
        its own: the tier's schedules are resolved now, and nobody reachable tells the manager)."""
        incident = self.incident
        opens = traits(kind).pages_tier
        if opens or not incident.tier_people_now:
            incident.tier_people_now = self.policy.people_at(incident.tier, workflow.now())
        people = incident.tier_people_now
        reach = TierReach(tier=incident.tier, people=len(people)) if opens else None
        for person in people:
            incident.note_paged(person)
            contact = self.policy.people[person]
            message = self._message(kind, person, reason=reason)
            if contact.rules and opens:
                self.paging.follow_rules(message, contact, reach)
            else:
                self.paging.send(message, contact.channels, paging_round=self.paging.round, reach=reach)

    def _page_or_skip(self, kind: MessageKind, *, reason: str = "") -> None:
        """Page the tier that just started, or skip it at once when it would page nobody (a gap
        in its schedule, or outside its active hours): its window ends as it begins."""
        incident = self.incident
        assert incident.clock is not None
        why = self.policy.why_skipped(incident.tier, incident.clock.started_at)
        if why is None:
            incident.skipped_in_a_row = 0
            self._page(kind, reason=reason)
            return
        incident.skip_tier()
        detail = f"tier {incident.tier} ({self.policy.tier_name(incident.tier)}) skipped: {why}"
        self._record("skipped", tier=incident.tier, due_at=incident.clock.started_at, detail=detail)

    def _tier_unreachable(self, reach: TierReach) -> None:
        """Nobody of a paged tier could be reached on any channel: the manager is told."""
        if not self.patched.on(patches.PATCH_UNREACHABLE_TIER):
            return
        manager, tier = self.policy.policy.manager, f"tier {reach.tier} ({self.policy.tier_name(reach.tier)})"
        detail = f"nobody of {tier} could be reached on any channel ({', '.join(reach.unreachable)}); manager {manager} told"
        self._record("unreachable", tier=reach.tier, who=manager, detail=detail)
        self._notify_manager("unreachable", reason=f"nobody of tier {reach.tier} could be reached")

    def _notify_manager(self, kind: MessageKind, *, reason: str) -> None:
        self._tell(self.policy.policy.manager, kind, reason=reason)  # not a page: an ack does not stop it

    def _tell(self, person: str, kind: MessageKind, *, reason: str = "", paging_round: int | None = None) -> None:
        """One message to one person of the directory, on their channels."""
        self.paging.send(self._message(kind, person, reason=reason), self.policy.people[person].channels, paging_round=paging_round)

    def _update_reporter(self, kind: MessageKind) -> None:
        """Tell whoever reported the incident what happens next, or how it ended."""
        if self.request.reporter and self.patched.on(patches.PATCH_REPORTER_UPDATES):
            address = [ContactPoint(channel="email", address=self.request.reporter)]
            self.paging.send(self._message(kind, REPORTER), address, paging_round=None)

    def _tell_everyone_paged(self) -> None:
        """The feedback loop: the outcome goes to the reporter and to every owner who was paged."""
        if not self.patched.on(patches.PATCH_RESOLUTION_FEEDBACK):
            return
        self._update_reporter("resolved")
        for person in self.incident.paged_people:
            if person in self.policy.people:
                self._tell(person, "resolved")

    def _message(self, kind: MessageKind, person: str, *, reason: str = "") -> Notification:
        """The message as of now; taken before the delivery task runs, since the incident may
        move on (even escalate again) before that task gets its turn."""
        self.incident.notification_count += 1
        return compose(kind, person, self.incident, self.request, reason=reason)

    # ── responders ───────────────────────────────────────────────────────────────────────────

    async def _act(
        self, request: Request, refuse: Callable[[IncidentState, str, Request], None], change: Callable[[Request], Awaitable[None] | None]
    ) -> IncidentStatus:
        """What every responder's action does around its change: wait until the incident has its
        policy, take the lock, check again that the action is allowed (``refusals``: the incident
        may have moved on since the update's validator ran), make the change, and answer with the
        timeline events the change added (see docs/adr/0004-update-results-carry-new-events-only.md)."""
        await self._until_ready()
        mark = len(self.incident.timeline)
        async with self.lock:
            refuse(self.incident, self.request.key, request)
            done = change(request)
            if inspect.isawaitable(done):
                await done
            return self._status(since=mark)

    @workflow.update
    async def trigger(self, request: IncidentRequest) -> TriggerResult:
        """Open the incident (the starter's own request) or count a repeat occurrence of it."""
        await self._until_ready()
        mark = len(self.incident.timeline)
        if request.request_id and request.request_id == self.request.request_id:
            # Opened: paged, or held by a maintenance window (it learns that rather than wait for the window).
            await workflow.wait_condition(lambda: self.opened or self.incident.held_until is not None or self.incident.state == "resolved")
            return TriggerResult(created=True, status=self._status())
        refusals.trigger(self.incident, self.request.key, request)
        if self.incident.first_time(request.request_id):
            self._count_occurrences(request, 1)
        return TriggerResult(created=False, status=self._status(since=mark))

    @trigger.validator
    def _validate_trigger(self, request: IncidentRequest) -> None:
        if request.request_id != self.request.request_id:
            refusals.trigger(self.incident, self.request.key, request)

    @workflow.signal
    def occurred(self, batch: OccurrenceBatch) -> None:
        """Repeat occurrences counted in bulk: what a flood of triggers of one key comes down to
        (a signal has no in-flight limit, and the starter batches the triggers it holds)."""
        if batch.request.request_id and batch.request.request_id == self.request.request_id:
            return  # the trigger that opened it, sent again by its starter: already counted
        if batch.count == 1 and not self.incident.first_time(batch.request.request_id):
            return  # its update got through after all (the starter's attempt was retried)
        if self.incident.state != "resolved":
            self._count_occurrences(batch.request, batch.count)

    def _count_occurrences(self, request: IncidentRequest, count: int) -> None:
        """Count repeats; a burst of them within a minute shares one timeline entry."""
        burst = self.incident.count_occurrences(count, at=workflow.now())
        detail = f"repeated {burst} time{'s' if burst > 1 else ''} (total {self.incident.occurrences}): {request.summary}"
        self._record("repeated", tier=self.incident.tier, who=request.reporter, detail=detail)
        self._changed()

    @workflow.update
    async def acknowledge(self, request: AckRequest) -> IncidentStatus:
        return await self._act(request, refusals.acknowledge, self._acknowledge)

    @acknowledge.validator
    def _validate_acknowledge(self, request: AckRequest) -> None:
        refusals.long_note(request.note)
        refusals.acknowledge(self.incident, self.request.key, request)

    def _acknowledge(self, request: AckRequest) -> None:
        incident = self.incident
        self.paging.stop()
        renewed = incident.state == "acknowledged" and incident.acknowledged_by == request.by
        incident.acknowledge(request.by, workflow.now())
        note = request.note or ""
        if renewed and incident.ack_clock is not None:
            note = f"acknowledged again until {format_time(incident.ack_clock.expires_at)}" + (f": {note}" if note else "")
        self._record("acknowledged", tier=incident.tier, who=request.by, detail=note)
        if not incident.acknowledged_before():
            seconds = (workflow.now() - incident.triggered_at).total_seconds()
            self.metrics.acknowledged_after(seconds, self.policy.name, incident.priority)
        self._changed()

    @workflow.update
    async def resolve(self, request: ResolveRequest) -> IncidentStatus:
        return await self._act(request, refusals.resolve, lambda request: self._close(request.by, request.resolution))

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        refusals.resolve(self.incident, self.request.key, request)

    def _close(self, by: str, resolution: str) -> None:
        self.paging.stop()
        self.incident.close(by, resolution, workflow.now())
        self._record("resolved", tier=self.incident.tier, who=by, detail=resolution)
        self.metrics.resolved(self.policy.name, self.incident.priority)
        self._tell_everyone_paged()
        self._changed()

    @workflow.update
    async def escalate(self, request: EscalateRequest) -> IncidentStatus:
        """Manual escalation to the next tier ("the customer asks for a manager")."""
        return await self._act(request, refusals.escalate, self._escalate)

    @escalate.validator
    def _validate_escalate(self, request: EscalateRequest) -> None:
        refusals.escalate(self.incident, self.request.key, request)

    def _escalate(self, request: EscalateRequest) -> None:
        incident = self.incident
        wanted = self.policy.policy.tier_number(request.to) if request.to is not None else None
        target = decisions.manual_escalation_target(incident.tier, self.policy.tier_count, wanted)
        assert target is not None
        if incident.pause is not None:
            incident.end_wait(workflow.now())
        self.paging.stop()
        incident.tried.append(incident.tier_phrase(incident.tier, held=incident.held_so_far(workflow.now())))
        was = incident.tier
        incident.retrigger()
        incident.start_tier(target, round=incident.round, at=workflow.now())
        detail = f"manual escalation from tier {was} to tier {target} ({self.policy.tier_name(target)}): {request.reason}"
        self._record("escalated", tier=target, who=request.by, detail=detail)
        self._page_or_skip("escalated", reason=f"{request.by} escalated it by hand: {request.reason}")
        self.metrics.escalated(self.policy.name, target, "manual")
        self._update_reporter("customer_update")
        self._changed()

    @workflow.update
    async def reassign(self, request: ReassignRequest) -> IncidentStatus:
        """Functional escalation: hand the incident to another policy, starting at its tier 1."""
        return await self._act(request, refusals.reassign, self._reassign)

    @reassign.validator
    def _validate_reassign(self, request: ReassignRequest) -> None:
        refusals.reassign(self.incident, self.request.key, request)

    async def _reassign(self, request: ReassignRequest) -> None:
        incident = self.incident
        try:
            snapshot = await self._fetch_policy(request.policy)
            windows = snapshot.policy.windows_for(incident.priority)
        except lookups.LOOKUP_FAILED as err:
            raise Rejected(f"cannot reassign to {request.policy}: {reason(err)}") from None
        except ValueError as err:
            raise Rejected(f"cannot reassign to {request.policy}: {err}") from None
        refusals.reassign(incident, self.request.key, request)  # the incident may have moved on while the policy loaded
        self.paging.stop()
        previous = self.policy.name
        incident.take_policy(snapshot)
        incident.retrigger()
        incident.tried = []
        incident.resolve_by = decisions.resolve_by(incident.triggered_at, windows, snapshot.calendar)
        incident.start_tier(1, round=0, at=workflow.now())
        detail = f"from {previous} to {snapshot.name} (tier 1: {snapshot.tier_name(1)}): {request.reason}"
        self._record("reassigned", tier=1, who=request.by, detail=detail, policy=snapshot.name)
        self._page_or_skip("page")
        self._update_reporter("customer_update")
        self._changed()

    @workflow.update
    async def snooze(self, request: SnoozeRequest) -> IncidentStatus:
        return await self._act(request, refusals.snooze, self._snooze)

    @snooze.validator
    def _validate_snooze(self, request: SnoozeRequest) -> None:
        refusals.snooze(self.incident, self.request.key, request)

    def _snooze(self, request: SnoozeRequest) -> None:
        self.paging.stop()
        self.incident.snooze(workflow.now() + request.duration)
        detail = f"for {format_duration(request.duration)}, until {format_time(self.incident.snoozed_until)}"
        self._record("snoozed", tier=self.incident.tier, who=request.by, detail=detail)
        self._changed()

    @workflow.update
    async def wait_on_customer(self, request: WaitRequest) -> IncidentStatus:
        """Waiting on the customer: escalation and the resolution SLA stop until it resumes."""
        return await self._act(request, refusals.wait_on_customer, self._wait_on_customer)

    @wait_on_customer.validator
    def _validate_wait_on_customer(self, request: WaitRequest) -> None:
        refusals.wait_on_customer(self.incident, self.request.key, request)

    def _wait_on_customer(self, request: WaitRequest) -> None:
        self.paging.stop()
        self.incident.wait_on_customer(workflow.now())
        self._record("waiting", tier=self.incident.tier, who=request.by, detail=request.reason)
        self._changed()

    @workflow.update
    async def resume(self, request: ResumeRequest) -> IncidentStatus:
        """The customer answered: the clocks run again with the time they had left."""
        return await self._act(request, refusals.resume, self._resume)

    @resume.validator
    def _validate_resume(self, request: ResumeRequest) -> None:
        refusals.long_note(request.note)
        refusals.resume(self.incident, self.request.key, request)

    def _resume(self, request: ResumeRequest) -> None:
        incident = self.incident
        waited = workflow.now() - incident.pause.since if incident.pause else timedelta(0)
        incident.end_wait(workflow.now())
        parts = [f"after waiting {format_duration(waited)}"]
        if incident.clock is not None:
            parts.append(f"escalates at {format_time(incident.clock.deadline)}")
        if incident.resolve_by is not None and not incident.sla_breached:
            parts.append(f"resolve by {format_time(incident.resolve_by)}")
        detail = "; ".join(parts) + (f": {request.note}" if request.note else "")
        self._record("resumed", tier=incident.tier, who=request.by, detail=detail)
        self._changed()

    @workflow.update
    async def note(self, request: NoteRequest) -> IncidentStatus:
        return await self._act(request, refusals.note, self._note)

    @note.validator
    def _validate_note(self, request: NoteRequest) -> None:
        refusals.notes_full(self.incident, request.note)
        refusals.note(self.incident, self.request.key, request)

    def _note(self, request: NoteRequest) -> None:
        self._record("noted", tier=self.incident.tier, who=request.by, detail=request.note)

    @workflow.update
    async def set_priority(self, request: PriorityRequest) -> IncidentStatus:
        """Change the priority; the current window and the resolution SLA count again from now."""
        return await self._act(request, refusals.set_priority, self._set_priority)

    @set_priority.validator
    def _validate_set_priority(self, request: PriorityRequest) -> None:
        refusals.set_priority(self.incident, self.request.key, request)

    def _set_priority(self, request: PriorityRequest) -> None:
        incident = self.incident
        previous = incident.priority
        incident.priority = request.priority
        now = workflow.now()
        if incident.clock is not None:
            incident.start_tier(incident.tier, round=incident.round, at=now)
        incident.resolve_by = decisions.resolve_by(now, incident.windows, self.policy.calendar)
        resolve_note = f", resolve by {format_time(incident.resolve_by)}" if incident.resolve_by else ""
        ack_within = format_duration(incident.tier_windows(incident.tier).ack_within)
        detail = f"{previous} → {request.priority}; ack within {ack_within}{resolve_note}"
        self._record("priority_changed", tier=incident.tier, who=request.by, detail=detail)
        self._changed()

    @workflow.update
    async def explain_sla(self, request: SlaReasonRequest) -> IncidentStatus:
        """Why the resolution SLA was missed, as the manager was asked when it was breached."""
        return await self._act(request, refusals.explain_sla, self._explain_sla)

    @explain_sla.validator
    def _validate_explain_sla(self, request: SlaReasonRequest) -> None:
        refusals.explain_sla(self.incident, self.request.key, request)

    def _explain_sla(self, request: SlaReasonRequest) -> None:
        self.incident.sla_reason = request.reason
        self._record("sla_reason", tier=self.incident.tier, who=request.by, detail=request.reason)

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
        return self.incident.policy

    async def _until_ready(self) -> None:
        await workflow.wait_condition(lambda: self.incident.snapshot is not None or self.rejection is not None)
        if self.rejection is not None:
            raise Rejected(self.rejection, field=self.rejection_field)

    def _changed(self) -> None:
        self.revision += 1

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
            at=workflow.now(), kind=kind, tier=tier, who=who, detail=detail, channel=channel, due_at=due_at, policy=policy
        )
        self.incident.record(event)
        workflow.logger.info(
            f"{kind}: {detail}" if detail else kind,
            extra={"incident": self.request.key, "tier": tier, "who": who, "channel": channel},
        )

    def _status(self, *, since: int = 0) -> IncidentStatus:
        request = self.request
        return self.incident.status(
            key=request.key, policy=request.policy, summary=request.summary, details=request.details, reporter=request.reporter, since=since
        )

