"""The real Prometheus Alertmanager into incidents: Debian's ``prometheus-alertmanager`` on
loopback ports, with a webhook receiver pointed at the app served by uvicorn (a real worker on the
time-skipping Temporal test server behind it) and a bearer token from
``http_config.authorization``, fed alerts through its own API. Alertmanager's payloads posted to
the app directly: tests/scenarios/test_http_alertmanager.py.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from tests.support.alertmanager import fingerprint, iso
from tests.support.http import TOKEN, assert_status_json, http_client, served, wait_closed, worker
from tests.support.net import free_port
from tests.support.temporal import make_settings
from tests.support.waiting import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")


def alertmanager_config(webhook_url: str, token: str) -> dict[str, Any]:
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "escalate",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "escalate",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                    }
                ],
            }
        ],
    }


@pytest.mark.skipif(
    not ALERTMANAGER.exists(),
    reason="needs Prometheus Alertmanager at /usr/bin/prometheus-alertmanager"
    " (Debian package prometheus-alertmanager; .ci/run installs it)",
)
async def test_the_real_alertmanager_opens_joins_and_resolves_incidents(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = make_settings(api_token=TOKEN)
    api_port, am_port = free_port(), free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(alertmanager_config(f"http://127.0.0.1:{api_port}/v1/integrations/alertmanager", TOKEN)))
    log = tmp_path / "alertmanager.log"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    run = fingerprint()
    labels = {
        "alertname": "RefundQueueBacklog", "severity": "critical", "escalate_policy": "payments",
        "instance": "refunds-1:9100", "job": "refunds", "test_run": run,
    }
    annotations = {"summary": "Refund queue backlog above 10k", "description": "refund_queue_depth is 14210"}
    started = datetime.now(UTC)
    first = {"labels": labels, "annotations": annotations, "startsAt": iso(started), "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=refund_queue_depth"}
    second = first | {"labels": labels | {"instance": "refunds-2:9100"}}

    def tail() -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-25:])

    async with worker(time_env, settings) as escalations, served(settings, escalations, api_port) as base:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(ALERTMANAGER), f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=", "--log.level=debug",
                ],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        try:
            async with http_client(f"http://127.0.0.1:{am_port}") as am, http_client(base, authorization=f"Bearer {TOKEN}") as api:

                async def ready() -> bool:
                    assert process.poll() is None, f"alertmanager exited with {process.returncode}:\n{tail()}"
                    try:
                        return (await am.get("/-/ready")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_for("Alertmanager to be ready", ready, timeout=30)

                async def fingerprints() -> dict[str, str] | None:
                    answer = await am.get("/api/v2/alerts", params={"filter": f'test_run="{run}"'})
                    assert answer.status_code == 200, answer.text
                    found = {a["labels"]["instance"]: a["fingerprint"] for a in answer.json()}
                    return found or None

                async def incident(key: str, **expect: Any) -> dict[str, Any] | None:
                    answer = await api.get(f"/v1/incidents/{key}")
                    if answer.status_code == 404:
                        return None
                    status = assert_status_json(answer)
                    return status if all(status.get(name) == value for name, value in expect.items()) else None

                assert (await am.post("/api/v2/alerts", json=[first])).status_code == 200
                fp_first = (await wait_for("the alert in Alertmanager", fingerprints))["refunds-1:9100"]
                key_first = f"am-{fp_first}"
                try:
                    opened = await wait_for(f"Alertmanager's webhook to open {key_first}", lambda: incident(key_first), timeout=30)
                except BaseException:
                    print(tail())
                    raise
                assert (opened["policy"], opened["priority"], opened["status"]) == ("payments", "P1", "triggered")
                assert opened["summary"] == "RefundQueueBacklog: Refund queue backlog above 10k (refunds-1:9100)"
                assert opened["details"]["labels"] == labels
                assert opened["details"]["annotations"] == annotations
                assert opened["details"]["source"] == "alertmanager"

                # A second alert in the same group: Alertmanager sends the group again, so the first joins.
                assert (await am.post("/api/v2/alerts", json=[first, second])).status_code == 200
                fp_second = (await wait_for("the second alert", lambda: _with(fingerprints, "refunds-2:9100")))["refunds-2:9100"]
                key_second = f"am-{fp_second}"
                await wait_for(f"{key_second} opened", lambda: incident(key_second, status="triggered"), timeout=30)
                joined = await wait_for(f"{key_first} joined", lambda: incident(key_first, occurrences=2), timeout=30)
                assert [e["kind"] for e in joined["timeline"]].count("triggered") == 1

                # Both end: Alertmanager sends them resolved (send_resolved), and each incident resolves.
                ended = iso(datetime.now(UTC) - timedelta(seconds=1))
                assert (await am.post("/api/v2/alerts", json=[first | {"endsAt": ended}, second | {"endsAt": ended}])).status_code == 200
                for key in (key_first, key_second):
                    resolved = await wait_for(f"{key} resolved by alertmanager", partial(incident, key, status="resolved"), timeout=30)
                    assert resolved["resolved_by"] == "alertmanager"
                    assert resolved["resolution"].startswith("alert RefundQueueBacklog resolved in Alertmanager at ")
                for key in (key_first, key_second):
                    await wait_closed(time_env, key)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def _with(probe: Any, instance: str) -> dict[str, str] | None:
    found = await probe()
    return found if found and instance in found else None
