"""Escalation timing: how late the escalation notification starts after the window ends, with M
open incidents whose windows all end within a few seconds.

Escalate: M incidents of the ``bench-burst`` policy are started (tier 1 is paged at once). The
policy counts its windows in business time on a calendar that opens at one whole minute after the
last of them has started, so every tier-1 clock starts at that same moment; the windows are 2, 3,
4 and 5 s by priority (P1..P4, a quarter of the incidents each): M deadlines within 4 s. For each
incident the lag is measured from its deadline (the ``escalated`` event's ``due_at``) to the start
of the first tier-2 notification activity (``ActivityTaskStarted`` in its history), and also to the
escalation decision (the ``escalated`` event's time, i.e. the workflow task that acted on it).

Bare: M ``BenchBareTimer`` workflows each run one activity at start (as tier 1 is paged), then sleep
until a due time 2, 3, 4 or 5 s after a common moment, then run one activity; the lag is from the
due time to that activity's start. Same server, worker and start settings.

The start of the burst is planned from a warm-up that measures how fast this machine starts them.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.baseline import BARE_ACTIVITY, BareTimerWorkflow, TimerArgs
from bench.harness import (
    THROUGHPUT_POLICY,
    Options,
    bounded,
    burst_policy,
    event_seconds,
    percentile,
    ratio,
    say,
    stage,
)
from starter.api import Escalations
from workflows.incident import IncidentWorkflow
from workflows.model import NOTIFY_ACTIVITY, workflow_id

WINDOWS = {"P1": 2, "P2": 3, "P3": 4, "P4": 5}
"""Seconds from the common start of the clocks to each priority's deadline."""
PRIORITIES = list(WINDOWS)
TARGET_P99_S = 1.0


def _plan_start(started: float, count: int, rate: float) -> float:
    """When the clocks may start: after all ``count`` have started at ``rate`` (with slack for a
    slower stretch) and their first notifications have settled."""
    starting = count / max(rate, 1.0) * 1.3
    settle = 3.0 + count / 400
    return started + starting + settle


async def _start_rate(count: int, concurrency: int, job: Any) -> float:
    started = time.perf_counter()
    await bounded(concurrency, count, job)
    return count / max(time.perf_counter() - started, 1e-6)


def _lag_from_history(history: Any, due: float, activity_type: str) -> float | None:
    """Seconds from ``due`` to the start of the first ``activity_type`` activity scheduled at or
    after it; None when there is none (yet)."""
    scheduled_id = None
    for event in history.events:
        if (
            scheduled_id is None
            and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
            and event_seconds(event) >= due - 0.001
        ):
            scheduled_id = event.event_id
        elif (
            scheduled_id is not None
            and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and event.activity_task_started_event_attributes.scheduled_event_id == scheduled_id
        ):
            return event_seconds(event) - due
    return None


async def _collect(count: int, fetch: Any, deadline_s: float = 180.0) -> list[Any]:
    """``fetch(i)`` for every i until each answers (not None), retrying the missing ones."""
    results: list[Any] = [None] * count
    give_up = time.monotonic() + deadline_s
    while True:
        missing = [i for i, value in enumerate(results) if value is None]
        if not missing:
            return results
        found = await bounded(20, len(missing), lambda j: fetch(missing[j]))
        for i, value in zip(missing, found):
            results[i] = value
        if all(value is not None for value in results) or time.monotonic() > give_up:
            return results
        await asyncio.sleep(1.0)


def _summary(lags: list[float]) -> dict[str, Any]:
    return {
        "count": len(lags),
        "p50_s": round(percentile(lags, 0.5), 3),
        "p99_s": round(percentile(lags, 0.99), 3),
        "max_s": round(max(lags), 3) if lags else 0.0,
        "mean_s": round(sum(lags) / len(lags), 3) if lags else 0.0,
    }


async def _wait_until(moment: float) -> None:
    left = moment - time.time()
    if left > 0:
        await asyncio.sleep(left)


async def measure_escalate(options: Options) -> dict[str, Any]:
    count = options.open_incidents
    far = (datetime.now(timezone.utc) + timedelta(days=2)).replace(second=0, microsecond=0)
    policies = {"bench": THROUGHPUT_POLICY, "bench-burst": burst_policy(far, WINDOWS)}
    async with stage(options, "escalate", "timing-escalate", policies=policies) as world:
        escalations = Escalations(world.client, world.task_queue)

        async def warm(i: int) -> None:
            await escalations.start_incident(policy="bench", key=f"warm-{i}", priority="P3", summary="warm-up")

        warmups = max(2, min(40, count // 50))
        rate = await _start_rate(warmups, options.concurrency, warm)
        await bounded(options.concurrency, warmups, lambda i: escalations.resolve(f"warm-{i}", by="t1", resolution="warm-up"))
        # The calendar opens on a whole minute: the first one after the planned moment.
        ready = _plan_start(time.time(), count, rate)
        opens = datetime.fromtimestamp(math.ceil(ready / 60) * 60, timezone.utc)
        (world.policy_dir / "bench-burst.yaml").write_text(burst_policy(opens, WINDOWS))
        say(options, f"timing escalate: starting {count} incidents (~{rate:.0f}/s), clocks start at {opens:%H:%M:%S} UTC")

        async def start(i: int) -> float | None:
            opened = await escalations.start_incident(
                policy="bench-burst", key=f"burst-{i}", priority=PRIORITIES[i % len(PRIORITIES)], summary="bench burst"
            )
            assert opened.created, f"burst-{i} joined an open incident"
            return opened.status.triggered_at.timestamp() if opened.status.triggered_at else None

        began = time.perf_counter()
        triggered = await bounded(options.concurrency, count, start)
        start_seconds = time.perf_counter() - began
        late_starts = sum(1 for moment in triggered if moment is not None and moment >= opens.timestamp())
        first_due = opens.timestamp() + min(WINDOWS.values())
        last_due = opens.timestamp() + max(WINDOWS.values())
        say(options, f"timing escalate: started in {start_seconds:.1f}s; {max(0.0, first_due - time.time()):.0f}s to the first deadline")
        await _wait_until(first_due - 1.0)
        with world.cpu_meter() as cpu:
            await _wait_until(last_due + 2.0)
        say(options, "timing escalate: collecting histories")
        handles = [world.client.get_workflow_handle_for(IncidentWorkflow.run, workflow_id(f"burst-{i}")) for i in range(count)]

        async def due_of(i: int) -> tuple[float, float] | None:
            status = await handles[i].query(IncidentWorkflow.get_status)
            escalated = [event for event in status.timeline if event.kind == "escalated" and event.tier == 2]
            if not escalated or escalated[0].due_at is None:
                return None
            return escalated[0].due_at.timestamp(), escalated[0].at.timestamp()

        dues = await _collect(count, due_of)

        async def lag_of(i: int) -> float | None:
            if dues[i] is None:
                return None
            history = await handles[i].fetch_history()
            return _lag_from_history(history, dues[i][0], NOTIFY_ACTIVITY)

        lags = await _collect(count, lag_of)
    measured = [lag for lag in lags if lag is not None]
    decisions = [at - due for due, at in (d for d in dues if d is not None)]
    spread = [due for due, _ in (d for d in dues if d is not None)]
    result = {
        "open_incidents": count,
        "deadlines_within_s": round(max(spread) - min(spread), 3) if spread else None,
        "started_per_second": round(count / start_seconds, 2),
        "started_after_clocks_start": late_starts,
        "missing": count - len(measured),
        "lag_to_notification": _summary(measured),
        "lag_to_decision": _summary(decisions),
        "cpu_cores_used_during_burst": cpu.shares(),
    }
    say(options, f"timing escalate: p50 {result['lag_to_notification']['p50_s']}s p99 {result['lag_to_notification']['p99_s']}s")
    return result


async def _start_bare(client: Client, task_queue: str, key: str, due: float) -> None:
    await client.start_workflow(
        BareTimerWorkflow.run, TimerArgs(key=key, due=due, step_first=True), id=f"bare-{key}", task_queue=task_queue
    )


async def measure_bare(options: Options) -> dict[str, Any]:
    count = options.open_incidents
    async with stage(options, "bare", "timing-bare") as world:
        far = time.time() + 86400

        async def warm(i: int) -> None:
            await _start_bare(world.client, world.task_queue, f"warm-{i}", far)

        warmups = max(2, min(40, count // 50))
        rate = await _start_rate(warmups, options.concurrency, warm)
        zero = _plan_start(time.time(), count, rate)
        dues = [zero + WINDOWS[PRIORITIES[i % len(PRIORITIES)]] for i in range(count)]
        say(options, f"timing bare: starting {count} timer workflows (~{rate:.0f}/s)")
        began = time.perf_counter()
        await bounded(options.concurrency, count, lambda i: _start_bare(world.client, world.task_queue, f"burst-{i}", dues[i]))
        start_seconds = time.perf_counter() - began
        late_starts = sum(1 for due in dues if due - min(WINDOWS.values()) < time.time())
        await _wait_until(min(dues) - 1.0)
        with world.cpu_meter() as cpu:
            await _wait_until(max(dues) + 2.0)
        say(options, "timing bare: collecting histories")
        handles = [world.client.get_workflow_handle(f"bare-burst-{i}") for i in range(count)]

        async def lag_of(i: int) -> float | None:
            history = await handles[i].fetch_history()
            return _lag_from_history(history, dues[i], BARE_ACTIVITY)

        lags = await _collect(count, lag_of)
    measured = [lag for lag in lags if lag is not None]
    result = {
        "open_incidents": count,
        "deadlines_within_s": round(max(dues) - min(dues), 3),
        "started_per_second": round(count / start_seconds, 2),
        "started_after_clocks_start": late_starts,
        "missing": count - len(measured),
        "lag_to_notification": _summary(measured),
        "cpu_cores_used_during_burst": cpu.shares(),
    }
    say(options, f"timing bare: p50 {result['lag_to_notification']['p50_s']}s p99 {result['lag_to_notification']['p99_s']}s")
    return result


async def run(options: Options) -> dict[str, Any]:
    bare = await measure_bare(options)
    escalate = await measure_escalate(options)
    p99 = escalate["lag_to_notification"]["p99_s"]
    return {
        "what": (
            f"{options.open_incidents} open incidents whose windows end within a few seconds: lag from each deadline "
            "to the start of its escalation notification"
        ),
        "escalate": escalate,
        "bare": bare,
        "ratio_p99": ratio(p99, bare["lag_to_notification"]["p99_s"]),
        "target": f"p99 < {TARGET_P99_S:g} s",
        "meets_target": escalate["missing"] == 0 and p99 < TARGET_P99_S,
    }
