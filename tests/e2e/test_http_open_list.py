"""A resolved incident is never listed as open (issue 17, section 4).

After its resolution an incident's run goes on until its closing notices ("resolved: …") have
been delivered. Here they go to a webhook on 127.0.0.1 that refuses them (503, Retry-After a
minute), so the run stays open for minutes: all that time ``GET /v1/incidents?status=open`` and
``escalate list`` (both read Temporal's visibility store, on the real dev server) leave it out,
``?status=all`` shows it resolved, and ``limit`` counts the incidents listed, not the runs seen.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations
from starter.web import create_app
from tests.support.cli import cli_env, escalate
from tests.support.http import asgi_client, assert_status_json
from tests.support.policies import write_folder
from tests.support.receiver import Receiver, Reply
from tests.support.temporal import make_settings, module_dev_env, needs_binaries, unique_key
from worker import create_worker
from workflows.model import workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

dev_env = module_dev_env
"""The real dev server: its visibility store answers the list routes."""

DOWN_FOR_MAINTENANCE = Reply(503, b"", {"Retry-After": "60"})
"""A webhook receiver that is down for maintenance: every request gets 503, Retry-After a minute."""


def write_policies(root: Path, webhook: str) -> Path:
    """Olga is reached by webhook only; the manager by email (logged: no SMTP here)."""
    people = {"olga": {"webhook": webhook}, "mia": {"email": "mia@example.com"}}
    policy = {
        "policy": "hooks",
        "manager": "mia",
        "windows": {"P1": {"ack_within": "1h", "resolve_within": "4h"}},
        "tiers": [{"name": "On-call", "owners": ["olga"]}],
    }
    return write_folder(root / "policies", people, policy)


async def keys_listed(client: httpx.AsyncClient, **params: Any) -> list[str]:
    answer = await client.get("/v1/incidents", params=params)
    assert answer.status_code == 200, answer.text
    return [incident["key"] for incident in answer.json()]


async def escalate_list(address: str, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """``escalate list --json``, in its own process (the worker answers its queries meanwhile)."""
    run = await escalate(cli_env(tmp_path, TEMPORAL_ADDRESS=address), "list", "--json", *args, retry_crash=True)
    assert run.returncode == 0, str(run)
    listed: list[dict[str, Any]] = json.loads(run.stdout)
    return listed


@needs_binaries
async def test_a_resolved_incident_delivering_its_closing_notices_is_not_listed_as_open(
    dev_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver.route("/hooks/olga", DOWN_FOR_MAINTENANCE)))
    escalations = Escalations(dev_env.client, settings.task_queue)
    address = dev_env.client.service_client.config.target_host
    calm, closing = unique_key("still-open"), unique_key("closing")
    handle = dev_env.client.get_workflow_handle(workflow_id(closing))

    async def closing_still_runs() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    async with create_worker(dev_env.client, settings), asgi_client(create_app(settings, escalations)) as client:
        for key in (calm, closing):  # the newest first in the lists: closing
            body = {"policy": "hooks", "key": key, "priority": "P1", "summary": "Checkout latency over 2s"}
            assert_status_json(await client.post("/v1/incidents", json=body), 201)
        deadline = time.monotonic() + 30
        while set(await keys_listed(client, status="open")) != {calm, closing}:
            assert time.monotonic() < deadline, "both incidents in the open list"
            await asyncio.sleep(0.1)

        resolved = await client.post(f"/v1/incidents/{closing}/resolve", json={"by": "olga", "resolution": "rolled back"})
        assert assert_status_json(resolved)["status"] == "resolved"
        while not receiver.requests(kind="resolved"):  # its closing notice, refused: the run goes on
            assert time.monotonic() < deadline, f"no closing notice reached the receiver: {[r.kind for r in receiver.requests()]}"
            await asyncio.sleep(0.1)
        assert await closing_still_runs()

        # While it runs on: open leaves it out, all shows it resolved, and the limit counts what is listed.
        assert await keys_listed(client, status="open") == [calm]
        assert await keys_listed(client) == [calm], "open is the default"
        assert await keys_listed(client, status="open", limit=1) == [calm]
        everything = (await client.get("/v1/incidents", params={"status": "all"})).json()
        assert {incident["key"]: incident["status"] for incident in everything} == {closing: "resolved", calm: "triggered"}
        assert [incident.key for incident in await escalations.list_incidents("open")] == [calm]

        # The command line says the same (a separate process, on the same dev server).
        assert [incident["key"] for incident in await escalate_list(address, tmp_path)] == [calm]
        assert [incident["key"] for incident in await escalate_list(address, tmp_path, "--limit", "1")] == [calm]
        assert {incident["key"] for incident in await escalate_list(address, tmp_path, "--status", "all")} == {calm, closing}
        assert await closing_still_runs(), "the run closed before the lists were checked: the test proved nothing"
