"""Delivery: how an incident's messages reach people, one background task per message.

A plain class the incident workflow owns (as the samples' ``UpdatableTimer`` is), so that a slow
or failing channel never holds up the timers that drive the escalation. Retries are driven from
here rather than by the activity's retry policy: every attempt is recorded in the timeline, and
an acknowledgement (or any change of hands) stops all further attempts at once, without
cancelling an activity already on the wire (see docs/adr/0003-workflow-driven-notification-retries.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import decisions
    from workflows.durations import format_duration
    from workflows.errors import PERMANENT_DELIVERY_FAILURE, error_type, reason, retry_after
    from workflows.message_kinds import traits
    from workflows.metrics import IncidentMetrics
    from workflows.model import LOG_CHANNEL, NOTIFY_ACTIVITY, Delivery, EventKind, Notification
    from workflows.policy import ContactPoint, Person, PolicySnapshot

SINGLE_ATTEMPT = RetryPolicy(maximum_attempts=1)
NOTIFY_TIMEOUT = timedelta(seconds=30)

Outcome = Literal["reached", "failed", "stopped"]
"""How reaching one person ended: a channel took the message, every channel failed, or the
paging round it belonged to ended first (an ack, a change of hands, the resolution)."""


class Recorder(Protocol):
    def __call__(
        self, kind: EventKind, *, tier: int | None = ..., who: str | None = ..., detail: str = ..., channel: str | None = ...
    ) -> None: ...


@dataclass
class TierReach:
    """How the pages of one tier fared, to tell the manager when nobody could be reached."""

    tier: int
    people: int
    done: int = 0
    reached: int = 0
    unreachable: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome, person: str) -> None:
        self.done += 1
        if outcome == "reached":
            self.reached += 1
        elif outcome == "failed":
            self.unreachable.append(person)

    def nobody_reached(self) -> bool:
        """Every person of the tier tried, and every one of them failed on every channel."""
        return self.done == self.people and self.reached == 0 and len(self.unreachable) == self.people


class Paging:
    """The deliveries of one incident's run.

    ``round`` numbers the paging rounds: a page belongs to the round it was sent in, and makes no
    further attempt once the round is over (``stop``). Messages sent with no round (notices to
    the manager or the reporter) always go. ``in_flight`` counts the deliveries not yet done: a
    run closes or continues as new only once it is zero.
    """

    def __init__(
        self,
        *,
        policy: Callable[[], PolicySnapshot],
        resolved: Callable[[], bool],
        record: Recorder,
        metrics: IncidentMetrics,
        tier_unreachable: Callable[[TierReach], None],
    ) -> None:
        self._policy = policy
        self._resolved = resolved
        self._record = record
        self._metrics = metrics
        self._tier_unreachable = tier_unreachable
        self.round = 0
        self.in_flight = 0

    def stop(self) -> None:
        """Pages of earlier rounds make no further attempt; one already on the wire finishes."""
        self.round += 1

    def wanted(self, paging_round: int | None) -> bool:
        """Pages stop at an ack or any change of hands; notices (manager, reporter) always go."""
        if paging_round is None:
            return True
        return not self._resolved() and paging_round == self.round

    def send(self, message: Notification, points: list[ContactPoint], *, paging_round: int | None, reach: TierReach | None = None) -> None:
        """Reach one person on their channels, in the background."""
        self.in_flight += 1
        asyncio.create_task(self._deliver(message, points, paging_round, reach))

    def follow_rules(self, message: Notification, contact: Person, reach: TierReach | None) -> None:
        """Page one person by their contact rules, in the background, in the current round."""
        self.in_flight += 1
        asyncio.create_task(self._follow_rules(message, contact, self.round, reach))

    async def _deliver(
        self, message: Notification, points: list[ContactPoint], paging_round: int | None, reach: TierReach | None
    ) -> None:
        outcome: Outcome = "stopped"
        try:
            outcome = await self._reach(message, points, paging_round)
        finally:
            self.in_flight -= 1
            if reach is not None:
                self._count(reach, outcome, paging_round, message.person)

    async def _follow_rules(self, message: Notification, contact: Person, paging_round: int, reach: TierReach | None) -> None:
        """A person's contact rules: each step at its time after the page, on its channel, until
        the tier acknowledges (or anything else ends this paging round): then no step is left."""
        paged_at = workflow.now()
        try:
            for step, rule in enumerate(contact.rules, 1):
                due = paged_at + rule.after
                if due > workflow.now():
                    summary = f"{message.person}: contact step {step} via {rule.via}"
                    await self._wait_while_wanted(paging_round, due - workflow.now(), summary)
                if not self.wanted(paging_round):
                    return
                point = next(point for point in contact.channels if point.channel == rule.via)
                step_message = message.model_copy(update={"idempotency_key": f"{message.idempotency_key}/step{step}"})
                outcome = await self._reach(step_message, [point], paging_round)
                if step == 1 and reach is not None:
                    self._count(reach, outcome, paging_round, message.person)
                    reach = None
        finally:
            self.in_flight -= 1
            if reach is not None:  # stopped before the first step got anywhere
                self._count(reach, "stopped", paging_round, message.person)

    async def _reach(self, message: Notification, points: list[ContactPoint], paging_round: int | None) -> Outcome:
        """Reach one person: their channels in the order the directory lists them, falling over
        to the next when one fails for good. Channels no worker can send on (no SMTP configured,
        say) are passed over; if that leaves nothing, the message goes to the worker log, so
        that it is never silently dropped."""
        skipped: list[str] = []
        failed = False
        for point in points:
            if point.channel in self._policy().channels_off:
                self._metrics.not_configured(point.channel)
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
        if not self.wanted(paging_round):
            return "stopped"
        address = points[0].address
        outcome = await self._attempt_channel(message, paging_round, LOG_CHANNEL, address)
        if isinstance(outcome, Delivery):
            self._record_delivery(message, outcome, address, skipped)
            return "reached"
        return "failed" if outcome != "stopped" else "stopped"

    def _count(self, reach: TierReach, outcome: Outcome, paging_round: int | None, person: str) -> None:
        reach.count(outcome, person)
        if reach.nobody_reached() and self.wanted(paging_round):
            self._tier_unreachable(reach)

    async def _attempt_channel(
        self, message: Notification, paging_round: int | None, channel: str, address: str
    ) -> Delivery | Literal["not configured", "failed", "stopped"]:
        """Up to NOTIFY_ATTEMPTS attempts on one channel, the idempotency key the same on each."""
        notification = message.model_copy(
            update={"channel": channel, "address": address, "idempotency_key": f"{message.idempotency_key}/{channel}"}
        )
        for attempt in range(1, decisions.NOTIFY_ATTEMPTS + 1):
            if not self.wanted(paging_round):
                return "stopped"
            try:
                delivery: Delivery = await workflow.execute_activity(
                    NOTIFY_ACTIVITY,
                    notification,
                    result_type=Delivery,
                    start_to_close_timeout=NOTIFY_TIMEOUT,
                    retry_policy=SINGLE_ATTEMPT,
                    summary=f"{traits(message.kind).verb} {message.person} via {channel}",
                )
                return "not configured" if delivery.outcome == "not_configured" else delivery
            except ActivityError as err:
                retry_in = decisions.notify_retry_delay(attempt, retry_after(err))
                if error_type(err) == PERMANENT_DELIVERY_FAILURE:
                    retry_in = None
                verdict = "giving up on this channel" if retry_in is None else f"retrying in {format_duration(retry_in)}"
                self._record(
                    "notify_failed",
                    tier=message.tier,
                    who=message.person,
                    channel=channel,
                    detail=f"{message.kind} via {channel} to {address}, attempt {attempt}: {reason(err)}; {verdict}",
                )
                if retry_in is None:
                    return "failed"
                await self._wait_while_wanted(paging_round, retry_in, f"retry {channel} to {message.person}")
        return "failed"

    async def _wait_while_wanted(self, paging_round: int | None, timeout: timedelta, summary: str) -> None:
        """Wait ``timeout`` on a timer, or less if the paging round ends meanwhile."""
        try:
            await workflow.wait_condition(lambda: not self.wanted(paging_round), timeout=timeout, timeout_summary=summary)
        except TimeoutError:
            pass

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
