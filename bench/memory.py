"""Memory: the worker's RSS with 1k, 5k, 10k open incidents waiting on timers, beside a bare worker
with as many workflows waiting on a timer.

Escalate: incidents of the ``bench`` policy at P3 (tier 1 paged at once, then a 45 min wait for
the reminder) are started up to each count in turn; once the worker is idle again (its CPU time
stops moving) its RSS is read. Bare: ``BenchBareTimer`` workflows that run one activity and sleep
for a day. The figure is the worker process's resident memory alone (it runs in its own process);
the workflow cache (``max_cached_workflows``) bounds how many of the open ones it keeps in memory.
The dev server runs in memory for this stage whatever ``--in-memory`` says.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from bench.baseline import BareTimerWorkflow, TimerArgs
from bench.harness import Options, bounded, cpu_seconds, ratio, say, stage
from starter.api import Escalations

TARGET_MB = 500.0
FLAT_GROWTH = 0.2
"""Flat: RSS grows by at most this share from the middle count to the largest."""


async def _settle(pid: int, *, quiet: float = 0.05, window: float = 2.0, limit: float = 120.0) -> None:
    """Wait until the worker uses less than ``quiet`` of a core over ``window`` seconds."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if (cpu_seconds(pid) - before) / window < quiet:
            return


async def measure(options: Options, kind: str) -> dict[str, Any]:
    steps = sorted(options.memory_steps)
    points: list[dict[str, Any]] = []
    # Only the worker's memory is measured: the server keeps its data in memory here (whatever
    # --in-memory says), which fills it several times faster than SQLite.
    async with stage(replace(options, in_memory=True), kind, f"memory-{kind}") as world:
        await _settle(world.worker.pid, window=1.0)
        idle = world.worker.rss_mb()
        escalations = Escalations(world.client, world.task_queue)
        far = time.time() + 86400

        async def one(i: int) -> None:
            if kind == "escalate":
                opened = await escalations.start_incident(policy="bench", key=f"mem-{i}", priority="P3", summary="bench memory")
                assert opened.created, f"mem-{i} joined an open incident"
            else:
                await world.client.start_workflow(
                    BareTimerWorkflow.run,
                    TimerArgs(key=f"mem-{i}", due=far, step_first=True),
                    id=f"bare-mem-{i}",
                    task_queue=world.task_queue,
                )

        opened = 0
        for count in steps:
            began = time.perf_counter()
            await bounded(options.concurrency, count - opened, lambda i, base=opened: one(base + i))
            seconds = time.perf_counter() - began
            started = count - opened
            opened = count
            await _settle(world.worker.pid)
            rss = world.worker.rss_mb()
            points.append({"open": count, "rss_mb": rss, "started_per_second": round(started / max(seconds, 1e-6), 2)})
            say(options, f"memory {kind}: {count} open, worker RSS {rss} MB")
    return {"idle_rss_mb": idle, "points": points}


def _growth(points: list[dict[str, Any]]) -> float | None:
    if len(points) < 2:
        return None
    middle = points[(len(points) - 1) // 2]["rss_mb"]
    return round((points[-1]["rss_mb"] - middle) / middle, 3) if middle else None


async def run(options: Options) -> dict[str, Any]:
    bare = await measure(options, "bare")
    escalate = await measure(options, "escalate")
    top = escalate["points"][-1]
    growth = _growth(escalate["points"])
    flat = growth is None or growth <= FLAT_GROWTH
    return {
        "what": "worker RSS (MiB) with N open incidents waiting on timers",
        "escalate": escalate,
        "bare": bare,
        "ratio": {str(e["open"]): ratio(e["rss_mb"], b["rss_mb"]) for e, b in zip(escalate["points"], bare["points"], strict=False)},
        "growth_middle_to_largest": growth,
        "bare_growth_middle_to_largest": _growth(bare["points"]),
        "target": f"< {TARGET_MB:g} MB at {top['open']:,} open, growing at most {FLAT_GROWTH:.0%} from the middle count",
        "meets_target": top["rss_mb"] < TARGET_MB and flat,
    }
