"""The HTTP API end to end: served by the real ``escalate dev`` (the dev server's visibility
store behind the list route, ``/docs``, the links in the pages it logs), and with Temporal going
away under the app and coming back (a TCP proxy in front of a time-skipping server).

The rest of the HTTP API, on a time-skipping server: tests/scenarios/test_http_api.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from escalate.settings import EXAMPLE_POLICIES
from starter.web import create_app
from tests.support.cli import cli_env
from tests.support.http import (
    LINK_SECRET,
    TOKEN,
    asgi_client,
    assert_problem,
    assert_status_json,
    http_client,
    links_in,
    new_incident,
    worker,
)
from tests.support.net import free_port
from tests.support.paths import ESCALATE
from tests.support.processes import kill_temporal, temporal_pids
from tests.support.temporal import make_settings, needs_binaries, unique_key
from tests.support.timeline import CONTRACT_KEYS
from tests.support.waiting import wait_for
from workflows.model import workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


# ── `escalate dev`: the real dev server, its visibility store, and /docs ─────────────────────


@needs_binaries
async def test_escalate_dev_serves_the_api_docs_and_lists_open_incidents_from_visibility(tmp_path: Path) -> None:
    temporal_port, ui_port, api_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    env = cli_env(
        tmp_path,
        ESCALATE_DATA_DIR=str(tmp_path),
        ESCALATE_POLICY_DIR=str(EXAMPLE_POLICIES),
        ESCALATE_LOG_FORMAT="json",
        ESCALATE_METRICS_ADDR=f"127.0.0.1:{free_port()}",
        ESCALATE_API_TOKEN=TOKEN,
        ESCALATE_LINK_SECRET=LINK_SECRET,
    )
    log = tmp_path / "dev.log"
    command = [str(ESCALATE), "dev", "--headless", "--port", str(temporal_port), "--ui-port", str(ui_port), "--api-port", str(api_port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    database = tmp_path / "temporal.db"

    def tail() -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-30:])

    try:
        async with http_client(base) as anonymous, http_client(base, authorization=f"Bearer {TOKEN}") as client:

            async def ready() -> bool:
                assert process.poll() is None, f"`escalate dev` exited with {process.returncode}:\n{tail()}"
                try:
                    return (await anonymous.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for("`escalate dev` to serve the API", ready, timeout=90)
            docs = await anonymous.get("/docs")
            assert docs.status_code == 200 and "swagger-ui" in docs.text.lower()
            spec = (await anonymous.get("/openapi.json")).json()
            assert {"/v1/incidents", "/v1/incidents/{key}", "/v1/integrations/alertmanager"} <= spec["paths"].keys()
            assert_problem(await anonymous.get("/v1/incidents"), 401)

            first, second = unique_key("dev-pay"), unique_key("dev-db")
            assert_status_json(await client.post("/v1/incidents", json=new_incident(first)), 201)
            assert_status_json(
                await client.post("/v1/incidents", json=new_incident(second, policy="database", priority="P3", summary="Replica lag")), 201
            )
            assert_status_json(await client.post("/v1/incidents", json=new_incident(first)), 200)

            async def listed(status: str, *keys: str) -> list[dict[str, Any]] | None:
                answer = await client.get("/v1/incidents", params={"status": status})
                assert answer.status_code == 200, answer.text
                incidents = answer.json()
                return incidents if set(keys) <= {incident["key"] for incident in incidents} else None

            open_now = await wait_for("both incidents in the open list", lambda: listed("open", first, second))
            by_key = {incident["key"]: incident for incident in open_now}
            assert CONTRACT_KEYS <= by_key[first].keys()
            assert (by_key[first]["policy"], by_key[first]["occurrences"]) == ("payments", 2)
            assert (by_key[second]["policy"], by_key[second]["priority"], by_key[second]["status"]) == ("database", "P3", "triggered")
            # Ten services racing on one key: one 201, and one workflow run in visibility.
            race = unique_key("dev-race")
            answers = await asyncio.gather(*(client.post("/v1/incidents", json=new_incident(race)) for _ in range(10)))
            assert sorted(answer.status_code for answer in answers) == [200] * 9 + [201]
            temporal = await Client.connect(f"127.0.0.1:{temporal_port}")

            async def runs() -> list[Any]:
                return [execution async for execution in temporal.list_workflows(f'WorkflowId = "{workflow_id(race)}"')]

            await wait_for("the race's incident in visibility", runs)
            await asyncio.sleep(1)
            assert len(await runs()) == 1
            assert assert_status_json(await client.get(f"/v1/incidents/{race}"))["occurrences"] == 10

            default = await client.get("/v1/incidents")
            assert {first, second} <= {incident["key"] for incident in default.json()}, "open is the default"
            newest = await client.get("/v1/incidents", params={"limit": 1})
            assert [incident["key"] for incident in newest.json()] == [race], "limit keeps the newest"
            assert_problem(await client.get("/v1/incidents", params={"limit": 0}), 422)

            # The page ivan got (in the worker log, no SMTP here) carries a link to this API.
            def ivan_page() -> str | None:
                for line in log.read_text(errors="replace").splitlines():
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if record.get("event") == "notification" and record.get("incident") == second and record.get("who") == "ivan":
                        return str(record["body"])
                return None

            async def ivan_paged() -> str | None:
                return ivan_page()

            body = await wait_for("ivan's page in the log", ivan_paged)
            ack_link = links_in(body)["ack"]
            assert ack_link.startswith(f"{base}/v1/links/")
            async with http_client(base) as browser:
                assert (await browser.get(ack_link)).status_code == 200
                assert (await browser.post(ack_link)).status_code == 200
            assert assert_status_json(await client.get(f"/v1/incidents/{second}"))["acknowledged_by"] == "ivan"

            resolving = await client.post(f"/v1/incidents/{first}/resolve", json={"by": "erin", "resolution": "Replayed the queue"})
            resolved = assert_status_json(resolving)
            assert resolved["status"] == "resolved"

            async def gone_from_open() -> bool:
                answer = await client.get("/v1/incidents", params={"status": "open"})
                return first not in {incident["key"] for incident in answer.json()}

            await wait_for("the resolved incident to leave the open list", gone_from_open)
            everything = await wait_for("both incidents in the full list", lambda: listed("all", first, second))
            states = {incident["key"]: incident["status"] for incident in everything}
            assert (states[first], states[second]) == ("resolved", "acknowledged")
            assert_problem(await client.get("/v1/incidents", params={"status": "closed"}), 422, field="query.status")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: it stops its Temporal too
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        kill_temporal(temporal_pids(database), database)  # a Temporal left behind on our own database only


# ── Temporal unreachable ─────────────────────────────────────────────────────────────────────


class TcpProxy:
    """A loopback TCP forwarder standing in for Temporal's address: stopping it is an outage
    (refused connections, and the open ones cut), starting it again is the recovery."""

    def __init__(self, port: int, target: str) -> None:
        self.port = port
        self.host, target_port = target.rsplit(":", 1)
        self.target_port = int(target_port)
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        for task in list(self.pipes):
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()
        self.server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.target_port)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        for task in (asyncio.create_task(pipe(reader, upstream_writer)), asyncio.create_task(pipe(upstream_reader, writer))):
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)


async def test_temporal_unreachable_is_503_with_retry_after_and_nothing_half_created(
    time_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet: Temporal is "down"
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "no-profile.toml"))
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    monkeypatch.delenv("TEMPORAL_API_KEY", raising=False)
    settings = make_settings()
    key, other = unique_key("api-down"), unique_key("api-cut")
    proxy = TcpProxy(port, time_env.client.service_client.config.target_host)
    async with worker(time_env, settings) as escalations:
        escalations.opened |= {key, other}  # opened through the app's own connection; closed after
        async with asgi_client(create_app(settings, escalations=None)) as client:

            def unavailable(answer: httpx.Response, says: str = f"cannot reach Temporal at 127.0.0.1:{port}") -> None:
                assert_problem(answer, 503, says=(says, "nothing was changed"))
                assert answer.headers["retry-after"] == "5"

            unavailable(await client.post("/v1/incidents", json=new_incident(key)))
            unavailable(await client.get(f"/v1/incidents/{key}"))
            unavailable(await client.get("/v1/incidents"))
            unavailable(await client.post(f"/v1/incidents/{key}/ack", json={"by": "erin"}))
            unavailable(await client.get(f"/v1/incidents/{key}/review"))
            unavailable(await client.post("/v1/integrations/alertmanager", json={"version": "4", "status": "firing", "alerts": []}))
            with pytest.raises(RPCError) as missing:
                await time_env.client.get_workflow_handle(workflow_id(key)).describe()
            assert missing.value.status == RPCStatusCode.NOT_FOUND

            # Temporal is back: the same app reconnects, and the key opens afresh, exactly once.
            await proxy.start()
            try:
                opened = assert_status_json(await client.post("/v1/incidents", json=new_incident(key)), 201)
                assert opened["occurrences"] == 1

                # Down while connected: the open connection is cut and new ones are refused.
                await proxy.stop()
                started = time.monotonic()
                unavailable(await client.post("/v1/incidents", json=new_incident(other)), says="Temporal is unavailable")
                assert time.monotonic() - started < 45
            finally:
                if proxy.server is None:
                    await proxy.start()
            assert_status_json(await client.post("/v1/incidents", json=new_incident(other)), 201)
            joined = assert_status_json(await client.post("/v1/incidents", json=new_incident(key)), 200)
            assert joined["occurrences"] == 2
            assert (await escalations.status(other)).occurrences == 1
            await proxy.stop()
