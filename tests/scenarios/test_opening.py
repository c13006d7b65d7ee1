"""How a new incident opens: in one workflow task, with the reads it depends on (its policy, a
maintenance window) run as local activities, its search attributes set with the start, no patch
marker (one, when it was not started through the starter API), and no round trip to a worker for
a channel no worker can send on. What the server stores for each incident is what a deployment
pays for each incident (see bench/README.md).

Scenarios run on the time-skipping test server; their histories are kept for tests/test_replay.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig, RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy_store import PolicyStore
from escalate.settings import EXAMPLE_POLICIES
from escalate.temporal import ensure_search_attributes
from starter.api import IncidentRejected
from tests.support.histories import save_history
from tests.support.markers import local_activities, local_activity_type, patches
from tests.support.net import free_port
from tests.support.temporal import TrackedEscalations, activities_of, dev_server, make_settings, resolve_and_close, tracked, unique_key
from worker import create_worker, workflow_runner
from workflows import search
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWorkflow
from workflows.model import LOAD_POLICY_ACTIVITY, MAINTENANCE_ACTIVITY, NOTIFY_ACTIVITY, IncidentRequest, Notification, workflow_id
from workflows.patches import PATCH_BASELINE


def of_type(history: WorkflowHistory, event_type: int) -> list[Any]:
    return [event for event in history.events if event.event_type == event_type]


def started_attributes(history: WorkflowHistory) -> dict[str, object]:
    fields = history.events[0].workflow_execution_started_event_attributes.search_attributes.indexed_fields
    return {name: json.loads(payload.data) for name, payload in fields.items()}


def scheduled_notifications(history: WorkflowHistory) -> list[Notification]:
    notes = []
    for event in of_type(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED):
        attributes = event.activity_task_scheduled_event_attributes
        assert attributes.activity_type.name == NOTIFY_ACTIVITY, attributes.activity_type.name
        notes.append(pydantic_data_converter.payload_converter.from_payload(attributes.input.payloads[0], Notification))
    return notes


@pytest.mark.asyncio(loop_scope="session")
async def test_a_new_incident_opens_and_pages_tier_1_in_its_first_workflow_task(
    time_env: WorkflowEnvironment, escalations: TrackedEscalations
) -> None:
    key = unique_key("opening")
    opened = await escalations.start_incident(
        policy="payments", key=key, priority="P2", summary="Card authorisations failing"
    )
    assert opened.created
    await time_env.sleep(5)
    status = await escalations.status(key)
    notified = [event for event in status.timeline if event.kind == "notified"]
    assert sorted(event.who or "" for event in notified) == ["erin", "frank"]
    erin = next(event for event in notified if event.who == "erin")
    # erin has email only, and these workers have no SMTP: the log channel has the page, and
    # the timeline says why, as it did when a worker was asked first.
    assert erin.channel == "log"
    assert erin.detail.endswith("(not configured on this worker: email)"), erin.detail
    await resolve_and_close(time_env, escalations, key, by="erin", resolution="card network flapped")
    history = await time_env.client.get_workflow_handle(workflow_id(key)).fetch_history()
    await save_history(time_env.client, key, "opening_in_one_task")

    # The reads the first page depends on ran on the worker already running the incident.
    assert [activity for _, activity in local_activities(history)] == [LOAD_POLICY_ACTIVITY, MAINTENANCE_ACTIVITY]
    load = next(event for event in history.events if local_activity_type(event) == LOAD_POLICY_ACTIVITY)
    assert pydantic_data_converter.payload_converter.from_payload(load.user_metadata.summary, str) == "load policy payments"

    # The first workflow task's completion pages tier 1 and answers the starter.
    events = list(history.events)
    first_completed = next(i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    first_page = next(i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    answered = next(i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
    later_tasks = [
        i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and i > first_completed
    ]
    assert first_completed < first_page < (later_tasks[0] if later_tasks else len(events))
    assert first_completed < answered < (later_tasks[0] if later_tasks else len(events))

    # No worker was asked to send on a channel none of them has; every page went out once.
    pages = [note for note in scheduled_notifications(history) if note.kind == "page"]
    # (frank's chat handle is asked: whether a handle can be reached depends on the address.)
    assert sorted((note.person, note.channel) for note in pages) == [("erin", "log"), ("frank", "chat"), ("frank", "log")]
    assert all(note.channel != "email" for note in scheduled_notifications(history))

    # Its search attributes came with the start: nothing upserted before the ack.
    indexed = started_attributes(history)
    assert (indexed["IncidentKey"], indexed["IncidentStatus"], indexed["Tier"]) == (key, "triggered", 1)
    upserts = of_type(history, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    assert upserts and all(event.event_id > answered for event in upserts), "an upsert before the first page"

    # No patch marker (each is also a search-attribute upsert): the starter opened it on the
    # current baseline, and the request it started the workflow with says so.
    assert patches(history) == []
    started = history.events[0].workflow_execution_started_event_attributes
    request = pydantic_data_converter.payload_converter.from_payload(started.input.payloads[0], IncidentRequest)
    assert request.baseline == PATCH_BASELINE


@pytest.mark.asyncio(loop_scope="session")
async def test_an_incident_started_without_a_baseline_takes_it_with_one_patch_marker(
    time_env: WorkflowEnvironment, escalations: TrackedEscalations
) -> None:
    """A workflow started directly (not through the starter API) records one marker for all the
    patches of the baseline, where earlier code recorded one per patch."""
    key = unique_key("direct")
    await time_env.client.start_workflow(
        IncidentWorkflow.run,
        IncidentRequest(policy="payments", key=key, priority="P2", summary="Refunds stuck"),
        id=workflow_id(key),
        task_queue=escalations.task_queue,
    )
    escalations.opened.add(key)
    await time_env.sleep(5)
    status = await escalations.status(key)
    assert {event.who for event in status.timeline if event.kind == "notified"} == {"erin", "frank"}
    await resolve_and_close(time_env, escalations, key, by="erin", resolution="done")
    history = await time_env.client.get_workflow_handle(workflow_id(key)).fetch_history()
    await save_history(time_env.client, key, "opening_started_directly")
    assert patches(history) == [PATCH_BASELINE]
    assert [activity for _, activity in local_activities(history)] == [LOAD_POLICY_ACTIVITY, MAINTENANCE_ACTIVITY]


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unknown_policy_is_still_refused_and_leaves_no_incident_attributes(
    time_env: WorkflowEnvironment, escalations: TrackedEscalations
) -> None:
    key = unique_key("typo")
    with pytest.raises(IncidentRejected, match=r"unknown policy 'paymnets': did you mean 'payments'\?"):
        await escalations.start_incident(policy="paymnets", key=key, priority="P2", summary="typo")
    history = await time_env.client.get_workflow_handle(workflow_id(key)).fetch_history()
    assert started_attributes(history)["IncidentStatus"] == "triggered"
    [unset] = of_type(history, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    fields = unset.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    assert set(fields) == {"IncidentKey", "Policy", "Priority", "IncidentStatus", "Tier", "SlaBreached"}
    assert all(json.loads(payload.data or b"null") is None for payload in fields.values()), "not unset"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_policy_edited_while_the_worker_runs_applies_to_the_next_incident(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(EXAMPLE_POLICIES, folder)
    settings = make_settings(policy_dir=folder)
    async with create_worker(time_env.client, settings):
        escalations = tracked(time_env.client, settings)
        before = await escalations.start_incident(policy="payments", key=unique_key("edit"), priority="P2", summary="one")
        assert before.status.tier_name == "L1 support"
        policy = folder / "payments.yaml"
        policy.write_text(policy.read_text().replace("L1 support", "L1 card payments"))
        after = await escalations.start_incident(policy="payments", key=unique_key("edit"), priority="P2", summary="two")
        assert after.status.tier_name == "L1 card payments"
        await escalations.terminate_open()


def test_the_store_reads_a_policy_again_only_when_a_file_changed(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(EXAMPLE_POLICIES, folder)
    store = PolicyStore(folder)
    first = store.load("platform")
    assert store.load("platform") is first, "nothing changed: the checked snapshot is reused"

    schedule = folder / "schedules" / "platform-primary.yaml"
    stat = schedule.stat()
    schedule.write_text(schedule.read_text() + "\n# touched\n")
    os.utime(schedule, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = store.load("platform")
    assert again is not first and again == first, "a schedule file changed: read and checked again"

    directory = folder / "directory.yaml"
    directory.write_text(directory.read_text().replace("erin@example.com", "erin@payments.example.com"))
    changed = store.load("payments")
    assert changed.people["erin"].channels[0].address == "erin@payments.example.com"

    (folder / "payments.yaml").unlink()
    with pytest.raises(Exception, match="unknown policy 'payments'"):
        store.load("payments")


@pytest.mark.slow  # the read's retries take 15 s in real time
@pytest.mark.asyncio(loop_scope="session")
async def test_an_incident_whose_maintenance_window_cannot_be_read_is_paged_and_says_so(
    time_env: WorkflowEnvironment,
) -> None:
    """The worker's own way to Temporal for reading maintenance windows is down (a refused port):
    after the read's retries the incident pages as usual, rather than fail or wait unpaged."""
    settings = make_settings()
    unreachable = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, retry_config=RetryConfig(max_retries=0)
    )
    async with Worker(
        time_env.client,
        task_queue=settings.task_queue,
        workflows=[IncidentWorkflow, MaintenanceWorkflow],
        activities=activities_of(settings, unreachable),
        workflow_runner=workflow_runner(),
    ):
        escalations = tracked(time_env.client, settings)
        key = unique_key("no-window")
        opened = await escalations.start_incident(policy="database", key=key, priority="P1", summary="replica lag")
        assert opened.created
        [note] = [event for event in opened.status.timeline if event.kind == "noted"]
        assert note.detail.startswith("could not tell whether database is in maintenance ("), note.detail
        assert note.detail.endswith("): paging as usual"), note.detail
        await time_env.sleep(5)
        status = await escalations.status(key)
        assert status.held_until is None
        assert {event.who for event in status.timeline if event.kind == "notified"} == set(status.owners)
        await escalations.terminate_open()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_namespace_that_lacks_the_attributes_still_gets_the_incident() -> None:
    """A dev server whose namespace has none of the incident search attributes yet: the start
    with them is refused, the starter starts the incident without them, and once a worker has
    registered them the incident publishes them itself."""
    async with dev_server(search_attributes=False) as env:
        settings = make_settings()
        escalations = tracked(env.client, settings)
        key = unique_key("bare-namespace")
        # No worker yet: the start itself is what is refused, and then made without them.
        starting = asyncio.create_task(
            escalations.start_incident(policy="payments", key=key, priority="P2", summary="Refunds stuck")
        )
        handle = env.client.get_workflow_handle(workflow_id(key))
        for _ in range(100):
            if not escalations.start_with_attributes:
                try:
                    await handle.describe()
                    break
                except RPCError:
                    pass
            await asyncio.sleep(0.1)
        assert not escalations.start_with_attributes, "the start with unknown attributes was not refused"
        assert (await handle.describe()).typed_search_attributes.get(search.STATUS) is None
        # What a worker does when it starts (worker.run_worker); the incident then goes on.
        await ensure_search_attributes(env.client)
        async with create_worker(env.client, settings):
            opened = await asyncio.wait_for(starting, 60)
            assert opened.created and opened.status.status == "triggered"
            assert (await handle.describe()).typed_search_attributes.get(search.STATUS) == "triggered"
            await escalations.terminate_open()

