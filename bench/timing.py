"""Escalation timing: how late the escalation notification starts after the window ends, with M
open incidents whose windows all end within a few seconds.

Escalate: M incidents of the ``bench-burst`` policy are started (tier 1 is paged at once). The
policy counts its windows in business time on a calendar that opens on the first whole minute
after the last of them has started (and their pages have settled), so every tier-1 clock starts at
that same moment; the windows are 2, 3, 4 and 5 s by priority (P1..P4, a quarter of the incidents
each): M deadlines within 4 s, reached through the ordinary escalation path. Once the server and
the worker are idle again, each incident's history gives its lag from the deadline to the start of
the first tier-2 notification activity (``ActivityTaskStarted``), and to the workflow task that
acted on the deadline (the escalation decision).

Bare: M ``BenchBareTimer`` workflows each run one activity at start (as tier 1 is paged), then sleep
until a due time 2, 3, 4 or 5 s after a common moment, then run one activity; the lag is from the
due time to that activity's start. Same server and worker settings, a server of its own. When M is
small it is measured while the escalate incidents wait (idle) for their calendar to open.

Also reported: how fast the burst was worked off (escalation notifications started per second from
the first deadline to the last start), and the CPU the server and the worker used meanwhile.
The start of the burst is planned from a warm-up that measures how fast this machine starts them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.baseline import BARE_ACTIVITY, BareTimerWorkflow, TimerArgs
from bench.harness import (
    THROUGHPUT_POLICY,
    Options,
    bounded,
    burst_policy,
    cpu_seconds,
    event_seconds,
    percentile,
    ratio,
    say,
    stage,
)
from starter.api import Escalations
from workflows.model import NOTIFY_ACTIVITY, workflow_id

WINDOWS = {"P1": 2, "P2": 3, "P3": 4, "P4": 5}
"""Seconds from the common start of the clocks to each priority's deadline."""
PRIORITIES = list(WINDOWS)
TARGET_P99_S = 1.0


def _plan_start(started: float, count: int, rate: float) -> float:
    """When the clocks may start: after all ``count`` have started at ``rate`` (with slack for a
    slower stretch) and their first notifications have settled."""
    starting = count / max(rate, 1.0) * 1.5
    settle = 3.0 + count / 200
    return started + starting + settle


async def _start_rate(count: int, concurrency: int, job: Any) -> float:
    started = time.perf_counter()
    await bounded(concurrency, count, job)
    return count / max(time.perf_counter() - started, 1e-6)


def _lags_from_history(history: Any, due: float, activity_type: str) -> tuple[float, float] | None:
    """From ``due``: seconds to the start of the first ``activity_type`` activity scheduled at or
    after it (the notification), and to the first workflow task that started at or after it (the
    decision); None when the history has no such activity (yet)."""
    scheduled_id = None
    decided = None
    for event in history.events:
        moment = event_seconds(event)
        if decided is None and event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and moment >= due - 0.001:
            decided = moment - due
        if (
            scheduled_id is None
            and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
            and moment >= due - 0.001
        ):
            scheduled_id = event.event_id
        elif (
            scheduled_id is not None
            and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and event.activity_task_started_event_attributes.scheduled_event_id == scheduled_id
        ):
            return moment - due, decided if decided is not None else moment - due
    return None


async def _history_lags(handle: Any, due: float, activity_type: str) -> tuple[float, float] | None:
    try:
        return _lags_from_history(await handle.fetch_history(), due, activity_type)
    except Exception:  # a busy server may time out: asked again on the next round
        return None


async def _collect(count: int, fetch: Any, patience: float = 60.0) -> list[Any]:
    """``fetch(i)`` for every i until each answers (not None), retrying the missing ones for as
    long as more keep answering (giving up after ``patience`` seconds without progress)."""
    results: list[Any] = [None] * count
    progress = time.monotonic()
    while True:
        missing = [i for i, value in enumerate(results) if value is None]
        if not missing:
            return results
        found = await bounded(20, len(missing), lambda j, asked=missing: fetch(asked[j]))
        for i, value in zip(missing, found, strict=True):
            results[i] = value
        if any(value is not None for value in found):
            progress = time.monotonic()
        elif time.monotonic() - progress > patience:
            return results
        await asyncio.sleep(1.0)


async def _drained(pids: list[int], *, quiet: float = 0.15, window: float = 2.0, limit: float = 900.0) -> None:
    """Wait until the server and the worker are idle again (together under ``quiet`` of a core
    over ``window`` seconds): the burst has been worked off."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(window)
        if (sum(cpu_seconds(pid) for pid in pids) - before) / window < quiet:
            return


def _drain_rate(pairs: list[tuple[float, float]]) -> float | None:
    """Escalation notifications started per second, from the first deadline until the last one
    started: how fast this server and worker work off a burst (``pairs``: deadline, lag)."""
    if not pairs:
        return None
    first = min(due for due, _ in pairs)
    last = max(due + lag for due, lag in pairs)
    return round(len(pairs) / max(last - first, 1e-3), 1)


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


async def measure_escalate(options: Options, meanwhile: Callable[[float], Awaitable[None]] | None = None) -> dict[str, Any]:
    """``meanwhile(until)`` runs while the started incidents wait for their clocks to start (their
    server and worker idle), if it can finish by ``until``."""
    count = options.open_incidents
    far = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
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
        opens = datetime.fromtimestamp(math.ceil(ready / 60) * 60, UTC)
        (world.policy_dir / "bench-burst.yaml").write_text(burst_policy(opens, WINDOWS))
        say(options, f"timing escalate: starting {count} incidents (~{rate:.0f}/s), clocks start at {opens:%H:%M:%S} UTC")

        async def start(i: int) -> float:
            opened = await escalations.start_incident(
                policy="bench-burst", key=f"burst-{i}", priority=PRIORITIES[i % len(PRIORITIES)], summary="bench burst"
            )
            assert opened.created and opened.status.triggered_at is not None, f"burst-{i} joined an open incident"
            return opened.status.triggered_at.timestamp()

        began = time.perf_counter()
        triggered = await bounded(options.concurrency, count, start)
        start_seconds = time.perf_counter() - began
        late_starts = sum(1 for moment in triggered if moment >= opens.timestamp())
        # The tier-1 clock starts when the calendar opens (or at the trigger, if that was later).
        dues = [max(moment, opens.timestamp()) + WINDOWS[PRIORITIES[i % len(PRIORITIES)]] for i, moment in enumerate(triggered)]
        say(options, f"timing escalate: started in {start_seconds:.1f}s; {max(0.0, min(dues) - time.time()):.0f}s to the first deadline")
        if meanwhile is not None:
            await _drained([world.server.pid, world.worker.pid], window=1.0)
            await meanwhile(min(dues) - 5.0)
        await _wait_until(min(dues) - 1.0)
        with world.cpu_meter() as cpu:
            await _wait_until(max(dues) + 1.0)
            await _drained([world.server.pid, world.worker.pid])
        say(options, f"timing escalate: worked off {time.time() - min(dues):.0f}s after the first deadline; collecting histories")
        handles = [world.client.get_workflow_handle(workflow_id(f"burst-{i}")) for i in range(count)]
        lags = await _collect(count, lambda i: _history_lags(handles[i], dues[i], NOTIFY_ACTIVITY))
    result = _figures(count, dues, lags, start_seconds, late_starts, cpu)
    say(options, f"timing escalate: p50 {result['lag_to_notification']['p50_s']}s p99 {result['lag_to_notification']['p99_s']}s")
    return result


def _figures(
    count: int, dues: list[float], lags: list[tuple[float, float] | None], start_seconds: float, late_starts: int, cpu: Any
) -> dict[str, Any]:
    found = [(due, lag) for due, lag in zip(dues, lags, strict=False) if lag is not None]
    return {
        "open_incidents": count,
        "deadlines_within_s": round(max(dues) - min(dues), 3),
        "started_per_second": round(count / start_seconds, 2),
        "started_after_clocks_start": late_starts,
        "missing": count - len(found),
        "lag_to_notification": _summary([lag[0] for _, lag in found]),
        "lag_to_decision": _summary([lag[1] for _, lag in found]),
        "escalations_per_second": _drain_rate([(due, lag[0]) for due, lag in found]),
        "cpu_cores_used_during_burst": cpu.shares(),
    }


async def _start_bare(client: Client, task_queue: str, key: str, due: float) -> float:
    await client.start_workflow(
        BareTimerWorkflow.run, TimerArgs(key=key, due=due, step_first=True), id=f"bare-{key}", task_queue=task_queue
    )
    return time.time()


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
        started = await bounded(options.concurrency, count, lambda i: _start_bare(world.client, world.task_queue, f"burst-{i}", dues[i]))
        start_seconds = time.perf_counter() - began
        late_starts = sum(1 for moment in started if moment >= zero)
        await _wait_until(min(dues) - 1.0)
        with world.cpu_meter() as cpu:
            await _wait_until(max(dues) + 1.0)
            await _drained([world.server.pid, world.worker.pid])
        say(options, f"timing bare: worked off {time.time() - min(dues):.0f}s after the first deadline; collecting histories")
        handles = [world.client.get_workflow_handle(f"bare-burst-{i}") for i in range(count)]
        lags = await _collect(count, lambda i: _history_lags(handles[i], dues[i], BARE_ACTIVITY))
    result = _figures(count, dues, lags, start_seconds, late_starts, cpu)
    say(options, f"timing bare: p50 {result['lag_to_notification']['p50_s']}s p99 {result['lag_to_notification']['p99_s']}s")
    return result


def _bare_estimate(options: Options) -> float:
    """A generous guess of how long the bare measurement takes (stage, starts, burst, histories)."""
    return 20.0 + options.open_incidents * 0.2


async def run(options: Options) -> dict[str, Any]:
    bare: dict[str, Any] | None = None

    async def meanwhile(until: float) -> None:
        # The calendar opens on a whole minute, so the started incidents often wait idle for a
        # while: the bare measurement fits in that wait when it is small.
        nonlocal bare
        if until - time.time() > _bare_estimate(options):
            bare = await measure_bare(options)
            bare["measured_while_escalate_incidents_waited"] = True

    escalate = await measure_escalate(options, meanwhile)
    if bare is None:
        bare = await measure_bare(options)
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
