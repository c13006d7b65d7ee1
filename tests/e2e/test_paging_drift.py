"""On-call paging parity (issue 13): drift-free deadlines, in real time on the Temporal dev
server, with every webhook held 3 s before it is answered. Each tier's deadline counts from the
previous one, so a slow channel never pushes the later escalations back (the scenarios on the
time-skipping server: tests/scenarios/test_paging.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starter.api import Escalations
from tests.support.histories import save_history
from tests.support.incidents import open_incident
from tests.support.policies import policy, tier, webhooks, write_folder
from tests.support.receiver import Receiver, Reply
from tests.support.temporal import dev_server, make_settings, needs_temporal
from tests.support.timeline import events, timeline_text
from worker import create_worker
from workflows.model import IncidentStatus, workflow_id

PEOPLE = ("ana", "ben", "cat", "dan", "mia")
"""Tier owners (ana, ben, cat, dan) and the manager (mia); each has a webhook and nothing else."""
HOLD = 3.0
"""How long the receiver holds every page before it answers 200."""
WINDOW = timedelta(seconds=4)
ON_TIME = timedelta(seconds=1.5)
"""How late a step may come on a busy 2-core machine; a drifting chain would be 3 s late at the
first escalation already, and 9 s by the last."""


@needs_temporal
async def test_deadlines_are_absolute_with_slow_notifications_on_the_real_server(tmp_path: Path) -> None:
    """4 tiers × 4 s; every page takes 3 s to deliver. Tier k is paged at trigger + 4(k-1) s and
    the manager told at trigger + 16 s, each within scheduling noise: the lateness never adds up."""
    began = time.monotonic()
    slow = Reply(delay=HOLD)
    written = policy(
        "drift",
        windows={"P1": {"ack_within": "4s"}},
        tiers=[tier(f"Tier {n}", owner) for n, owner in enumerate(("ana", "ben", "cat", "dan"), start=1)],
    )
    with Receiver() as receiver:
        for name in PEOPLE:
            receiver.route(f"/{name}", lambda request: slow if request.kind != "resolved" else Reply())
        async with dev_server(ui=False) as env:
            policies = write_folder(tmp_path / "policies", webhooks(receiver, *PEOPLE), written)
            settings = make_settings(policy_dir=policies, webhook_timeout_seconds=10.0)
            escalations = Escalations(env.client, settings.task_queue)
            async with create_worker(env.client, settings):
                key, trigger = await open_incident(escalations, "drift", "drift")
                deadline = time.monotonic() + 40
                while True:
                    status = await escalations.status(key)
                    if events(status, "notified", who="mia") or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.25)
                final = await escalations.resolve(key, by="dan", resolution="failed over")
                handle = env.client.get_workflow_handle(workflow_id(key), result_type=IncidentStatus)
                final = await asyncio.wait_for(handle.result(), timeout=20)
                await save_history(env.client, key, "paging_drift_free_slow_webhooks")

    shown = timeline_text(final)
    chain = [(kind, tier_, trigger + k * WINDOW) for k, (kind, tier_) in enumerate(
        [("escalated", 2), ("escalated", 3), ("escalated", 4), ("exhausted", 4)], start=1
    )]
    assert [(e.kind, e.tier, e.due_at) for e in final.timeline if e.kind in ("escalated", "exhausted")] == chain, shown
    lateness = []
    for event in (e for e in final.timeline if e.kind in ("escalated", "exhausted")):
        assert event.due_at is not None
        late = event.at - event.due_at
        assert timedelta(0) <= late < ON_TIME, f"{event.kind} to tier {event.tier} {late.total_seconds():.2f}s late\n{shown}"
        lateness.append(late)

    # What the people saw: each page arrived on the chain, though each took 3 s to deliver.
    arrivals: dict[str, datetime] = {}
    for request in receiver.requests():
        body = request.json()
        if body["incident"]["key"] == key and body["kind"] != "resolved":
            arrivals.setdefault(body["person"], datetime.fromtimestamp(request.at, UTC))
    for person, due in zip(PEOPLE, [trigger + k * WINDOW for k in range(5)], strict=True):
        assert person in arrivals, f"{person} got nothing\n{shown}"
        late = arrivals[person] - due
        assert -0.2 < late.total_seconds() < ON_TIME.total_seconds(), f"{person}'s notice came {late.total_seconds():.2f}s after it was due"
    for person in ("ana", "ben", "cat", "dan"):
        [page] = [e for e in events(final, "notified", who=person) if "resolved" not in e.detail]
        assert page.at - arrivals[person] >= timedelta(seconds=HOLD - 0.1), f"{person}'s page was not slow\n{shown}"
    print(
        f"\n[drift] steps late by {', '.join(f'{d.total_seconds():.3f}s' for d in lateness)}; "
        f"arrivals late by {', '.join(f'{(arrivals[p] - trigger - k * WINDOW).total_seconds():.3f}s' for k, p in enumerate(PEOPLE))}; "
        f"test took {time.monotonic() - began:.1f}s"
    )
