"""Prometheus Alertmanager webhooks (payload version 4) into incidents.

First realistic payloads posted to the running app (in process, a real worker on the
time-skipping Temporal test server behind it); then the real thing: Debian's
``prometheus-alertmanager`` on loopback ports, with a webhook receiver pointed at the app served
by uvicorn and a bearer token from ``http_config.authorization``, fed alerts through its own API.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from escalate.settings import Settings
from starter.web import SEVERITY_PRIORITY, Alert, alert_incident, create_app
from tests.conftest import make_settings, save_history
from tests.test_api import (
    TOKEN,
    asgi_client,
    assert_problem,
    assert_status_json,
    free_port,
    http_client,
    served,
    wait_closed,
    wait_for,
    worker,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
ENDLESS = "0001-01-01T00:00:00Z"
"""What Alertmanager writes as ``endsAt`` of an alert that is still firing."""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint() -> str:
    return uuid.uuid4().hex[:16]


def alert(
    fp: str,
    *,
    status: str = "firing",
    alertname: str = "RefundQueueBacklog",
    severity: str | None = "critical",
    policy: str | None = "payments",
    priority: str | None = None,
    instance: str = "refunds-1:9100",
    summary: str = "Refund queue backlog above 10k",
    started: datetime | None = None,
    ended: datetime | None = None,
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook sends it."""
    labels = {"alertname": alertname, "instance": instance, "job": "refunds", "env": "prod"}
    for name, value in (("severity", severity), ("escalate_policy", policy), ("escalate_priority", priority)):
        if value is not None:
            labels[name] = value
    started = started or datetime.now(UTC) - timedelta(minutes=5)
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": summary, "description": f"{summary} on {instance} for 5 minutes", "runbook_url": "https://runbooks.example.com/refunds"},
        "startsAt": iso(started),
        "endsAt": iso(ended) if ended else ENDLESS,
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=refund_queue_depth+%3E+10000&g0.tab=1",
        "fingerprint": fp,
    }


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    """A version 4 webhook payload around some alerts, the way Alertmanager groups them."""
    common = dict(set.intersection(*(set(a["labels"].items()) for a in alerts))) if alerts else {}
    return {
        "receiver": "escalate",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": common.get("alertname", "")},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "version": "4",
        "groupKey": '{}:{alertname="%s"}' % common.get("alertname", ""),
        "truncatedAlerts": 0,
    }


async def post(client: httpx.AsyncClient, *alerts: dict[str, Any], status: int = 200) -> dict[str, Any]:
    answer = await client.post("/v1/integrations/alertmanager", json=webhook(*alerts))
    assert answer.status_code == status, answer.text
    return answer.json()


def outcome(**lists: list[str]) -> dict[str, list[Any]]:
    return {"opened": [], "joined": [], "resolved": [], "already_closed": [], "errors": []} | lists


# ── realistic payloads posted to the app ─────────────────────────────────────────────────────


async def test_firing_opens_repeat_joins_resolved_resolves_by_alertmanager(time_env: WorkflowEnvironment) -> None:
    settings = make_settings()
    fp = fingerprint()
    key = f"am-{fp}"
    started = datetime.now(UTC) - timedelta(minutes=5)
    async with worker(time_env, settings) as escalations, asgi_client(create_app(settings, escalations)) as client:
        assert await post(client, alert(fp, started=started)) == outcome(opened=[key])
        opened = assert_status_json(await client.get(f"/v1/incidents/{key}"))
        assert (opened["policy"], opened["priority"], opened["status"], opened["tier"]) == ("payments", "P1", "triggered", 1)
        assert opened["summary"] == "RefundQueueBacklog: Refund queue backlog above 10k (refunds-1:9100)"
        details = opened["details"]
        assert details["source"] == "alertmanager"
        assert details["labels"]["alertname"] == "RefundQueueBacklog" and details["labels"]["escalate_policy"] == "payments"
        assert details["annotations"]["runbook_url"] == "https://runbooks.example.com/refunds"
        assert details["startsAt"] == iso(started)
        assert details["generatorURL"].startswith("http://prometheus.example.com:9090/graph")

        # Alertmanager sends the group again (repeat_interval, or another alert joined it): one incident.
        assert await post(client, alert(fp, started=started)) == outcome(joined=[key])
        assert await post(client, alert(fp, started=started)) == outcome(joined=[key])
        joined = assert_status_json(await client.get(f"/v1/incidents/{key}"))
        assert joined["occurrences"] == 3
        assert [e["kind"] for e in joined["timeline"]].count("triggered") == 1

        ended = datetime.now(UTC) - timedelta(seconds=30)
        assert await post(client, alert(fp, status="resolved", started=started, ended=ended)) == outcome(resolved=[key])
        resolved = assert_status_json(await client.get(f"/v1/incidents/{key}"))
        assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "alertmanager")
        assert resolved["resolution"] == f"alert RefundQueueBacklog resolved in Alertmanager at {iso(ended)}"

        # Alertmanager sends resolved notices more than once: the second finds it closed, and that is fine.
        assert await post(client, alert(fp, status="resolved", started=started, ended=ended)) == outcome(already_closed=[key])
        await wait_closed(time_env, key)
        assert await post(client, alert(fp, status="resolved", started=started, ended=ended)) == outcome(already_closed=[key])
        await save_history(time_env.client, key, "api_alertmanager_firing_resolved")

        # The same alert firing again after its incident closed opens a new one on the same key.
        assert await post(client, alert(fp)) == outcome(opened=[key])
        assert (await escalations.status(key)).occurrences == 1


async def test_a_resolved_alert_with_no_open_incident_is_fine(time_env: WorkflowEnvironment) -> None:
    settings = make_settings()
    async with worker(time_env, settings) as escalations, asgi_client(create_app(settings, escalations)) as client:
        fp = fingerprint()
        ended = datetime.now(UTC)
        assert await post(client, alert(fp, status="resolved", ended=ended)) == outcome(already_closed=[f"am-{fp}"])
        assert_problem(await client.get(f"/v1/incidents/am-{fp}"), 404)
        assert await post(client) == outcome(), "an empty group is fine too"


async def test_policy_and_priority_from_labels_then_settings(time_env: WorkflowEnvironment) -> None:
    settings = make_settings(alertmanager_policy="database", alertmanager_priority="P2")
    cases = {
        # fingerprint: (alert, policy, priority)
        "label-priority-wins": (dict(policy="payments", priority="P3", severity="critical"), "payments", "P3"),
        "alias-priority": (dict(policy="payments", priority="high", severity="critical"), "payments", "P2"),
        "severity-critical": (dict(policy=None, severity="critical"), "database", "P1"),
        "severity-page-upper": (dict(policy=None, severity="PAGE"), "database", "P1"),
        "severity-major": (dict(policy=None, severity="major"), "database", "P2"),
        "severity-warning": (dict(policy=None, severity="warning"), "database", "P3"),
        "severity-minor": (dict(policy=None, severity="minor"), "database", "P3"),
        "severity-unknown": (dict(policy=None, severity="disaster"), "database", "P2"),
        "no-severity": (dict(policy=None, severity=None), "database", "P2"),
    }
    run = fingerprint()[:6]
    alerts = [alert(f"{run}-{name}", **fields) for name, (fields, _, _) in cases.items()]
    async with worker(time_env, settings) as escalations, asgi_client(create_app(settings, escalations)) as client:
        result = await post(client, *alerts)
        assert sorted(result["opened"]) == sorted(f"am-{run}-{name}" for name in cases)
        for name, (_, policy, priority) in cases.items():
            status = assert_status_json(await client.get(f"/v1/incidents/am-{run}-{name}"))
            assert (status["policy"], status["priority"]) == (policy, priority), name


@pytest.mark.parametrize(
    ("labels", "priority"),
    [
        ({"severity": "critical"}, "P1"), ({"severity": "page"}, "P1"),
        ({"severity": "error"}, "P2"), ({"severity": "high"}, "P2"), ({"severity": "major"}, "P2"),
        ({"severity": "warning"}, "P3"), ({"severity": "minor"}, "P3"),
        ({"severity": "low"}, "P4"),
        ({"severity": "info"}, "P5"), ({"severity": "none"}, "P5"),
        ({"severity": "Warning"}, "P3"),
        ({"severity": "bogus"}, "P4"), ({}, "P4"),
        ({"severity": "info", "escalate_priority": "critical"}, "P1"),
    ],
)
async def test_the_documented_severity_mapping(labels: dict[str, str], priority: str) -> None:
    """README: critical/page → P1, error/high/major → P2, warning/minor → P3, low → P4,
    info/none → P5, else ESCALATE_ALERTMANAGER_PRIORITY; escalate_priority wins."""
    settings = Settings(alertmanager_policy="payments", alertmanager_priority="P4")
    request = alert_incident(Alert(status="firing", labels={"alertname": "X", **labels}, fingerprint="f00d"), settings)
    assert (request.key, request.policy, request.priority) == ("am-f00d", "payments", priority)
    assert set(SEVERITY_PRIORITY) == {"critical", "page", "error", "high", "major", "warning", "minor", "low", "info", "none"}


async def test_an_alert_that_cannot_be_mapped_is_422_naming_it(time_env: WorkflowEnvironment) -> None:
    settings = make_settings()  # no ESCALATE_ALERTMANAGER_POLICY
    async with worker(time_env, settings) as escalations, asgi_client(create_app(settings, escalations)) as client:
        good, nameless = fingerprint(), fingerprint()
        answer = await client.post(
            "/v1/integrations/alertmanager",
            json=webhook(alert(good), alert(nameless, alertname="DiskFull", policy=None, instance="db-1:9100")),
        )
        body = assert_problem(answer, 422, says=(f"am-{nameless} (DiskFull): no policy", "escalate_policy", "ESCALATE_ALERTMANAGER_POLICY"))
        assert body["opened"] == [f"am-{good}"], "the alerts that could be taken were taken"
        assert [(e["alert"], e["alertname"]) for e in body["errors"]] == [(f"am-{nameless}", "DiskFull")]
        assert_problem(await client.get(f"/v1/incidents/am-{nameless}"), 404)

        typo = fingerprint()
        answer = await client.post("/v1/integrations/alertmanager", json=webhook(alert(typo, policy="paymnts")))
        assert_problem(answer, 422, says=(f"am-{typo}", "unknown policy 'paymnts'", "did you mean 'payments'"))

        answer = await client.post("/v1/integrations/alertmanager", json=webhook(alert(fingerprint(), priority="urgent")))
        assert_problem(answer, 422, says=("unknown priority 'urgent'",))

        answer = await client.post("/v1/integrations/alertmanager", json=webhook(alert(fingerprint(), severity="low")))
        assert_problem(answer, 422, says=("P4",))  # payments has no P4 windows

        old = webhook(alert(fingerprint())) | {"version": "3"}
        assert_problem(await client.post("/v1/integrations/alertmanager", json=old), 422, says=("version 4",))

        broken = webhook(alert(fingerprint()))
        del broken["alerts"][0]["fingerprint"]
        assert_problem(await client.post("/v1/integrations/alertmanager", json=broken), 422, field="alerts.0.fingerprint")

        bad_status = webhook(alert(fingerprint(), status="pending"))
        assert_problem(await client.post("/v1/integrations/alertmanager", json=bad_status), 422, field="alerts.0.status")

        answer = await client.post("/v1/integrations/alertmanager", content=b'{"version": "4", "alerts": [', headers={"content-type": "application/json"})
        assert_problem(answer, 400)


async def test_a_bad_token_is_refused(time_env: WorkflowEnvironment) -> None:
    settings = make_settings(api_token=TOKEN)
    fp = fingerprint()
    async with worker(time_env, settings) as escalations:
        app = create_app(settings, escalations)
        for headers in ({}, {"authorization": "Bearer not-the-token"}, {"authorization": f"Basic {TOKEN}"}):
            async with asgi_client(app, **headers) as client:
                answer = await client.post("/v1/integrations/alertmanager", json=webhook(alert(fp)))
                assert_problem(answer, 401)
                assert answer.headers["www-authenticate"].startswith("Bearer")
        assert fp not in str(escalations.opened), "nothing was opened"
        async with asgi_client(app, authorization=f"Bearer {TOKEN}") as client:
            assert await post(client, alert(fp)) == outcome(opened=[f"am-{fp}"])


# ── the real Alertmanager ────────────────────────────────────────────────────────────────────


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
    reason="needs Prometheus Alertmanager at /usr/bin/prometheus-alertmanager (Debian package prometheus-alertmanager; .ci/run installs it)",
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
                    resolved = await wait_for(
                        f"{key} resolved by alertmanager", lambda key=key: incident(key, status="resolved"), timeout=30
                    )
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
