"""An incident that has taken hundreds of updates answers the next one as fast as the first
(issue 24: an ack on an incident that had taken thousands once took over 10 s).

The bench's update-latency stage (``python -m bench.updates``, 10,000 updates against a bare
baseline) at a small size, with the same bound (``bench.updates.flat``): a real worker on the
real dev server, notes, refused acknowledgements and priority changes one after another through
the Python API, then one note through the HTTP API, whose answer is the whole status.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.harness import write_policies
from bench.updates import MAX_P99_S, UPDATES_POLICY, drive_incident, flat, http_action, summary
from starter.api import Escalations
from tests.support.temporal import make_settings, module_dev_env, needs_temporal, unique_key
from worker import create_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")

UPDATES = 600

dev_env = module_dev_env
"""The real dev server, for the module."""


@needs_temporal
async def test_the_latency_of_an_update_stays_flat_as_updates_pile_up(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path / "policies", {"bench-updates": UPDATES_POLICY}))
    escalations = Escalations(dev_env.client, settings.task_queue)
    key = unique_key("latency")
    async with create_worker(dev_env.client, settings):
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
