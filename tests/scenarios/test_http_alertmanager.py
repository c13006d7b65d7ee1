"""Prometheus Alertmanager webhooks (payload version 4) into incidents: realistic payloads
posted to the running app (in process), a real worker behind it on a time-skipping Temporal test
server of the module's own. The real Alertmanager feeding the app served by uvicorn:
tests/e2e/test_alertmanager.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from escalate.settings import Settings
from starter.web import SEVERITY_PRIORITY, Alert, alert_incident, create_app
from tests.support.alertmanager import fingerprint, iso
from tests.support.histories import save_history
from tests.support.http import TOKEN, asgi_client, assert_problem, assert_status_json, wait_closed, worker
from tests.support.temporal import make_settings, module_time_env

pytestmark = pytest.mark.asyncio(loop_scope="session")

time_env = module_time_env
"""A time-skipping server of this module's own, its clock where the wall clock is."""

ENDLESS = "0001-01-01T00:00:00Z"
"""What Alertmanager writes as ``endsAt`` of an alert that is still firing."""


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
    alertname = common.get("alertname", "")
    return {
        "receiver": "escalate",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": alertname},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
    }


async def post(client: httpx.AsyncClient, *alerts: dict[str, Any], status: int = 200) -> dict[str, Any]:
    answer = await client.post("/v1/integrations/alertmanager", json=webhook(*alerts))
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


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
    cases: dict[str, tuple[dict[str, Any], str, str]] = {
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

        truncated = b'{"version": "4", "alerts": ['
        answer = await client.post("/v1/integrations/alertmanager", content=truncated, headers={"content-type": "application/json"})
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
