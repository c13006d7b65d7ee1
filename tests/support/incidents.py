"""Opening incidents and reading their status while deliveries travel in real time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations, IncidentNotFound, IncidentRejected, TemporalUnavailable
from tests.support.histories import save_history
from tests.support.temporal import TrackedEscalations, resolve_and_close, unique_key
from tests.support.timeline import timeline_text
from tests.support.waiting import wait_for
from workflows.model import IncidentStatus


async def start_new(
    escalations: Escalations, policy: str, key: str, priority: str = "P1", summary: str = "Checkout failing", **extra: Any
) -> IncidentStatus:
    """Open incident ``key`` of ``policy``, which must be new; its status, triggered."""
    opened = await escalations.start_incident(policy=policy, key=key, priority=priority, summary=summary, **extra)
    assert opened.created
    assert opened.status.triggered_at is not None
    return opened.status


async def open_incident(
    escalations: Escalations, policy: str, prefix: str, priority: str = "P1", summary: str = "Checkout failing", **extra: Any
) -> tuple[str, datetime]:
    """A new incident of ``policy`` under a unique key: its key and when it was triggered."""
    key = unique_key(prefix)
    status = await start_new(escalations, policy, key, priority, summary, **extra)
    assert status.triggered_at is not None
    return key, status.triggered_at


async def wait_for_status(
    escalations: Escalations, key: str, done: Callable[[IncidentStatus], bool], *, within: float = 3.0
) -> IncidentStatus:
    """Poll in real time (deliveries travel in real time); the caller checks what it waited for."""
    deadline = time.monotonic() + within
    while True:
        status = await escalations.status(key)
        if done(status) or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.05)


async def settled(
    escalations: Escalations, key: str, done: Callable[[IncidentStatus], bool] = lambda status: True
) -> IncidentStatus:
    """The status once ``done`` holds and the timeline stopped growing (the webhooks travel in
    real time, after the timers that sent them fired on the skipping clock)."""
    deadline = time.monotonic() + 5
    last = await escalations.status(key)
    quiet = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        status = await escalations.status(key)
        quiet = quiet + 1 if len(status.timeline) == len(last.timeline) else 0
        last = status
        if quiet >= 4 and done(status):
            break
    return last


async def settle(escalations: TrackedEscalations, quiet: float = 0.3, timeout: float = 10) -> None:
    """Let each open incident's notifications report back before the test ends: terminating a
    run while its activities complete stalls the time-skipping server for every later test."""
    for key in list(escalations.opened):
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            try:
                length = len((await escalations.status(key)).timeline)
            except (IncidentNotFound, IncidentRejected, RPCError):  # never opened, failed or closed
                break
            if length == seen:
                break
            seen = length
            await asyncio.sleep(quiet)


# ── many incidents on a real server ──────────────────────────────────────────────────────────


async def read_status(escalations: Escalations, key: str) -> IncidentStatus | None:
    """The status, or None while it cannot be read (e.g. a query that timed out while the worker
    is catching up)."""
    try:
        return await escalations.status(key)
    except (IncidentRejected, TemporalUnavailable, RPCError):
        return None


async def read_all(escalations: Escalations, keys: list[str], concurrency: int = 20) -> dict[str, IncidentStatus]:
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> tuple[str, IncidentStatus | None]:
        async with gate:
            return key, await read_status(escalations, key)

    return {key: status for key, status in await asyncio.gather(*(one(k) for k in keys)) if status is not None}


async def until_all(
    escalations: Escalations,
    keys: list[str],
    done: Callable[[IncidentStatus], bool],
    what: str,
    timeout: float,
    interval: float = 1.0,
) -> dict[str, IncidentStatus]:
    """Query the incidents not yet ``done`` again and again, until all are."""
    finished: dict[str, IncidentStatus] = {}
    latest: dict[str, IncidentStatus] = {}

    async def probe() -> dict[str, IncidentStatus] | None:
        pending = [key for key in keys if key not in finished]
        for key, status in (await read_all(escalations, pending)).items():
            latest[key] = status
            if done(status):
                finished[key] = status
        return dict(finished) if len(finished) == len(keys) else None

    def explain() -> str:
        stuck = [key for key in keys if key not in finished][:3]
        return "\n".join(f"{key}:\n{timeline_text(latest[key])}" if key in latest else f"{key}: unreadable" for key in stuck)

    return await wait_for(f"{what} ({len(keys)} incidents)", probe, timeout, interval, explain)


async def finish(
    env: WorkflowEnvironment, escalations: Escalations, key: str, name: str, *, by: str, resolution: str
) -> IncidentStatus:
    """Resolve, wait for the run to close and keep its history (as ``name``) for the replay test."""
    final = await resolve_and_close(env, escalations, key, by=by, resolution=resolution)
    assert final.status == "resolved"
    await save_history(env.client, key, name)
    return final
