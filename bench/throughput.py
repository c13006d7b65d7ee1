"""Throughput: incidents per second end to end, beside the bare baseline.

One incident: start (the starter API's update-with-start) → wait until tier 1 has been notified
(status query, every ``poll_interval``) → acknowledge → resolve → the workflow's result (after
the resolution notices have gone out). The bare baseline does the same job with one activity:
start → wait until the activity ran (a query, same interval) → signal → result. Both run with the
same concurrency on a fresh dev server each, with the same worker settings. A few warm-up runs
(not counted) go first, so the sandbox's first imports are not in the figure.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.baseline import BareWorkflow
from bench.harness import Options, bounded, percentile, ratio, say, stage
from starter.api import Escalations
from workflows.incident import IncidentWorkflow
from workflows.model import workflow_id


def warmup_count(options: Options) -> int:
    return max(1, min(20, options.incidents // 20))


async def _escalate_flow(escalations: Escalations, key: str, poll: float) -> None:
    opened = await escalations.start_incident(policy="bench", key=key, priority="P3", summary="bench incident")
    assert opened.created, f"{key} joined an open incident"
    handle = escalations.client.get_workflow_handle_for(IncidentWorkflow.run, workflow_id(key))
    status = opened.status
    while not any(event.kind == "notified" and event.tier == 1 for event in status.timeline):
        await asyncio.sleep(poll)
        status = await handle.query(IncidentWorkflow.get_status)
    await escalations.acknowledge(key, by="t1")
    await escalations.resolve(key, by="t1", resolution="bench")
    final = await handle.result()
    assert final.status == "resolved", final.status


async def _bare_flow(stage_client: Any, task_queue: str, key: str, poll: float) -> None:
    handle = await stage_client.start_workflow(BareWorkflow.run, key, id=f"bare-{key}", task_queue=task_queue)
    while not await handle.query(BareWorkflow.done_step):
        await asyncio.sleep(poll)
    await handle.signal(BareWorkflow.release)
    assert await handle.result() == key


async def measure(options: Options, kind: str) -> dict[str, Any]:
    async with stage(options, kind, f"throughput-{kind}") as world:
        escalations = Escalations(world.client, world.task_queue)

        async def one(key: str) -> float:
            started = time.perf_counter()
            if kind == "escalate":
                await _escalate_flow(escalations, key, options.poll_interval)
            else:
                await _bare_flow(world.client, world.task_queue, key, options.poll_interval)
            return time.perf_counter() - started

        warm = warmup_count(options)
        await bounded(options.concurrency, warm, lambda i: one(f"warm-{i}"))
        say(options, f"throughput {kind}: {options.incidents} runs, concurrency {options.concurrency}")
        started = time.perf_counter()
        with world.cpu_meter() as cpu:
            latencies = await bounded(options.concurrency, options.incidents, lambda i: one(f"tp-{i}"))
        elapsed = time.perf_counter() - started
        rss = world.worker.rss_mb()
    result = {
        "runs": options.incidents,
        "seconds": round(elapsed, 2),
        "per_second": round(options.incidents / elapsed, 2),
        "latency_p50_s": round(percentile(latencies, 0.5), 3),
        "latency_p99_s": round(percentile(latencies, 0.99), 3),
        "worker_rss_mb_after": rss,
        "cpu_cores_used": cpu.shares(),
    }
    say(options, f"throughput {kind}: {result['per_second']}/s")
    return result


async def run(options: Options) -> dict[str, Any]:
    bare = await measure(options, "bare")
    escalate = await measure(options, "escalate")
    share = ratio(escalate["per_second"], bare["per_second"])
    return {
        "what": "incidents started, paged at tier 1 (log channel), acknowledged, resolved: per second end to end",
        "escalate": escalate,
        "bare": bare,
        "ratio": share,
        "target": "ratio >= 0.7",
        "meets_target": share is not None and share >= 0.7,
    }
