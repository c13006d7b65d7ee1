"""The example Grafana dashboard stays in step with the metrics the worker serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import workflows.metrics as metrics
from tests.support.paths import ROOT

DASHBOARD = ROOT / "examples" / "grafana" / "escalate-dashboard.json"


def defined_metric_names() -> set[str]:
    source = Path(metrics.__file__).read_text()
    names = set(re.findall(r'"(escalate_[a-z_]+)"', source))
    return names | {metrics.NOTIFICATIONS, metrics.TIME_TO_ACKNOWLEDGE}


def test_every_panel_queries_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = defined_metric_names()
    assert dashboard["panels"], "the dashboard has no panels"
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = set(re.findall(r"escalate_[a-z_]+", target["expr"]))
            base = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
            assert used and base <= known, f"{panel['title']!r} queries unknown metrics {base - known}"


def test_the_panels_cover_what_operators_watch() -> None:
    exprs = " ".join(t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"])
    for name in (
        "escalate_incidents_opened_total",
        "escalate_incidents_resolved_total",
        "escalate_escalations_total",
        "escalate_notifications_total",
        "escalate_time_to_acknowledge_seconds_bucket",
        "escalate_sla_breaches_total",
    ):
        assert name in exprs, f"no panel shows {name}"
