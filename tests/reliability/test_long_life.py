"""Long life (issue #9): an incident open for 30 days, reminded every hour, given 1,000 notes.

On the time-skipping test server, with a real worker and a real HTTP receiver on 127.0.0.1
standing in for every person's webhook (``tests.support.receiver.Receiver``):

* the policy pages a low-priority case around two tiers for ever (until its 31-day resolution
  SLA): each tier has an hour, with a reminder at the half hour, so in 30 days there are 720
  reminders and 720 escalations, every one a webhook the receiver gets;
* responders add 1,000 notes over those 30 days (100 bursts of 10 parallel updates, 7h12m
  apart);
* the incident runs with a low ``history_limit``, so it continues as new several times.

What a user relies on is then checked from the outside: it did continue as new (a chain of
runs, each but the last closed as ContinuedAsNew, none with a failed workflow task); ``status``
tells one story (every note in order, every reminder and escalation exactly on its absolute
deadline, the tier where 720 escalations leave it, the trigger time and SLA of the first run);
``escalate review KEY`` (the CLI, as a subprocess against the same server) replays every run
and reports the whole chain; every run's history replays on its own with the ``Replayer``; and
the incident resolves normally at the end, telling everyone it paged.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from escalate.temporal import data_converter
from starter.review import incident_histories
from tests.support.cli import escalate, server_env
from tests.support.histories import keep_history
from tests.support.policies import webhooks, write_folder
from tests.support.receiver import Receiver
from tests.support.temporal import make_settings, resolve_and_close, running, unique_key
from tests.support.timeline import assert_on_time, events
from worker import workflow_runner
from workflows.incident import IncidentWorkflow
from workflows.model import IncidentStatus

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOUR = timedelta(hours=1)
DAYS_OPEN = 30
HOURS_OPEN = DAYS_OPEN * 24
NOTES = 1_000
BURSTS = 100
"""Notes come in bursts of parallel updates (as responders in a busy channel would send them)."""
HISTORY_LIMIT = 2_500
"""Low, so that 30 days make several runs (the default, 10,000, would make about three)."""
BLOB_LIMIT = 2 * 1024 * 1024
"""Temporal's default limit for one payload (``limit.blobSize.error``): the state an incident
carries into its next run must stay under it, or the continue-as-new itself fails."""

POLICY = {
    "policy": "slow-burn",
    "description": "A low-priority case nobody picks up: every hour a reminder, then the other tier",
    "manager": "dana",
    "windows": {"P3": {"ack_within": "1h", "remind_at": "30m", "resolve_within": "31d"}},
    "tiers": [{"name": "L1 night desk", "owners": ["olga"]}, {"name": "L2 platform", "owners": ["pete"]}],
    "repeat": "forever",
}
PEOPLE = ("olga", "pete", "dana")
PAGED = Counter(
    {("olga", "page"): 1, ("olga", "reminder"): HOURS_OPEN // 2, ("pete", "reminder"): HOURS_OPEN // 2,
     ("pete", "escalated"): HOURS_OPEN // 2, ("olga", "escalated"): HOURS_OPEN // 2}
)
"""Who got what, (person, message kind): tier 1 paged once, then every hour a reminder and an escalation."""


def policy_dir(root: Path, receiver: Receiver) -> Path:
    return write_folder(root / "policies", webhooks(receiver, *PEOPLE, under="/hooks"), POLICY)


def event_types(history: WorkflowHistory) -> Counter[str]:
    return Counter(EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in history.events)


def carried_bytes(history: WorkflowHistory) -> int:
    """The size of the run's input: the request, with the state carried from the run before."""
    started = history.events[0].workflow_execution_started_event_attributes
    return sum(payload.ByteSize() for payload in started.input.payloads)


def save_run(history: WorkflowHistory, name: str) -> None:
    """Keep one run for tests/test_replay.py, as ``save_history`` does. That keeps the latest
    run, here about 3 MB: the carried story of 30 days, and a final status holding all of it.
    The second run is the one to keep: it starts from a carried state, so its replay proves
    that a continued incident still restores with today's code, and it is smaller (2 MB)."""
    keep_history(history, name)


def note_text(n: int) -> str:
    return f"note {n:04d}: queue depth checked, still draining"


def folded(status: IncidentStatus, kind: str) -> int:
    """How many entries of this kind a new run carried folded into a count."""
    total = 0
    for event in events(status, "folded"):
        match = re.search(rf"\b{kind} x(\d+)", event.detail)
        total += int(match.group(1)) if match else 0
    return total


def assert_one_story(status: IncidentStatus, triggered_at: datetime) -> None:
    """Everything the 30 days held, in one timeline, on the absolute deadlines of the first run:
    the oldest reminders and notifications as counts (what a new run carries is bounded), every
    decision and note as it was."""
    assert status.triggered_at == triggered_at
    assert status.timeline[0].kind == "triggered"
    assert timedelta(0) <= status.timeline[0].at - triggered_at < timedelta(seconds=1), "recorded once the policy is read"
    assert status.resolve_by == triggered_at + timedelta(days=31), "the SLA of the first run is kept"
    assert not status.sla_breached

    notes = events(status, "noted")
    assert sorted(event.detail for event in notes) == [note_text(n) for n in range(NOTES)], "all 1,000 notes, once"
    bursts = [int(event.detail[5:9]) // (NOTES // BURSTS) for event in notes]
    assert bursts == sorted(bursts), "in the order they were sent (a burst's parallel notes in any order)"
    assert {event.who for event in notes} == {"olga"}
    assert all(triggered_at <= event.at <= triggered_at + HOURS_OPEN * HOUR for event in notes)

    reminders = events(status, "reminded")
    assert events(status, "folded"), "a 30-day story this busy is carried with its oldest routine entries folded"
    assert len(status.timeline) < 3_000 + 400, f"{len(status.timeline)} entries carried"
    skipped = folded(status, "reminded")
    assert len(reminders) + skipped == HOURS_OPEN, f"{len(reminders)} + {skipped} reminders, not one an hour for {DAYS_OPEN} days"
    for hour, reminder in enumerate(reminders, start=skipped):
        due = triggered_at + hour * HOUR + HOUR / 2
        assert_on_time(reminder, due)
        assert reminder.tier == 1 + hour % 2

    escalations = events(status, "escalated")
    assert len(escalations) == HOURS_OPEN
    for hour, escalation in enumerate(escalations, start=1):
        due = triggered_at + hour * HOUR
        assert_on_time(escalation, due)
        assert escalation.tier == 1 + hour % 2
    assert escalations[-1].detail.endswith(f"now tier 1 (L1 night desk), round {HOURS_OPEN // 2 + 1}")

    # 720 escalations from tier 1 of two tiers: back at tier 1, in its 361st round.
    assert (status.tier, status.tier_name, status.round) == (1, "L1 night desk", HOURS_OPEN // 2)
    assert len(events(status, "notified")) + folded(status, "notified") >= sum(PAGED.values())
    assert not events(status, "notify_failed") and not folded(status, "notify_failed")


async def test_an_incident_open_30_days_with_hourly_reminders_and_1000_notes_tells_one_story(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    settings = make_settings(policy_dir(tmp_path, receiver))
    client = time_env.client
    key = unique_key("long-life")
    began = time.monotonic()
    async with running(time_env, settings) as escalations:
        opened = await escalations.start_incident(
            policy="slow-burn", key=key, priority="P3", summary="Refund exports trickle out slowly",
            history_limit=HISTORY_LIMIT,
        )
        assert opened.created
        triggered_at = opened.status.triggered_at
        assert triggered_at is not None

        per_burst = NOTES // BURSTS
        gap = HOURS_OPEN * HOUR / BURSTS
        noting = sleeping = 0.0
        for burst in range(BURSTS):
            noted = time.monotonic()
            answers = await asyncio.gather(
                *(escalations.add_note(key, by="olga", text=note_text(burst * per_burst + n)) for n in range(per_burst))
            )
            assert all(answer.status != "resolved" for answer in answers)
            slept = time.monotonic()
            await time_env.sleep(gap)
            noting += slept - noted
            sleeping += time.monotonic() - slept
        await time_env.sleep(timedelta(minutes=10))  # 30 days and 10 minutes after the trigger
        driven = time.monotonic() - began

        status = await escalations.status(key)
        assert status.status == "triggered"
        assert_one_story(status, triggered_at)
        assert status.owners == ["olga"]
        assert status.next_escalation_at == triggered_at + (HOURS_OPEN + 1) * HOUR
        assert len(events(status, "notified")) + folded(status, "notified") == sum(PAGED.values())

        # What the receiver got: one page, then every reminder and escalation, each exactly once.
        got = Counter((request.path.removeprefix("/hooks/"), request.kind) for request in receiver.requests())
        assert got == PAGED
        keys = [request.headers["Idempotency-Key"] for request in receiver.requests()]
        assert len(set(keys)) == len(keys) == 1 + 2 * HOURS_OPEN, "every notification is its own, sent once"
        # The 720th escalation reads like the first: the tiers tried before are counted, not listed.
        first, last = receiver.requests("/hooks/pete", kind="escalated")[0], receiver.requests("/hooks/olga", kind="escalated")[-1]
        assert "Tried before you without an acknowledgement: tier 1 L1 night desk (olga) for 1h." in first.json()["text"]
        assert (
            f"Tried before you without an acknowledgement: {HOURS_OPEN - 9} earlier tiers; tier 2 L2 platform (pete) for 1h;"
            in last.json()["text"]
        )
        assert len(last.body) < 2 * len(first.body), f"a page after 30 days is {len(last.body)} bytes"

        final = await resolve_and_close(time_env, escalations, key, by="olga", resolution="export worker restarted")
    assert final.status == "resolved" and final.resolved_by == "olga"
    assert final.resolved_at is not None
    resolved_after = final.resolved_at - triggered_at - HOURS_OPEN * HOUR
    assert timedelta(minutes=10) <= resolved_after < timedelta(minutes=11), "resolved 30 days and 10 minutes in"
    assert final.timeline[: len(status.timeline)] == status.timeline, "the story so far is kept, word for word"
    assert_one_story(final, triggered_at)
    assert [event.kind for event in final.timeline[len(status.timeline):]].count("resolved") == 1
    told = sorted(event.who or "" for event in events(final, "notified") if event.detail.startswith("resolved via"))
    assert told == ["olga", "pete"], "everyone paged in those 30 days hears the outcome"

    # It continued as new: a chain of runs, each but the last closed by continue-as-new.
    histories = await incident_histories(client, key)
    runs = len(histories)
    closing = [EventType.Name(history.events[-1].event_type).removeprefix("EVENT_TYPE_") for history in histories]
    assert runs >= 5, f"expected several runs with history_limit={HISTORY_LIMIT}, got {runs}"
    assert closing == ["WORKFLOW_EXECUTION_CONTINUED_AS_NEW"] * (runs - 1) + ["WORKFLOW_EXECUTION_COMPLETED"]
    for history in histories:
        counts = event_types(history)
        # UNHANDLED_COMMAND is the server asking again: a note arrived while the task that
        # continues as new was being decided, so it is decided anew with the note (nothing of
        # ours failed). Any other cause is a failure of the workflow code.
        failures = [
            (event.event_id, WorkflowTaskFailedCause.Name(event.workflow_task_failed_event_attributes.cause))
            for event in history.events
            if event.HasField("workflow_task_failed_event_attributes")
            and event.workflow_task_failed_event_attributes.cause != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
        ]
        assert not failures, f"a workflow task failed in run {history.run_id}: {failures}; {counts}"
        assert len(history.events) < HISTORY_LIMIT + 400, "each run ends soon after it reaches the limit"
    first_started = histories[0].events[0].event_time.ToDatetime().replace(tzinfo=triggered_at.tzinfo)
    assert abs(first_started - triggered_at) < timedelta(seconds=1), "the times are the first run's"
    largest = max(carried_bytes(history) for history in histories)
    assert largest < BLOB_LIMIT * 0.6, f"the carried state is {largest} bytes, too close to Temporal's 2 MiB limit"

    # escalate review KEY (the CLI, in its own process, at the same time as the replay below: two
    # cores) replays every run and reviews the whole chain.
    began = time.monotonic()
    out = tmp_path / "review.json"
    cli = asyncio.create_task(
        escalate(server_env(time_env, settings, tmp_path), "review", key, "--format", "json", "-o", str(out), timeout=120)
    )

    # Every run replays with today's code, on its own.
    replayer = Replayer(workflows=[IncidentWorkflow], data_converter=data_converter(), workflow_runner=workflow_runner())
    for run, history in enumerate(histories, start=1):
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"run {run} of {runs} does not replay: {result.replay_failure}"

    reviewed = await cli
    assert reviewed.returncode == 0, reviewed.stderr
    checked = time.monotonic() - began
    review = json.loads(out.read_text())
    assert review["replay"]["verified"] is True
    assert review["replay"]["message"] == f"all {runs} runs of the recorded history replay with today's code"
    assert review["source"] == f"Temporal history of incident-{key} ({runs} runs)"
    # The review tells every entry: each run's replay holds the ones that run recorded.
    assert not [event for event in review["timeline"] if event["kind"] == "folded"]
    assert len(review["timeline"]) == len(final.timeline) - len(events(final, "folded")) + sum(
        folded(final, kind) for kind in ("notified", "notify_failed", "reminded", "repeated", "skipped")
    )
    delivered = Counter(
        (event["who"], event["detail"].split(" via ")[0]) for event in review["timeline"] if event["kind"] == "notified"
    )
    assert {what: delivered[what] for what in PAGED} == PAGED, "one page, then each reminder and escalation once"
    reminded = [event for event in review["timeline"] if event["kind"] == "reminded"]
    assert [datetime.fromisoformat(event["due_at"]) for event in reminded] == [
        triggered_at + hour * HOUR + HOUR / 2 for hour in range(HOURS_OPEN)
    ]
    assert datetime.fromisoformat(review["triggered_at"]) == triggered_at
    assert (review["status"], review["resolved_by"], review["escalations"]) == ("resolved", "olga", HOURS_OPEN)
    assert sum(1 for event in review["timeline"] if event["kind"] == "noted") == NOTES
    assert sum(1 for event in review["timeline"] if event["kind"] == "reminded") == HOURS_OPEN
    assert len(review["stints"]) == HOURS_OPEN + 1, "each hour's tier is one stint of the one story"
    assert review["stints"][0]["started_at"] == review["triggered_at"]
    assert review["stints"][-1]["ended_by"] == "resolved"
    assert review["sla"]["met"] is True

    save_run(histories[1], "long_life_second_run")
    print(
        f"\n[long life] {runs} runs (history events per run: {[len(h.events) for h in histories]}), "
        f"largest carried state {largest} bytes; 30 days driven in {driven:.1f}s "
        f"(notes {noting:.1f}s, the hours between {sleeping:.1f}s); replayed and reviewed in {checked:.1f}s"
    )
