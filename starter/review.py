"""After-action review: replay an incident's recorded history against today's workflow code, and
tell its story from what the replay rebuilt.

The replay is the proof: the report is made from the state the workflow code reaches when it is
fed the recorded history, so if it does not replay (the code changed in a way that is not
replay-safe) the review says so and names the event where the two part ways.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from escalate.temporal import data_converter
from workflows.durations import format_time
from workflows.incident import IncidentWorkflow
from workflows.message_kinds import TO_TIER
from workflows.model import IncidentRequest, IncidentStatus, TimelineEvent, workflow_id
from workflows.policy import PolicySnapshot

Seconds = Annotated[timedelta, PlainSerializer(lambda value: value.total_seconds(), return_type=float, when_used="json")]
"""A duration; in JSON, seconds."""


class ReviewNotPossible(Exception):
    """The incident or its history cannot be had (unknown key, unreadable file)."""


# ── replay ───────────────────────────────────────────────────────────────────────────────────


class ReplayCheck(BaseModel):
    verified: bool
    message: str
    diverged_at_event: int | None = None
    event_type: str | None = None


_CAPTURED: dict[str, Any] = {}
"""Workflow instances rebuilt by the replayer, by workflow id (this module is outside the sandbox,
so what the sandboxed interceptor stores here outlives the replay)."""


class _CaptureInstance(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        _CAPTURED[workflow.info().workflow_id] = workflow.instance()
        return await super().execute_workflow(input)


class _CaptureInterceptor(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CaptureInstance


_DIVERGENCE = [
    # "… does not handle this event: HistoryEvent(id: 62, ActivityTaskScheduled)"
    re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)"),
    # "History is out of order. Last processed event: 47, event id: 49": the second one
    re.compile(r"event id:? (\d+)()", re.IGNORECASE),
    re.compile(r"event (\d+)()", re.IGNORECASE),
]
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
"""The core SDK's own words inside the Rust ``Failure { failure: Some(Failure { message: "…"``."""

_replay_runtime: Runtime | None = None


def _runtime() -> Runtime:
    """A runtime for replays whose core logs go to Python logging, never to stdout (the core's
    console logger writes to stdout, which is where ``escalate replay --format json`` prints its
    report). A replay failure is already in the review, so the core's warning about it is dropped."""
    global _replay_runtime
    if _replay_runtime is None:
        _replay_runtime = Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"),
                    forwarding=LogForwardingConfig(logger=logging.getLogger("escalate.replay")),
                ),
                metrics=None,
            )
        )
    return _replay_runtime


def _describe_event(history: WorkflowHistory, event_id: int) -> str:
    for event in history.events:
        if event.event_id == event_id:
            kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
            detail = ""
            if event.HasField("activity_task_scheduled_event_attributes"):
                detail = f" (activity {event.activity_task_scheduled_event_attributes.activity_type.name})"
            elif event.HasField("timer_started_event_attributes"):
                detail = f" (timer {event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()})"
            at = format_time(event.event_time.ToDatetime(tzinfo=UTC))
            return f"event {event_id}, {kind}{detail}, recorded at {at}"
    return f"event {event_id}"


async def replay(
    history: WorkflowHistory, workflows: list[type] | None = None
) -> tuple[ReplayCheck, IncidentWorkflow | None]:
    """Replay ``history`` with today's code; the check, and the workflow state it rebuilt."""
    from worker import workflow_runner

    replayer = Replayer(
        workflows=workflows or [IncidentWorkflow],
        workflow_runner=workflow_runner(),
        data_converter=data_converter(),
        interceptors=[_CaptureInterceptor()],
        runtime=_runtime(),
    )
    _CAPTURED.pop(history.workflow_id, None)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    instance = _CAPTURED.pop(history.workflow_id, None)
    if result.replay_failure is None:
        return ReplayCheck(verified=True, message="the recorded history replays with today's code"), instance
    text = str(result.replay_failure)
    match = next((found for pattern in _DIVERGENCE if (found := pattern.search(text))), None)
    event_id = int(match.group(1)) if match else None
    event_type = match.group(2) if match and match.group(2) else None
    where = f" at {_describe_event(history, event_id)}" if event_id else ""
    core = _CORE_MESSAGE.search(text)
    first_line = core.group(1) if core else (text.splitlines()[0] if text else type(result.replay_failure).__name__)
    if "nondeterminism" in text.lower():
        why = "The code has changed in a way that is not replay-safe (guard such changes with workflow.patched)."
    else:
        why = "The history itself may be damaged or cut short (it was not written as Temporal wrote it)."
    message = (
        f"the recorded history does NOT replay with today's workflow code: it diverges{where}. "
        f"{why} Replayer: {first_line[:400]}"
    )
    return ReplayCheck(verified=False, message=message, diverged_at_event=event_id, event_type=event_type), instance


def incident_key_of(history: WorkflowHistory) -> str:
    """The incident key, from the workflow's input in the first event."""
    started = history.events[0].workflow_execution_started_event_attributes
    converter = data_converter()
    payloads = list(started.input.payloads)
    codec = converter.payload_codec
    if codec is not None and hasattr(codec, "decode_now"):
        payloads = codec.decode_now(payloads)
    request: IncidentRequest
    [request] = converter.payload_converter.from_payloads(payloads, [IncidentRequest])
    return request.key


def load_history_file(path: Path) -> WorkflowHistory:
    """A history in Temporal's JSON format (``escalate export``, ``temporal workflow show
    --output json``, the UI's download)."""
    try:
        text = Path(path).read_text()
        history = WorkflowHistory.from_json("unknown", text)
        if not history.events:
            raise ValueError("it has no events")
        key = incident_key_of(history)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ReviewNotPossible(f"{path}: not an incident history in Temporal's JSON format ({err})") from None
    return WorkflowHistory(workflow_id(key), history.events)


# ── the report ───────────────────────────────────────────────────────────────────────────────

StintEnd = Literal["acknowledged", "escalated", "skipped", "exhausted", "reassigned", "snoozed", "resolved", "open"]


class TierStint(BaseModel):
    """One spell of one tier holding the incident."""

    policy: str
    tier: int
    tier_name: str
    started_at: datetime
    ended_at: datetime | None
    held_for: Seconds | None
    ended_by: StintEnd
    paged: list[str] = Field(default_factory=list)
    unreached: list[str] = Field(default_factory=list)
    answered_by: str | None = None


class TierAck(BaseModel):
    tier: int
    tier_name: str
    policy: str
    acknowledged_after: Seconds | None
    """From the moment this tier was paged to its acknowledgement; None if it never acknowledged."""
    held_for: Seconds | None


class NotificationRecord(BaseModel):
    at: datetime
    tier: int | None
    who: str | None
    channel: str | None
    outcome: Literal["delivered", "logged", "failed"]
    detail: str


class SlaOutcome(BaseModel):
    resolve_by: datetime | None
    breached: bool
    breached_at: datetime | None = None
    met: bool | None = None
    """True/False once resolved; None while open (or without an SLA)."""
    reason: str | None = None


class Review(BaseModel):
    model_config = ConfigDict(ser_json_timedelta="float")

    key: str
    summary: str
    priority: str
    policy: str
    status: str
    reporter: str | None
    triggered_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    time_to_acknowledge: Seconds | None
    time_to_resolve: Seconds | None
    acknowledgement_by_tier: list[TierAck]
    stints: list[TierStint]
    tiers_paged: list[str]
    escalations: int
    occurrences: int
    notifications: list[NotificationRecord]
    sla: SlaOutcome
    policies: list[PolicySnapshot]
    timeline: list[TimelineEvent]
    replay: ReplayCheck
    source: str


def _first(events: list[TimelineEvent], kind: str) -> TimelineEvent | None:
    return next((event for event in events if event.kind == kind), None)


def build_stints(status: IncidentStatus, policies: list[PolicySnapshot]) -> list[TierStint]:
    """Who held the incident when, from the timeline: each tier's spell, how it ended, who was
    paged in it and who answered."""
    names = {snapshot.name: snapshot for snapshot in policies}
    policy = policies[0].name if policies else status.policy
    stints: list[TierStint] = []
    current: TierStint | None = None

    def tier_name(policy_name: str, tier: int) -> str:
        snapshot = names.get(policy_name)
        return snapshot.tier_name(tier) if snapshot and 0 < tier <= snapshot.tier_count else f"tier {tier}"

    def close(at: datetime, how: StintEnd, who: str | None = None) -> None:
        nonlocal current
        if current is not None:
            current.ended_at = at
            current.held_for = at - current.started_at
            current.ended_by = how
            current.answered_by = who
            stints.append(current)
            current = None

    def open_(at: datetime, tier: int) -> None:
        nonlocal current
        current = TierStint(
            policy=policy, tier=tier, tier_name=tier_name(policy, tier), started_at=at, ended_at=None,
            held_for=None, ended_by="open",
        )

    for event in status.timeline:
        moment = event.due_at or event.at
        if event.kind == "triggered":
            policy = event.policy or policy
            open_(status.triggered_at or event.at, event.tier or 1)
        elif event.kind == "escalated":
            close(moment, "escalated")
            open_(moment, event.tier or 1)
        elif event.kind == "reassigned":
            close(event.at, "reassigned")
            policy = event.policy or policy
            open_(event.at, 1)
        elif event.kind == "acknowledged":
            close(event.at, "acknowledged", event.who)
        elif event.kind == "snoozed":
            close(event.at, "snoozed")
        elif event.kind in ("woke", "released", "ack_expired"):
            if current is None:  # paged again (an expired ack, a snooze or maintenance over)
                open_(moment, event.tier or 1)
        elif event.kind == "held":
            current = None  # nobody held it: a maintenance window kept the tier from being paged
        elif event.kind == "skipped":
            close(moment, "skipped")
        elif event.kind == "exhausted":
            close(moment, "exhausted")
        elif event.kind == "resolved":
            close(event.at, "resolved", event.who)
        elif event.kind in ("notified", "notify_failed") and current is not None and event.tier == current.tier:
            if event.detail.split(" via ")[0] in TO_TIER and event.who:
                target = current.paged if event.kind == "notified" else current.unreached
                if event.who not in target:
                    target.append(event.who)
    if current is not None:
        stints.append(current)
    for stint in stints:
        stint.unreached = [who for who in stint.unreached if who not in stint.paged]
    return stints


def _notifications(timeline: list[TimelineEvent]) -> list[NotificationRecord]:
    return [
        NotificationRecord(
            at=event.at,
            tier=event.tier,
            who=event.who,
            channel=event.channel,
            outcome="failed" if event.kind == "notify_failed" else ("logged" if ": logged" in event.detail else "delivered"),
            detail=event.detail,
        )
        for event in timeline
        if event.kind in ("notified", "notify_failed")
    ]


def _tiers_paged(stints: list[TierStint]) -> list[str]:
    """Each tier that held the incident, once, in the order they first did."""
    labels = (f"{stint.policy} tier {stint.tier} ({stint.tier_name})" for stint in stints)
    return list(dict.fromkeys(labels))


def _sla_outcome(status: IncidentStatus) -> SlaOutcome:
    breach = _first(status.timeline, "sla_breached")
    return SlaOutcome(
        resolve_by=status.resolve_by,
        breached=status.sla_breached,
        breached_at=breach.at if breach else None,
        met=(not status.sla_breached) if status.status == "resolved" and status.resolve_by else None,
        reason=status.sla_reason,
    )


def build_review(status: IncidentStatus, policies: list[PolicySnapshot], check: ReplayCheck, source: str) -> Review:
    timeline = status.timeline
    triggered = status.triggered_at
    acked = _first(timeline, "acknowledged")
    resolved = _first(timeline, "resolved")
    stints = build_stints(status, policies)
    return Review(
        key=status.key,
        summary=status.summary,
        priority=status.priority,
        policy=status.policy,
        status=status.status,
        reporter=status.reporter,
        triggered_at=triggered,
        acknowledged_at=acked.at if acked else None,
        acknowledged_by=acked.who if acked else None,
        resolved_at=status.resolved_at,
        resolved_by=status.resolved_by,
        resolution=status.resolution,
        time_to_acknowledge=acked.at - triggered if acked and triggered else None,
        time_to_resolve=resolved.at - triggered if resolved and triggered else None,
        acknowledgement_by_tier=[
            TierAck(
                tier=stint.tier,
                tier_name=stint.tier_name,
                policy=stint.policy,
                acknowledged_after=stint.held_for if stint.ended_by == "acknowledged" else None,
                held_for=stint.held_for,
            )
            for stint in stints
        ],
        stints=stints,
        tiers_paged=_tiers_paged(stints),
        escalations=sum(1 for event in timeline if event.kind == "escalated"),
        occurrences=status.occurrences,
        notifications=_notifications(timeline),
        sla=_sla_outcome(status),
        policies=policies,
        timeline=timeline,
        replay=check,
        source=source,
    )


async def review_history(history: WorkflowHistory, source: str, workflows: list[type] | None = None) -> Review:
    """Replay the history and review the incident; the review says whether the replay held."""
    check, instance = await replay(history, workflows)
    if instance is None or not instance.incident.timeline:
        raise ReviewNotPossible(f"{source}: the history could not be replayed far enough to review: {check.message}")
    return build_review(instance.get_status(), list(instance.incident.policies_in_force), check, source)


def whole_timeline(instances: list[Any]) -> list[TimelineEvent]:
    """The timeline of a chain of runs with nothing folded: what each run recorded itself, past
    the story it was handed, in order (a new run carries the oldest routine entries folded into
    a count; each run's own replay still holds the ones it recorded)."""
    story: list[TimelineEvent] = []
    for instance in instances:
        carried = instance.request.carried
        handed = list(carried.timeline) if carried is not None else []
        timeline = list(instance.incident.timeline)
        same = 0
        while same < min(len(handed), len(timeline)) and handed[same] == timeline[same]:
            same += 1
        story.extend(timeline[same:])
    return story


async def incident_histories(client: Client, key: str) -> list[WorkflowHistory]:
    """The histories of the incident's runs, oldest first: a long-lived incident continues as
    new runs, each carrying the story so far."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    try:
        while True:
            history = await client.get_workflow_handle(workflow_id(key), run_id=run_id).fetch_history()
            histories.insert(0, history)
            run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
            if not run_id:
                return histories
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND and not histories:
            raise ReviewNotPossible(f"no incident with key {key!r}") from None
        raise


async def review_incident(client: Client, key: str) -> Review:
    """Fetch the incident's histories from Temporal, replay every run, and review it."""
    histories = await incident_histories(client, key)
    source = f"Temporal history of {workflow_id(key)}"
    if len(histories) == 1:
        return await review_history(histories[0], source)
    earlier = [await replay(history) for history in histories[:-1]]
    review = await review_history(histories[-1], f"{source} ({len(histories)} runs)")
    if any(event.kind == "folded" for event in review.timeline):
        _, last = await replay(histories[-1])
        instances = [instance for _, instance in earlier] + [last]
        if last is not None and all(instance is not None for instance in instances):
            status = last.get_status().model_copy(update={"timeline": whole_timeline(instances)})
            review = build_review(status, list(last.incident.policies_in_force), review.replay, review.source)
    failed = next((check for check, _ in earlier if not check.verified), None)
    if failed is not None:
        review.replay = failed
    elif review.replay.verified:
        review.replay = ReplayCheck(
            verified=True, message=f"all {len(histories)} runs of the recorded history replay with today's code"
        )
    return review


async def export_history(client: Client, key: str, path: Path) -> int:
    """Write the history in Temporal's JSON format; the number of events."""
    try:
        history = await client.get_workflow_handle(workflow_id(key)).fetch_history()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ReviewNotPossible(f"no incident with key {key!r}") from None
        raise
    Path(path).write_text(history.to_json())
    return len(history.events)


# ── across incidents ─────────────────────────────────────────────────────────────────────────


class TierEscalations(BaseModel):
    tier: int
    escalated_to: int


class PolicyReport(BaseModel):
    model_config = ConfigDict(ser_json_timedelta="float")

    policy: str | None
    since: datetime
    incidents: int
    resolved: int
    acknowledged: int
    mean_time_to_acknowledge: Seconds | None
    median_time_to_acknowledge: Seconds | None
    mean_time_to_resolve: Seconds | None
    median_time_to_resolve: Seconds | None
    escalations_by_tier: list[TierEscalations]
    sla_breaches: int
    sla_breach_rate: float | None
    busiest_responders: list[tuple[str, int]]
    """People by how many incidents they acknowledged or resolved."""
    keys: list[str]


def _mean(values: list[timedelta]) -> timedelta | None:
    return sum(values, timedelta(0)) / len(values) if values else None


def _median(values: list[timedelta]) -> timedelta | None:
    return timedelta(seconds=statistics.median(value.total_seconds() for value in values)) if values else None


def summarise(incidents: list[IncidentStatus], policy: str | None, since: datetime) -> PolicyReport:
    """Count, mean/median time to acknowledge and resolve, escalations per tier, SLA breach rate,
    busiest responders."""
    to_ack: list[timedelta] = []
    to_resolve: list[timedelta] = []
    escalated_to: Counter[int] = Counter()
    responders: Counter[str] = Counter()
    known = breaches = 0
    for status in incidents:
        acked = _first(status.timeline, "acknowledged")
        if acked and status.triggered_at:
            to_ack.append(acked.at - status.triggered_at)
        if status.resolved_at and status.triggered_at:
            to_resolve.append(status.resolved_at - status.triggered_at)
        for event in status.timeline:
            if event.kind == "escalated" and event.tier:
                escalated_to[event.tier] += 1
        people = {event.who for event in status.timeline if event.kind in ("acknowledged", "resolved") and event.who}
        responders.update(people)
        if status.resolve_by and (status.sla_breached or status.status == "resolved"):
            known += 1  # met or missed: an open incident inside its SLA is neither yet
            breaches += status.sla_breached
    return PolicyReport(
        policy=policy,
        since=since,
        incidents=len(incidents),
        resolved=sum(1 for status in incidents if status.status == "resolved"),
        acknowledged=len(to_ack),
        mean_time_to_acknowledge=_mean(to_ack),
        median_time_to_acknowledge=_median(to_ack),
        mean_time_to_resolve=_mean(to_resolve),
        median_time_to_resolve=_median(to_resolve),
        escalations_by_tier=[TierEscalations(tier=tier, escalated_to=count) for tier, count in sorted(escalated_to.items())],
        sla_breaches=breaches,
        sla_breach_rate=breaches / known if known else None,
        busiest_responders=responders.most_common(5),
        keys=[status.key for status in incidents],
    )


async def incidents_since(client: Client, since: datetime, policy: str | None) -> list[IncidentStatus]:
    """Every incident started since ``since``, still running or completed (not failed or
    terminated), optionally of one policy."""
    from starter.api import Escalations, IncidentNotFound, IncidentRejected

    escalations = Escalations(client)
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f'WorkflowType="Incident" AND StartTime >= "{stamp}"'
    found: list[IncidentStatus] = []
    seen: set[str] = set()
    async for execution in client.list_workflows(query):
        if execution.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
            continue
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id, result_type=IncidentStatus)
        try:
            if execution.status == WorkflowExecutionStatus.COMPLETED:
                status = await handle.result(follow_runs=False)
            else:
                status = await escalations.status(execution.id.removeprefix(workflow_id("")))
        except (IncidentNotFound, IncidentRejected, RPCError):
            continue
        if (policy is None or status.policy == policy) and (execution.run_id not in seen):
            seen.add(execution.run_id)
            found.append(status)
    found.sort(key=lambda status: status.triggered_at or since)
    return found

