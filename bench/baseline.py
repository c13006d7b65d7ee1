"""The bare-Temporal baselines: the least a workflow can do for the same job, with no escalation
layer. They live here, not in ``workflows/``, and run on a worker with the same settings as the
escalate worker (same runner, cache, slots, data converter, metrics runtime).

This module is imported into the workflow sandbox: stdlib and temporalio only, no entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import activity, workflow

BARE_ACTIVITY = "bench_bare_step"


@activity.defn(name=BARE_ACTIVITY)
async def bare_step(key: str) -> str:
    """The one side effect: does nothing, like a notification to a channel that only logs."""
    return key


@workflow.defn(name="BenchBare")
class BareWorkflow:
    """Throughput baseline: one activity, wait for a signal, return."""

    def __init__(self) -> None:
        self.stepped = False
        self.released = False

    @workflow.run
    async def run(self, key: str) -> str:
        await workflow.execute_activity(BARE_ACTIVITY, key, start_to_close_timeout=timedelta(seconds=30))
        self.stepped = True
        await workflow.wait_condition(lambda: self.released)
        return key

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.query
    def done_step(self) -> bool:
        return self.stepped


@dataclass
class TimerArgs:
    key: str
    due: float
    """Unix seconds: sleep until then, then run the activity."""
    step_first: bool = False
    """Run the activity once before sleeping as well (as an incident pages tier 1 first)."""


@workflow.defn(name="BenchBareTimer")
class BareTimerWorkflow:
    """Timing and memory baseline: (one activity,) sleep until an absolute time, one activity."""

    @workflow.run
    async def run(self, args: TimerArgs) -> None:
        if args.step_first:
            await workflow.execute_activity(BARE_ACTIVITY, args.key, start_to_close_timeout=timedelta(seconds=30))
        due = datetime.fromtimestamp(args.due, UTC)
        left = due - workflow.now()
        if left > timedelta(0):
            await workflow.sleep(left)
        await workflow.execute_activity(BARE_ACTIVITY, args.key, start_to_close_timeout=timedelta(seconds=30))


@dataclass
class RoundsArgs:
    key: str
    pages: list[float]
    """Seconds after the start at which to notify (one activity each)."""
    notices: int = 0
    """Activities after the release (the outcome told to whoever was paged)."""


@workflow.defn(name="BenchBareRounds")
class BareRoundsWorkflow:
    """History baseline: the same notifications at the same times as an incident (one activity
    each, on a timer), then wait for the ack and the resolution (signals), then the notices."""

    def __init__(self) -> None:
        self.signals = 0

    @workflow.run
    async def run(self, args: RoundsArgs) -> None:
        started = workflow.now()
        for offset in args.pages:
            left = started + timedelta(seconds=offset) - workflow.now()
            if left > timedelta(0):
                await workflow.sleep(left)
            await workflow.execute_activity(BARE_ACTIVITY, args.key, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self.signals >= 2)
        for _ in range(args.notices):
            await workflow.execute_activity(BARE_ACTIVITY, args.key, start_to_close_timeout=timedelta(seconds=30))

    @workflow.signal
    def act(self) -> None:
        """An acknowledgement, then a resolution."""
        self.signals += 1


@workflow.defn(name="BenchBareUpdates")
class BareUpdatesWorkflow:
    """Update-latency baseline: an update handler that keeps what it was sent; a new run when
    the server suggests one (as an incident continues as new before its history grows too long)."""

    def __init__(self) -> None:
        self.taken = 0
        self.finished = False

    @workflow.run
    async def run(self, taken: int) -> int:
        self.taken = taken
        await workflow.wait_condition(lambda: self.finished or workflow.info().is_continue_as_new_suggested())
        if not self.finished:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(self.taken)
        return self.taken

    @workflow.update
    def take(self, text: str) -> int:
        self.taken += 1
        return self.taken

    @workflow.signal
    def finish(self) -> None:
        self.finished = True


BARE_WORKFLOWS = [BareWorkflow, BareTimerWorkflow, BareRoundsWorkflow, BareUpdatesWorkflow]
BARE_ACTIVITIES = [bare_step]
