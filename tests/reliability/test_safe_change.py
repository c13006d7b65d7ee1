"""Safe change (issue #9): a workflow change without ``workflow.patched`` is caught by replaying
the recorded histories, and the same change behind ``workflow.patched`` passes.

Every history committed under tests/histories/ is replayed (with tests/test_replay.py's setup:
the pydantic data converter and the sandbox with worker.py's passthrough modules) against
deliberately changed copies of the incident workflow, registered under its own name
(``tests/support/changed_incident.py``):

* a timer after the policy is loaded, before anyone is paged ("debounce"): every recorded new
  incident that got as far as paging must fail, with a nondeterminism error naming the event
  where the old code scheduled its first command after the policy load;
* an extra activity when a tier's window ends ("audit"): every recorded incident that escalated
  on a timeout must fail, the error naming the recorded activity and the new one.

The same two changes behind ``workflow.patched`` replay every history cleanly; the histories in
which the guarded code was reached (and ``patched`` said no) are exactly the ones the unguarded
changes broke, so the clean replay is not for want of reaching the changes. And a new incident
on a worker running the guarded changes does take the new path: its history records the patch
marker and the debounce timer before the first page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from tests.support import changed_incident
from tests.support.changed_incident import AUDIT_PATCH, DEBOUNCE, DEBOUNCE_PATCH, AuditedIncident, DebouncedIncident, PatchedIncident
from tests.support.histories import recorded_incidents
from tests.support.markers import local_activities, local_activity_type, patch_id, patches
from tests.support.paths import HISTORIES
from tests.support.temporal import activities_of, make_settings, tracked, unique_key
from worker import workflow_runner
from workflows.maintenance import MaintenanceWorkflow
from workflows.model import LOAD_POLICY_ACTIVITY, NOTIFY_ACTIVITY, IncidentRequest, workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECORDED = {
    str(path.relative_to(HISTORIES).with_suffix("")): path.read_text() for path in recorded_incidents()
}
"""Read once, at collection: other tests write histories of their own while this one runs. (The
maintenance windows' histories are not the incident's: the changes here are to the incident.)"""
NONDETERMINISM = "[TMPRL1100] Nondeterminism error"
NAMED_EVENT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
PATCH_MARKER = re.compile(r"patch marker encountered for change ([\w-]+)")


def histories() -> dict[str, WorkflowHistory]:
    """The recorded histories, by the workflow id each is replayed under."""
    return {f"incident-{name}": WorkflowHistory.from_json(f"incident-{name}", text) for name, text in RECORDED.items()}


async def replay(workflow: type, recorded: dict[str, WorkflowHistory]) -> dict[str, Exception]:
    """Replay every history against ``workflow``; the failures, by workflow id."""
    replayer = Replayer(workflows=[workflow], data_converter=pydantic_data_converter, workflow_runner=workflow_runner())

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in recorded.values():
            yield history

    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    by_run = {history.run_id: wid for wid, history in recorded.items()}
    return {by_run[run_id]: failure for run_id, failure in results.replay_failures.items() if failure is not None}


def event_type(history: WorkflowHistory, event_id: int) -> str:
    event = next(event for event in history.events if event.event_id == event_id)
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def scheduled(history: WorkflowHistory, activity: str) -> list[int]:
    return [
        event.event_id
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity
    ]


def policy_loads(history: WorkflowHistory) -> list[int]:
    """Where the policy was loaded: a queued activity (earlier code) or a local one."""
    local = [event_id for event_id, activity in local_activities(history) if activity == LOAD_POLICY_ACTIVITY]
    return scheduled(history, LOAD_POLICY_ACTIVITY) + local


def first_step_after_the_policy_load(history: WorkflowHistory) -> int | str:
    """The first activity scheduled (its event id), patch marker recorded (its patch id) or local
    activity run ("LocalActivity") after the policy was loaded."""
    [load] = sorted(policy_loads(history))[:1]
    loaded = next(
        (
            event.event_id for event in history.events
            if event.HasField("activity_task_completed_event_attributes")
            and event.activity_task_completed_event_attributes.scheduled_event_id == load
        ),
        load,  # a local activity's marker is its result
    )
    for event in history.events:
        if event.event_id <= loaded:
            continue
        if event.HasField("activity_task_scheduled_event_attributes"):
            return event.event_id
        if (patch := patch_id(event)) is not None:
            return patch
        if local_activity_type(event) is not None:
            return "LocalActivity"
    raise AssertionError(f"{history.workflow_id}: nothing recorded after the policy load")


@dataclass
class Caught:
    recorded: dict[str, WorkflowHistory]
    debounce: dict[str, Exception]
    """The histories that do not replay with the unguarded debounce timer, and why."""
    audit: dict[str, Exception]
    """… with the unguarded audit activity."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def caught() -> Caught:
    recorded = histories()
    return Caught(recorded, await replay(DebouncedIncident, recorded), await replay(AuditedIncident, recorded))


async def test_there_are_recorded_histories_to_protect() -> None:
    assert len(RECORDED) >= 30, f"expected the scenario histories under {HISTORIES}, found {len(RECORDED)}"


async def test_a_timer_before_the_first_page_without_patched_is_caught_naming_the_event(caught: Caught) -> None:
    recorded, failures = caught.recorded, caught.debounce
    assert len(failures) >= len(recorded) * 0.8, f"only {len(failures)} of {len(recorded)} histories caught the change"
    for wid, failure in failures.items():
        message = str(failure)
        assert type(failure).__name__ == "NondeterminismError" and NONDETERMINISM in message, message
        # The new timer pairs up with the window timer the old code started once the policy was
        # loaded; the two part ways at the next thing the old code recorded: the activity it
        # scheduled (a page, or the maintenance check), or a patch marker of newer code.
        expected = first_step_after_the_policy_load(recorded[wid])
        named, marker = NAMED_EVENT.search(message), PATCH_MARKER.search(message)
        if isinstance(expected, int):
            assert named and (int(named.group(1)), named.group(2)) == (expected, "ActivityTaskScheduled"), (
                f"{wid}: expected the error to name event {expected}: {message}"
            )
            assert event_type(recorded[wid], expected) == "ACTIVITY_TASK_SCHEDULED"
        elif expected == "LocalActivity":
            # The timer stands where the new code ran its next read (the maintenance check).
            assert "LocalActivity(" in message, f"{wid}: expected the local activity named: {message}"
        else:
            assert marker and marker.group(1) == expected, f"{wid}: expected patch marker {expected}: {message}"

    # The histories it does not touch are the ones that never page a new incident: a continued
    # run (it restores its state, the policy was loaded by the first run) or a refused start.
    for wid in set(recorded) - set(failures):
        history = recorded[wid]
        loaded, paged = policy_loads(history), scheduled(history, NOTIFY_ACTIVITY)
        assert not loaded or not paged, f"{wid} paged a new incident, yet replays with the change"


async def test_an_activity_on_each_escalation_without_patched_is_caught(caught: Caught) -> None:
    failures = caught.audit
    assert len(failures) >= 10, f"only {len(failures)} of {len(caught.recorded)} histories escalated on a timeout"
    for wid, failure in failures.items():
        message = str(failure)
        assert type(failure).__name__ == "NondeterminismError" and NONDETERMINISM in message, message
        # The new activity stands where the old code scheduled the new tier's first page.
        assert (
            "Activity type of scheduled event 'notify' does not match activity type of activity command "
            "'audit_escalation'" in message
        ), f"{wid}: {message}"


async def test_the_same_changes_behind_patched_replay_every_history(caught: Caught) -> None:
    for reached in changed_incident.REACHED.values():
        reached.clear()
    assert await replay(PatchedIncident, caught.recorded) == {}
    # Not for want of reaching them: each guarded change was reached (and patched said no) in
    # exactly the histories its unguarded version broke.
    assert changed_incident.REACHED[DEBOUNCE_PATCH] == set(caught.debounce)
    assert changed_incident.REACHED[AUDIT_PATCH] == set(caught.audit)


async def test_the_guarded_changes_take_effect_for_new_incidents(time_env: WorkflowEnvironment) -> None:
    """Not a no-op: a new incident on a worker with the guarded changes records the patch and
    waits for the debounce timer before its first page. (Its history is not kept for
    tests/test_replay.py: today's code does not have the change.)"""
    settings = make_settings()
    escalations = tracked(time_env.client, settings)
    worker = Worker(
        time_env.client,
        task_queue=settings.task_queue,
        workflows=[PatchedIncident, MaintenanceWorkflow],
        activities=activities_of(settings, time_env.client),
        workflow_runner=workflow_runner(),
    )
    async with worker:
        key = unique_key("safe-change")
        escalations.opened.add(key)
        try:
            # A plain start: the starter's update-with-start waits for the first page, and on the
            # time-skipping server time does not skip while an update is waited on.
            await time_env.client.start_workflow(
                PatchedIncident.run,
                IncidentRequest(policy="payments", key=key, priority="P2", summary="Refunds stuck"),
                id=workflow_id(key),
                task_queue=settings.task_queue,
            )
            await time_env.sleep(DEBOUNCE + timedelta(seconds=5))
            status = await escalations.status(key)
            history = await time_env.client.get_workflow_handle(workflow_id(key)).fetch_history()
        finally:
            await escalations.terminate_open()

    triggered = status.triggered_at
    assert triggered is not None
    pages = [event for event in status.timeline if event.kind == "notified"]
    assert sorted(event.who or "" for event in pages) == ["erin", "frank"]
    assert all(event.at - triggered >= DEBOUNCE for event in pages), "paged only after the debounce"
    assert DEBOUNCE_PATCH in patches(history, before=scheduled(history, NOTIFY_ACTIVITY)[0])
    timers = [
        event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for event in history.events
        if event.HasField("timer_started_event_attributes")
    ]
    assert timers[0] == DEBOUNCE, f"the first timer is the debounce, not {timers[:3]}"
    assert not any(event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for event in history.events)
    # And the guarded changes replay their own new history too.
    result = await Replayer(
        workflows=[PatchedIncident], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
