"""Update latency: an incident that has taken thousands of updates answers the next one as fast
as it answered the first (issue 24: an ack on an incident that had taken thousands of updates
once took over 10 s).

Escalate: one incident (policy ``bench-updates``, acknowledged at once) takes ``--updates`` updates
one after another, in turn a note, an acknowledgement it refuses (already acknowledged) and a
change of priority (P2, P3, P2…), each through the Python API; then one note through the HTTP API
(the app in this process), whose answer is the whole status JSON with the whole timeline. Bare: a
workflow whose update handler counts what it was sent, as many updates.

Figures: the median and p99 latency of the first and of the last tenth of the updates. Target:
flat, the last tenth's median at most twice the first tenth's (give or take 20 ms of a shared
machine's noise), and a p99 under a second throughout. ``tests/e2e/test_http_update_latency.py``
checks the same bound (:func:`flat`) at a small size.

    python -m bench.updates                    # 10,000 updates each (a few minutes)
    python -m bench.updates --updates 2000 --json /tmp/updates.json

Each side runs on a fresh dev server with its worker in a subprocess, as the other stages of
``python -m bench`` do; the table has the same columns as theirs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from temporalio.client import Client

from bench.baseline import BareUpdatesWorkflow
from bench.harness import TIERS, Options, percentile, ratio, say, stage
from escalate.settings import Settings
from starter.api import Escalations, IncidentRejected

UPDATES_POLICY = (
    """\
# Update latency: nothing times out while the updates run; two priorities to change between.
policy: bench-updates
manager: boss
windows:
  P2: {ack_within: 1h, resolve_within: 1d}
  P3: {ack_within: 1h, resolve_within: 1d}
"""
    + TIERS
)
GROWTH = 2.0
"""Flat: the last tenth's median latency at most this many times the first tenth's…"""
NOISE_S = 0.02
"""…give or take this much (one scheduling hiccup of a shared machine)."""
MAX_P99_S = 1.0


async def drive_incident(escalations: Escalations, key: str, count: int) -> list[float]:
    """``count`` updates to one acknowledged incident, one after another; the latency of each."""
    opened = await escalations.start_incident(policy="bench-updates", key=key, priority="P3", summary="bench updates")
    assert opened.created, f"{key} joined an open incident"
    await escalations.acknowledge(key, by="t1")
    latencies: list[float] = []
    for i in range(count):
        began = time.perf_counter()
        if i % 3 == 0:
            await escalations.add_note(key, by="t1", text=f"note {i}")
        elif i % 3 == 1:
            try:
                await escalations.acknowledge(key, by="t2")
            except IncidentRejected:
                pass  # already acknowledged by t1: refused, as meant
            else:
                raise AssertionError(f"{key}: a second acknowledgement was taken")
        else:
            await escalations.set_priority(key, priority="P2" if i % 2 == 0 else "P3", by="t1")
        latencies.append(time.perf_counter() - began)
    return latencies


async def http_action(escalations: Escalations, key: str) -> dict[str, Any]:
    """One note through the HTTP API: its latency and the size of its answer (the whole status)."""
    from starter.web import create_app

    app = create_app(Settings(task_queue=escalations.task_queue), escalations)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.test") as client:
        began = time.perf_counter()
        answer = await client.post(f"/v1/incidents/{key}/notes", json={"by": "t1", "note": "through the API"})
        took = time.perf_counter() - began
    answer.raise_for_status()
    return {"latency_s": round(took, 4), "bytes": len(answer.content), "timeline": len(answer.json()["timeline"])}


async def drive_bare(client: Client, task_queue: str, key: str, count: int) -> list[float]:
    handle = await client.start_workflow(BareUpdatesWorkflow.run, 0, id=key, task_queue=task_queue)
    latencies: list[float] = []
    for i in range(count):
        began = time.perf_counter()
        await handle.execute_update(BareUpdatesWorkflow.take, f"note {i}")
        latencies.append(time.perf_counter() - began)
    await handle.signal(BareUpdatesWorkflow.finish)
    return latencies


def summary(latencies: list[float]) -> dict[str, Any]:
    tenth = max(1, len(latencies) // 10)
    first, last = latencies[:tenth], latencies[-tenth:]
    return {
        "updates": len(latencies),
        "first_tenth_p50_s": round(percentile(first, 0.5), 4),
        "first_tenth_p99_s": round(percentile(first, 0.99), 4),
        "last_tenth_p50_s": round(percentile(last, 0.5), 4),
        "last_tenth_p99_s": round(percentile(last, 0.99), 4),
        "p99_s": round(percentile(latencies, 0.99), 4),
    }


def flat(figures: dict[str, Any]) -> bool:
    """The bound: no slower after thousands of updates than at first, and never slow."""
    grew = figures["last_tenth_p50_s"] <= GROWTH * figures["first_tenth_p50_s"] + NOISE_S
    return bool(grew and figures["p99_s"] < MAX_P99_S)


async def measure(options: Options, kind: str, count: int) -> dict[str, Any]:
    async with stage(options, kind, f"updates-{kind}", policies={"bench-updates": UPDATES_POLICY}) as world:
        key = f"updates-{uuid.uuid4().hex[:8]}"
        say(options, f"updates: {count:,} updates to one {kind} workflow")
        if kind == "escalate":
            escalations = Escalations(world.client, world.task_queue)
            figures = summary(await drive_incident(escalations, key, count))
            figures["http_action"] = await http_action(escalations, key)
        else:
            figures = summary(await drive_bare(world.client, world.task_queue, key, count))
    return figures


async def run(options: Options, count: int = 10_000) -> dict[str, Any]:
    bare = await measure(options, "bare", count)
    escalate = await measure(options, "escalate", count)
    return {
        "what": "latency of one update (s), at the start and after thousands, one incident",
        "escalate": escalate,
        "bare": bare,
        "ratio": ratio(escalate["last_tenth_p50_s"], bare["last_tenth_p50_s"]),
        "target": f"last tenth's median ≤ {GROWTH:g} × the first's (± {NOISE_S * 1000:g} ms), p99 < {MAX_P99_S:g} s",
        "meets_target": flat(escalate),
    }


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    from bench.cli import _row

    e, b = result["escalate"], result["bare"]
    n = e["updates"]
    last = (e["last_tenth_p50_s"], b["last_tenth_p50_s"], result["target"], result["meets_target"])
    action = e["http_action"]
    return [
        _row("updates", f"update latency p50, first tenth of {n:,}", "s", e["first_tenth_p50_s"], b["first_tenth_p50_s"]),
        _row("updates", f"update latency p50, last tenth of {n:,}", "s", *last),
        _row("updates", f"update latency p99, all {n:,}", "s", e["p99_s"], b["p99_s"]),
        _row("updates", f"an HTTP action after {n:,} (whole status, {action['timeline']:,} events)", "s", action["latency_s"]),
    ]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import asyncio
    import json
    from pathlib import Path

    from bench.cli import render_table, server_version
    from bench.harness import machine_info

    parser = argparse.ArgumentParser(prog="python -m bench.updates", description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=10_000, metavar="N", help="updates to one workflow (default %(default)s)")
    parser.add_argument("--in-memory", action="store_true", help="the dev server keeps no SQLite file")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results-updates.json", metavar="PATH")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    options = Options(in_memory=args.in_memory, quiet=args.quiet, phases=("updates",))
    result = asyncio.run(run(options, args.updates))
    rows = table(result)
    machine = machine_info() | {"temporal_server": server_version()}
    report = {"machine": machine, "options": options.describe(), "results": {"updates": result}, "table": rows}
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(render_table(rows, {}))
    print(f"results: {args.json}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
