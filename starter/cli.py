"""The ``escalate`` command line. Exit status: 0 done; 1 rejected or failed (reason on stderr);
2 usage error."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar, cast

import typer
from pydantic import ValidationError

from escalate.codec import CodecKeyError
from escalate.settings import Settings, get_settings
from escalate.temporal import unreachable_message
from starter.api import (
    Escalations,
    IncidentNotFound,
    IncidentRejected,
    InvalidRequest,
    TemporalUnavailable,
    describe_validation_error,
)
from workflows.durations import format_time
from workflows.model import IncidentRequest, IncidentStatus, MaintenanceWindow, TriggerResult

if TYPE_CHECKING:
    from temporalio.client import Client

    from escalate.devserver import DevServer
    from starter.report import Format

T = TypeVar("T")

app = typer.Typer(
    name="escalate",
    help="Durable escalation pipelines for incidents and support cases, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Work with escalation policy files.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

By = Annotated[str, typer.Option("--by", help="Who is acting (a name from the directory).")]
Key = Annotated[str, typer.Argument(help="The incident key.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print the status JSON of the contract.")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"escalate: {message}", err=True)
    raise typer.Exit(code)


def _run(work: Callable[[Escalations], Awaitable[T]]) -> T:
    """Connect, run one call, and turn every known failure into a reason on stderr."""

    async def main() -> T:
        # The task queue the workers poll (ESCALATE_TASK_QUEUE): incidents started here run there.
        escalations = await Escalations.connect(task_queue=get_settings().task_queue)
        return await work(escalations)

    try:
        return asyncio.run(main())
    except InvalidRequest as err:
        fail(str(err), 2)
    except (IncidentRejected, IncidentNotFound, TemporalUnavailable) as err:
        fail(str(err))


# ── formatting ───────────────────────────────────────────────────────────────────────────────


def _short_time(moment: datetime) -> str:
    """A timeline row's time: ``format_time`` without the year and the zone, to keep rows short."""
    return format_time(moment)[5:-4]


def print_status(status: IncidentStatus) -> None:
    state = status.status + (" (exhausted: every tier was paged)" if status.exhausted else "")
    round_note = f" · round {status.round + 1}" if status.round else ""
    lines = [
        f"{status.key}  [{status.priority}] {status.policy}: {status.summary}",
        f"  status    {state}",
        f"  tier      {status.tier} of {status.tier_count} ({status.tier_name}){round_note}",
        f"  owners    {', '.join(status.owners) or '-'}",
    ]
    if status.acknowledged_by:
        lines.append(f"  acked by  {status.acknowledged_by}")
    clocks = [
        (status.next_reminder_at, "reminder  {}"),
        (status.next_escalation_at, "escalates {}"),
        (status.snoozed_until, "snoozed   until {}"),
        (status.held_until, "held      by a maintenance window until {}: nobody is paged"),
        (status.ack_expires_at, "ack ends  {} (unless resolved; ack again to keep it)"),
        (status.waiting_since, "waiting   on the customer since {} (clocks stopped)"),
    ]
    lines += ["  " + text.format(format_time(moment)) for moment, text in clocks if moment]
    if status.resolve_by:
        sla = "BREACHED" if status.sla_breached else ("met" if status.status == "resolved" else "on track")
        lines.append(f"  resolve   by {format_time(status.resolve_by)} ({sla})")
    if status.sla_reason:
        lines.append(f"  SLA why   {status.sla_reason}")
    if status.occurrences > 1:
        lines.append(f"  seen      {status.occurrences} times")
    if status.resolved_by:
        lines.append(f"  resolved  by {status.resolved_by} at {format_time(status.resolved_at)}: {status.resolution}")
    lines.append("  timeline")
    for event in status.timeline:
        tier = f"t{event.tier}" if event.tier else "  "
        lines.append(f"    {_short_time(event.at)}  {event.kind:<16} {tier:<3} {event.who or '':<8} {event.detail}")
    typer.echo("\n".join(lines))


def emit(status: IncidentStatus, as_json: bool, headline: str | None = None) -> None:
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
        return
    if headline:
        typer.echo(headline)
    print_status(status)


# ── opening and acting ───────────────────────────────────────────────────────────────────────


@app.command()
def start(
    policy: Annotated[str, typer.Option(help="The escalation policy (file name in ESCALATE_POLICY_DIR).")],
    key: Annotated[str, typer.Option(help="The incident key; a repeated key joins the open incident.")],
    priority: Annotated[str, typer.Option(help="P1…P5 (or critical, high, medium, low, info).")],
    summary: Annotated[str, typer.Option(help="One line saying what is wrong.")],
    details: Annotated[str | None, typer.Option(help="A JSON object with more context.")] = None,
    reporter: Annotated[str | None, typer.Option(help="Who reported it (an email address).")] = None,
    as_json: AsJson = False,
) -> None:
    """Open an incident, or join the open one with the same key."""
    try:
        parsed_details = json.loads(details) if details else {}
    except json.JSONDecodeError as err:
        fail(f"--details is not valid JSON ({err.msg} at column {err.colno}): pass an object like '{{\"host\": \"db-1\"}}'", 2)
    try:
        request = IncidentRequest(
            policy=policy, key=key, priority=priority, summary=summary, details=parsed_details, reporter=reporter
        )
    except ValidationError as err:
        fail(describe_validation_error(err, "--"), 2)
    result: TriggerResult = _run(lambda e: e.start_incident(request))
    status = result.status
    if result.created:
        headline = f"opened incident {status.key}: paging tier 1 ({status.tier_name}): {', '.join(status.owners)}"
    else:
        headline = f"joined open incident {status.key} (seen {status.occurrences} times); nobody paged again"
    emit(status, as_json, headline)


@app.command()
def ack(key: Key, by: By, note: Annotated[str | None, typer.Option(help="Why or what next.")] = None, as_json: AsJson = False) -> None:
    """Acknowledge: take the incident and stop all escalation."""
    emit(_run(lambda e: e.acknowledge(key, by=by, note=note)), as_json, f"acknowledged {key} by {by}")


@app.command()
def resolve(
    key: Key, by: By, resolution: Annotated[str, typer.Option(help="What fixed it.")], as_json: AsJson = False
) -> None:
    """Resolve the incident (at any status but resolved)."""
    emit(_run(lambda e: e.resolve(key, by=by, resolution=resolution)), as_json, f"resolved {key}")


@app.command()
def up(
    key: Key,
    by: By,
    reason: Annotated[str, typer.Option(help="Why it needs the next tier.")],
    to: Annotated[str | None, typer.Option("--to", help='Jump to this tier (number or name, e.g. "L3 head").')] = None,
    as_json: AsJson = False,
) -> None:
    """Escalate by hand to the next tier (or the one given with --to), which is paged at once."""
    status = _run(lambda e: e.escalate(key, by=by, reason=reason, to=to))
    emit(status, as_json, f"escalated {key} to tier {status.tier} ({status.tier_name})")


@app.command()
def reassign(
    key: Key,
    policy: Annotated[str, typer.Option(help="The policy (team) to hand the incident to.")],
    by: By,
    reason: Annotated[str, typer.Option(help="Why it belongs there.")],
    as_json: AsJson = False,
) -> None:
    """Hand the incident to another policy (functional escalation), starting at its tier 1."""
    emit(_run(lambda e: e.reassign(key, policy=policy, by=by, reason=reason)), as_json, f"reassigned {key} to {policy}")


@app.command()
def snooze(
    key: Key,
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 30m or 2h.")],
    by: By,
    as_json: AsJson = False,
) -> None:
    """Pause escalation; when the snooze ends the current tier is paged again."""
    status = _run(lambda e: e.snooze(key, duration=duration, by=by))
    emit(status, as_json, f"snoozed {key} until {format_time(status.snoozed_until)}")


@app.command()
def note(key: Key, text: Annotated[str, typer.Argument(help="The note.")], by: By, as_json: AsJson = False) -> None:
    """Add a note to the incident's timeline."""
    emit(_run(lambda e: e.add_note(key, by=by, text=text)), as_json, f"noted on {key}")


@app.command()
def priority(
    key: Key, new_priority: Annotated[str, typer.Argument(metavar="PRIORITY", help="P1…P5.")], by: By, as_json: AsJson = False
) -> None:
    """Change the priority; the current window and the resolution SLA count again from now."""
    emit(_run(lambda e: e.set_priority(key, priority=new_priority, by=by)), as_json, f"{key} is now {new_priority.upper()}")


@app.command("wait")
def wait_on_customer(
    key: Key, by: By, reason: Annotated[str, typer.Option(help="What the customer was asked.")], as_json: AsJson = False
) -> None:
    """Waiting on the customer: escalation and the SLA clock stop until `escalate resume`."""
    emit(_run(lambda e: e.wait_on_customer(key, by=by, reason=reason)), as_json, f"{key} is waiting on the customer")


@app.command()
def resume(
    key: Key, by: By, note: Annotated[str | None, typer.Option(help="What the customer said.")] = None, as_json: AsJson = False
) -> None:
    """The customer answered: the clocks run again with the time they had left."""
    emit(_run(lambda e: e.resume(key, by=by, note=note)), as_json, f"resumed {key}")


@app.command("sla-reason")
def sla_reason(key: Key, reason: Annotated[str, typer.Argument(help="Why the SLA was missed.")], by: By, as_json: AsJson = False) -> None:
    """Say why the resolution SLA was missed (the manager is asked when it is breached)."""
    emit(_run(lambda e: e.explain_sla(key, by=by, reason=reason)), as_json, f"SLA reason recorded on {key}")


# ── reading ──────────────────────────────────────────────────────────────────────────────────


@app.command()
def status(key: Key, as_json: AsJson = False) -> None:
    """Show an incident: status, tier, owners, deadlines and timeline."""
    emit(_run(lambda e: e.status(key)), as_json)


@app.command("list")
def list_incidents(
    which: Annotated[str, typer.Option("--status", help="open or all.")] = "open",
    where: Annotated[
        str | None, typer.Option("--where", help='A search-attribute filter, e.g. \'IncidentStatus="triggered" AND Tier>=2\'.')
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many, newest first.")] = 200,
    as_json: AsJson = False,
) -> None:
    """List incidents (open ones by default), newest first."""
    if which not in ("open", "all"):
        fail("--status: write open or all", 2)
    incidents = _run(lambda e: e.list_incidents(which, limit=limit, where=where))  # type: ignore[arg-type]
    if len(incidents) >= limit:  # on stderr, so that --json output stays one JSON document
        typer.echo(f"escalate: showing the newest {limit}; there may be more (--limit N shows more)", err=True)
    if as_json:
        typer.echo(json.dumps([json.loads(item.model_dump_json()) for item in incidents], indent=2))
        return
    if not incidents:
        typer.echo("no open incidents" if which == "open" else "no incidents")
        return
    typer.echo(f"{'KEY':<24} {'PRI':<4} {'POLICY':<16} {'STATUS':<13} {'TIER':<5} {'OWNERS':<20} SUMMARY")
    for item in incidents:
        typer.echo(
            f"{item.key:<24} {item.priority:<4} {item.policy:<16} {item.status:<13} "
            f"{item.tier:<5} {', '.join(item.owners)[:20]:<20} {item.summary}"
        )


# ── after-action review ──────────────────────────────────────────────────────────────────────

ReportFormat = Annotated[str, typer.Option("--format", help="md, html or json.")]
Output = Annotated[Path | None, typer.Option("-o", "--output", help="Write the report to this file.")]


def _check_format(fmt: str) -> Format:
    if fmt not in ("md", "html", "json"):
        fail("--format: write md, html or json", 2)
    return cast("Format", fmt)


def _deliver_report(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)


@app.command()
def review(
    key: Annotated[str | None, typer.Argument(help="The incident key (or use --policy/--since).", show_default=False)] = None,
    fmt: ReportFormat = "md",
    output: Output = None,
    policy: Annotated[str | None, typer.Option(help="Across incidents: only this policy.")] = None,
    since: Annotated[str | None, typer.Option(help="Across incidents: started within this long, e.g. 30d.")] = None,
) -> None:
    """After-action review, proven by replaying the history against today's code; or, with
    --policy/--since, figures across incidents."""
    from starter.report import render, render_policy_report
    from starter.review import (
        ReviewNotPossible,
        incidents_since,
        review_incident,
        summarise,
    )
    from workflows.durations import parse_duration

    chosen = _check_format(fmt)
    if key is None:
        if policy is None and since is None:
            fail("give an incident KEY, or --policy and/or --since for figures across incidents", 2)
        try:
            window = parse_duration(since or "30d")
        except ValueError as err:
            fail(f"--since: {err}", 2)
        start = datetime.now().astimezone() - window
        incidents = _run(lambda e: incidents_since(e.client, start, policy))
        _deliver_report(render_policy_report(summarise(incidents, policy, start), chosen), output)
        return
    try:
        report = _run(lambda e: review_incident(e.client, key))
    except ReviewNotPossible as err:
        fail(str(err))
    _deliver_report(render(report, chosen), output)
    if not report.replay.verified:
        fail(report.replay.message)


@app.command()
def export(key: Key, output: Annotated[Path, typer.Option("-o", "--output", help="The JSON file to write.")]) -> None:
    """Write the incident's history in Temporal's own JSON format (for `escalate replay`)."""
    from starter.review import ReviewNotPossible, export_history

    try:
        count = _run(lambda e: export_history(e.client, key, output))
    except ReviewNotPossible as err:
        fail(str(err))
    typer.echo(f"wrote {count} events of incident {key} to {output}", err=True)


@app.command()
def replay(
    files: Annotated[list[Path], typer.Argument(metavar="FILE.json", help="Exported histories.")],
    fmt: ReportFormat = "md",
    output: Output = None,
) -> None:
    """Replay exported histories offline (no server) and print their reviews."""
    from starter.report import render
    from starter.review import Review, ReviewNotPossible, load_history_file, review_history

    chosen = _check_format(fmt)
    if output is not None and len(files) > 1 and chosen != "json":
        fail("-o with several files needs --format json (one list); or review them one at a time", 2)

    async def all_reviews() -> list[Review]:
        return [await review_history(load_history_file(path), str(path)) for path in files]

    try:
        reviews = asyncio.run(all_reviews())
    except ReviewNotPossible as err:
        fail(str(err))
    if chosen == "json" and len(reviews) > 1:
        text = "[\n" + ",\n".join(r.model_dump_json(indent=2) for r in reviews) + "\n]\n"
    else:
        text = "\n---\n\n".join(render(r, chosen) for r in reviews)
    _deliver_report(text, output)
    unverified = [(path, r) for path, r in zip(files, reviews, strict=True) if not r.replay.verified]
    for path, r in unverified:
        typer.echo(f"escalate: {path}: {r.replay.message}", err=True)
    if unverified:
        raise typer.Exit(1)


@app.command()
def maintenance(
    policy: Annotated[str, typer.Argument(help="The policy.")],
    duration: Annotated[str | None, typer.Option("--for", help="Start (or extend) a window this long, e.g. 2h.")] = None,
    end: Annotated[bool, typer.Option("--end", help="End the window now: held incidents page at once.")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Who is acting.")] = None,
    reason: Annotated[str | None, typer.Option(help="What the maintenance is.")] = None,
    as_json: AsJson = False,
) -> None:
    """Maintenance windows: incidents opened for the policy meanwhile page nobody until it ends.
    Without --for or --end, shows the window that is on."""
    if duration and end:
        fail("give --for to start a window or --end to end it, not both", 2)
    if (duration or end) and not by:
        fail("--by: say who is acting", 2)
    if duration and not reason:
        fail("--reason: say what the maintenance is", 2)
    window: MaintenanceWindow | None
    if duration:
        window = _run(lambda e: e.start_maintenance(policy, duration=duration, by=by or "", reason=reason or ""))
    elif end:
        window = _run(lambda e: e.end_maintenance(policy, by=by or ""))
    else:
        window = _run(lambda e: e.maintenance(policy))
    if as_json:
        typer.echo(window.model_dump_json(indent=2) if window else "null")
        return
    if window is None:
        typer.echo(f"no maintenance window is on for {policy}")
    elif window.ended_by:
        typer.echo(f"maintenance of {policy} ended by {window.ended_by} at {format_time(window.until)}")
    else:
        held = f"; holding {', '.join(window.held)}" if window.held else ""
        typer.echo(f"maintenance of {policy} until {format_time(window.until)} (by {window.by}: {window.reason}){held}")


@app.command()
def oncall(
    schedule: Annotated[str | None, typer.Argument(help="One schedule (all of them when left out).")] = None,
    at: Annotated[str | None, typer.Option("--at", help="A time (ISO 8601; UTC unless it says otherwise).")] = None,
    as_json: AsJson = False,
) -> None:
    """Who is on call now (or at --at), from the schedules beside the policies."""
    from starter.oncall import InvalidMoment, PolicyError, UnknownSchedule, who_is_on_call

    try:
        answers = who_is_on_call(get_settings(), schedule, at)
    except InvalidMoment as err:
        fail(f"--at: {err}", 2)
    except (UnknownSchedule, PolicyError) as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps([json.loads(answer.model_dump_json()) for answer in answers], indent=2))
        return
    if not answers:
        typer.echo("no schedules")
    for answer in answers:
        who = answer.who or "NOBODY (a gap in the schedule)"
        until = f" until {format_time(answer.until)}" if answer.until else ""
        via = f" ({answer.layer})" if answer.layer else ""
        typer.echo(f"{answer.schedule:<24} {who}{via}{until}")


@policy_app.command("check")
def policy_check(paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Policy files or folders.")]) -> None:
    """Validate policy files: each problem names the file, line, field and what to write instead."""
    from activities.policy_store import check_paths

    report = check_paths(paths)
    for problem in report.problems:
        typer.echo(f"error: {problem}", err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    failed = {problem.file for problem in report.problems}
    for checked in report.checked:
        if checked not in failed:
            typer.echo(f"ok: {checked}")
    if not report.ok:
        fail(f"{len(report.problems)} problem(s) in {len(failed)} file(s)")


# ── running ──────────────────────────────────────────────────────────────────────────────────


def _serve(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a long-lived part until Ctrl-C or SIGTERM, then stop it cleanly."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


@app.command()
def worker() -> None:
    """Run the worker against TEMPORAL_ADDRESS (Prometheus metrics on ESCALATE_METRICS_ADDR)."""
    from escalate.logs import configure
    from escalate.temporal import SearchAttributesMissing, connect, metrics_runtime
    from worker import run_worker

    settings = get_settings()
    configure(settings)

    async def main(stop: asyncio.Event) -> None:
        try:
            client = await connect(runtime=metrics_runtime(settings.metrics_addr))
        except OSError as err:
            fail(str(err))
        except RuntimeError as err:
            fail(unreachable_message(err))
        try:
            await run_worker(client, settings, stop)
        except SearchAttributesMissing as err:
            fail(str(err))

    _serve(main)


@app.command()
def setup() -> None:
    """One-off set-up of a Temporal namespace for escalate: register the incident search
    attributes (escalate dev and workers do this themselves when they may)."""
    from escalate.temporal import (
        SearchAttributesMissing,
        connect,
        connect_config,
        ensure_search_attributes,
    )

    async def main() -> list[str]:
        return await ensure_search_attributes(await connect())

    try:
        added = asyncio.run(main())
    except SearchAttributesMissing as err:
        fail(str(err))
    except RuntimeError as err:
        fail(unreachable_message(err))
    target = connect_config()["target_host"]
    typer.echo(f"registered {', '.join(added)} on {target}" if added else f"search attributes already registered on {target}")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API against TEMPORAL_ADDRESS (OpenAPI docs at /docs)."""
    from escalate.logs import configure
    from starter.web import serve

    settings = get_settings()
    configure(settings)

    async def main(stop: asyncio.Event) -> None:
        try:
            await serve(settings, host, port, stop)
        except OSError as err:
            fail(str(err))

    _serve(main)


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Temporal gRPC port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port.")] = 8233,
    api_port: Annotated[int, typer.Option(help="HTTP API port.")] = 8000,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus metrics port of the worker [default: from ESCALATE_METRICS_ADDR, 9464]")
    ] = None,
    headless: Annotated[bool, typer.Option(help="Run without the Temporal UI.")] = False,
) -> None:
    """The embedded default: Temporal dev server (SQLite under ESCALATE_DATA_DIR), UI, worker and HTTP API."""
    from escalate.devserver import DevServer
    from escalate.logs import configure

    settings = _dev_settings(api_port, metrics_port)
    configure(settings)
    server = DevServer(port=port, ui_port=ui_port, data_dir=settings.data_dir, headless=headless)
    ui = "(headless)" if headless else f"http://127.0.0.1:{ui_port}"
    try:
        _serve(lambda stop: _run_dev(server, settings, api_port, ui, stop))
    finally:
        server.stop()
        typer.echo("escalate dev stopped; open incidents are kept for the next start", err=True)


def _dev_settings(api_port: int, metrics_port: int | None) -> Settings:
    """The settings with ``escalate dev``'s ports in them; fails when a port it serves on is taken."""
    from escalate.devserver import port_in_use

    settings = get_settings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"metrics_addr": f"127.0.0.1:{metrics_port}"})
    if "api_url" not in settings.model_fields_set:  # ESCALATE_API_URL not given: links point at this API
        settings = settings.model_copy(update={"api_url": f"http://127.0.0.1:{api_port}"})
    served_metrics_port = int(settings.metrics_addr.rsplit(":", 1)[1])
    for taken, flag in ((api_port, "--api-port"), (served_metrics_port, "--metrics-port")):
        if port_in_use(taken):
            fail(f"port {taken} is already in use: stop what is using it or choose another with {flag}", 1)
    return settings


def _dev_banner(server: DevServer, settings: Settings, api_port: int, ui: str) -> str:
    return "\n".join(
        [
            "escalate dev is running (Ctrl-C stops everything)",
            f"  Temporal  {server.address}   data {server.database}",
            f"  UI        {ui}",
            f"  API       http://127.0.0.1:{api_port}   docs http://127.0.0.1:{api_port}/docs",
            f"  metrics   http://{settings.metrics_addr}/metrics",
            f"  policies  {settings.policy_dir}",
            "  try       escalate start --policy walkthrough --key demo-1 --priority P1 --summary 'Disk full on db-1'",
        ]
    )


async def _run_dev(server: DevServer, settings: Settings, api_port: int, ui: str, stop: asyncio.Event) -> None:
    """Start the dev server, then run the worker and the HTTP API on it until ``stop``."""
    from escalate.devserver import DevServerError
    from escalate.temporal import SearchAttributesMissing, connect, metrics_runtime
    from starter.web import serve
    from worker import run_worker

    try:
        server.start()
        await server.wait_ready()
        runtime = metrics_runtime(settings.metrics_addr)
        client = await _connect_with_retry(lambda address: connect(address, runtime), server.address, stop)
    except (DevServerError, OSError) as err:
        fail(str(err))
    if client is None:
        return
    typer.echo(_dev_banner(server, settings, api_port, ui), err=True)
    api = asyncio.create_task(serve(settings, "127.0.0.1", api_port, stop, Escalations(client, settings.task_queue)))
    try:
        await run_worker(client, settings, stop)
    except SearchAttributesMissing as err:
        stop.set()
        await api
        fail(str(err))
    await api


async def _connect_with_retry(
    connect: Callable[[str], Awaitable[Client]], address: str, stop: asyncio.Event
) -> Client | None:
    """A client of the dev server that has just started (it takes a moment to accept); None when
    stopped meanwhile."""
    for _ in range(100):
        if stop.is_set():
            return None
        try:
            return await connect(address)
        except RuntimeError:
            await asyncio.sleep(0.3)
    fail(f"the Temporal dev server at {address} did not accept connections")


def main() -> None:
    code = 0
    try:
        app(standalone_mode=True)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except CodecKeyError as err:  # every command builds the data converter, so say it once here
        print(f"escalate: {err}", file=sys.stderr)
        code = 1
    # Leave without interpreter finalisation: the Temporal core's background threads can crash
    # a finalising interpreter (temporalio/sdk-python#300), turning a clean exit into SIGSEGV.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
