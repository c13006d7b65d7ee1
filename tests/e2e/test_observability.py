"""Observability, against a real Temporal dev server (in memory, no UI; the time-skipping server
cannot list workflows): the typed search attributes and the queries they back, the summary and
current details the UI shows, the summaries of timers and activities in the history, the worker's
Prometheus endpoint, structured logs that replay never repeats, and ``escalate setup``.

One dev server and one worker serve the module; the client's runtime serves Prometheus metrics on
a free loopback port. One incident, "the story", runs through it in real time on a policy of
seconds (P1: ack within 4 s, remind 2 s before, resolve within 10 s):

    triggered (tier 1) → reminded → escalated to tier 2 → acknowledged by alice
    → resolution SLA breached → resolved

Observations are taken along the way, each test checks one aspect of them; the story's history is
then replayed with the Replayer, which must log nothing again.

Not tested here, and known: a worker replaying a history from scratch (after a cache eviction or a
restart) can log one workflow line a second time, when a workflow task that produced no commands
(say, recording a delivered notification) is directly followed by another (say, an ack's update).
The core SDK merges the two on replay and reports the first one's jobs as not replaying
(temporalio/sdk-rust#1606, open). A worker with ``max_cached_workflows=0`` shows it now and then.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
import structlog
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from escalate.logs import configure
from escalate.settings import Settings
from escalate.temporal import ensure_search_attributes, metrics_runtime
from starter.api import Escalations, InvalidRequest
from tests.support.cli import Run, cli_env, escalate
from tests.support.net import free_port
from tests.support.paths import ESCALATE, TEST_POLICIES
from tests.support.temporal import dev_server, make_settings, needs_temporal, unique_key
from tests.support.waiting import wait_for
from worker import create_worker
from workflows import search
from workflows.incident import IncidentWorkflow
from workflows.metrics import TIME_TO_ACKNOWLEDGE_BUCKETS
from workflows.model import IncidentStatus, workflow_id

T = TypeVar("T")

POLICY = "observed"
SUMMARY = "card authorisations failing"
SETUP_NAMESPACE = "escalate-setup-check"
"""A second namespace of the dev server, without our search attributes until `escalate setup`."""

# The policy of the story: the `fast` test policy's P1 windows, with a resolution SLA short
# enough to see it breached.
POLICY_YAML = f"""\
policy: {POLICY}
description: Seconds-long windows for the observability tests
manager: dana
windows:
  P1: {{ack_within: 4s, remind_before: 2s, resolve_within: 10s}}
tiers:
  - name: L1 first line
    owners: [team:first-line]
  - name: L2 engineering
    owners: [alice, bob]
  - name: L3 head of engineering
    owners: [carol]
"""

# How long visibility (eventually consistent) and the real-time story may take on a slow,
# shared 2-core machine.
VISIBLE_WITHIN = 15.0
STEP_WITHIN = 25.0

UTC_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"

STATUS = f"`{search.STATUS.name}`"
"""The status attribute as the queries below write it. Quoted: unquoted, ``Status`` is taken for
the SQL keyword STATUS by the server's query parser, which lowercases it and then finds no search
attribute ``status`` (see test_the_issue_query_works_as_written)."""


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


async def eventually(what: str, probe: Callable[[], Awaitable[T | None]], timeout: float = VISIBLE_WITHIN) -> T:
    """``wait_for``, as long as it takes visibility to show a change at the most."""
    return await wait_for(what, probe, timeout)


async def ids(client: Client, query: str) -> list[str]:
    return [execution.id async for execution in client.list_workflows(query)]


async def current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the UI shows as the workflow's current details (the SDK's built-in metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details: str = metadata.current_details
    return details


def summaries(history: WorkflowHistory, event_type: int) -> list[str]:
    """The user-metadata summaries of the history's events of one type, in order."""
    found = []
    for event in history.events:
        if event.event_type == event_type and event.user_metadata.HasField("summary"):
            found.append(pydantic_data_converter.payload_converter.from_payload(event.user_metadata.summary, str))
    return found


def events_of(history: WorkflowHistory, event_type: int) -> list[Any]:
    return [event for event in history.events if event.event_type == event_type]


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        samples.append(Sample(name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text: str = response.read().decode()
        return text


class LogCapture:
    """The JSON lines that ``escalate.logs.configure`` renders, captured in memory. The global
    logging state it changes is put back afterwards (other tests rely on the defaults)."""

    NOISY = ("httpx", "httpcore", "mail.log", "asyncio")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.buffer = io.StringIO()
        self.handler: logging.Handler | None = None

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._saved = (
            root.handlers[:],
            root.level,
            structlog.get_config(),
            workflow.logger.workflow_info_on_message,
            activity.logger.activity_info_on_message,
            {name: logging.getLogger(name).level for name in self.NOISY},
        )
        configure(self.settings, json_lines=True)
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(self.buffer)
        # Keep whatever handlers pytest had installed; ours is added beside them.
        root.handlers = [*self._saved[0], handler]
        self.handler = handler
        return self

    def __exit__(self, *_: object) -> None:
        _handlers, level, config, wf_info, act_info, noisy = self._saved
        root = logging.getLogger()
        if self.handler is not None:
            root.removeHandler(self.handler)
        root.setLevel(level)
        structlog.configure(**config)
        workflow.logger.workflow_info_on_message = wf_info
        activity.logger.activity_info_on_message = act_info
        for name, saved in noisy.items():
            logging.getLogger(name).setLevel(saved)

    def lines(self) -> list[dict[str, Any]]:
        """Every line so far, each of which must be one JSON object."""
        parsed = []
        for line in self.buffer.getvalue().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"a log line is not JSON: {line!r}")
            assert isinstance(item, dict), line
            parsed.append(item)
        return parsed


# ── the dev server, the worker and the story ─────────────────────────────────────────────────


@dataclass
class Server:
    env: WorkflowEnvironment
    metrics_port: int
    address: str


pytestmark = needs_temporal


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server() -> AsyncIterator[Server]:
    port = free_port()
    async with dev_server(
        ui=False, runtime=metrics_runtime(f"127.0.0.1:{port}"), dev_server_extra_args=["--namespace", SETUP_NAMESPACE]
    ) as env:
        yield Server(env, port, env.client.service_client.config.target_host)


@dataclass(repr=False)
class Story:
    """What was seen while one incident ran its course."""

    settings: Settings
    key: str
    handle: WorkflowHandle[Any, Any]
    logs: LogCapture
    static_summary: str | None = None
    typed_attributes: dict[str, Any] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    """Current details by stage: triggered, tier2, acknowledged, breached."""
    queries: dict[str, list[str]] = field(default_factory=dict)
    """Workflow ids a visibility query found, by a name for the moment it was asked."""
    listed: dict[str, list[str] | str] = field(default_factory=dict)
    """Keys ``Escalations.list_incidents(where=…)`` returned (or the error), by moment."""
    final: IncidentStatus | None = None
    history: WorkflowHistory | None = None

    def __repr__(self) -> str:
        return f"Story(incident {self.key})"


async def _run_story(client: Client, settings: Settings, story: Story) -> None:
    escalations = Escalations(client, settings.task_queue)
    key, handle = story.key, story.handle
    mine = f'IncidentKey="{key}"'

    async def found(query: str) -> list[str]:
        return await ids(client, f"{mine} AND ({query})")

    async def listed(where: str, which: str = "open") -> list[str] | str:
        try:
            return [item.key for item in await escalations.list_incidents(which, where=where)]  # type: ignore[arg-type]
        except Exception as err:  # recorded; the tests say what they expected
            return f"{type(err).__name__}: {err}"

    await escalations.start_incident(policy=POLICY, key=key, priority="P1", summary=SUMMARY)

    # ── triggered, tier 1 ──
    story.queries["by key"] = await eventually(f"{mine} to find the incident", lambda: ids(client, mine))
    early = await ids(client, f'{mine} AND {STATUS}="triggered" AND Tier>=2')
    if (await escalations.status(key)).tier == 1:
        # Asked while it was still at tier 1: visibility is never ahead of the workflow.
        story.queries["tier>=2 while at tier 1"] = early
    description = await handle.describe()
    story.static_summary = await description.static_summary()
    story.typed_attributes = {pair.key.name: pair.value for pair in description.typed_search_attributes}
    story.details["triggered"] = await current_details(handle)
    story.listed["by key while open"] = await listed(mine)

    # ── escalated to tier 2 ──
    story.queries["triggered, tier>=2"] = await eventually(
        "the escalation to tier 2 to become visible",
        lambda: found(f'{STATUS}="triggered" AND Tier>=2'),
        STEP_WITHIN,
    )
    story.details["tier2"] = await current_details(handle)
    # As the issue writes it (the name unquoted).
    story.listed["the issue's query"] = await listed(f'{search.STATUS.name}="triggered" AND Tier>=2')
    story.listed["quoted status, tier>=2"] = await listed(f'{STATUS}="triggered" AND Tier>=2')

    # ── acknowledged ──
    await escalations.acknowledge(key, by="alice")
    story.details["acknowledged"] = await current_details(handle)
    story.queries["acknowledged by alice"] = await eventually(
        "the ack to become visible", lambda: found('AcknowledgedBy="alice"')
    )
    story.queries["triggered after the ack"] = await found(f'{STATUS}="triggered"')
    story.queries["acknowledged"] = await found(f'{STATUS}="acknowledged"')
    story.queries["policy and priority"] = await found(f'Policy="{POLICY}" AND Priority="P1"')
    story.queries["SLA not breached yet"] = await found("SlaBreached=false")

    # ── the resolution SLA (10 s) passes while acknowledged ──
    story.queries["SLA breached"] = await eventually(
        "the SLA breach to become visible", lambda: found("SlaBreached=true"), STEP_WITHIN
    )
    story.details["breached"] = await current_details(handle)

    # ── resolved ──
    await escalations.resolve(key, by="alice", resolution="rolled back the card gateway")
    story.final = IncidentStatus.model_validate(await handle.result())
    story.queries["resolved"] = await eventually(
        "the resolution to become visible", lambda: found(f'{STATUS}="resolved" AND ExecutionStatus="Completed"')
    )
    story.listed["open after resolution"] = await listed(mine)
    story.listed["all after resolution"] = await listed(mine, "all")
    story.history = await handle.fetch_history()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def story(server: Server, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Story]:
    policies = tmp_path_factory.mktemp("observed-policies")
    shutil.copy(TEST_POLICIES / "directory.yaml", policies / "directory.yaml")
    (policies / f"{POLICY}.yaml").write_text(POLICY_YAML)
    settings = make_settings(policies, log_format="json")
    key = unique_key("observed")
    client = server.env.client
    with LogCapture(settings) as logs:
        async with create_worker(client, settings):
            story = Story(settings, key, client.get_workflow_handle(workflow_id(key)), logs)
            try:
                await _run_story(client, settings, story)
            except BaseException:
                try:
                    await story.handle.terminate("observability story failed")
                except Exception:
                    pass
                raise
            yield story


def workflow_lines(story: Story) -> list[dict[str, Any]]:
    """Log lines of the story's workflow code (activity lines name their activity type)."""
    return [
        line
        for line in story.logs.lines()
        if line.get("workflow_id") == workflow_id(story.key) and "activity_type" not in line
    ]


def metric_samples(server: Server, story: Story) -> list[Sample]:
    return [
        sample
        for sample in parse_metrics(scrape(server.metrics_port))
        if sample.labels.get("task_queue") == story.settings.task_queue
    ]


def one(samples: list[Sample], name: str, **labels: str) -> Sample:
    matching = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(matching) == 1, f"expected one {name}{labels}, got {matching}\nall: {[s.name for s in samples]}"
    return matching[0]


# ── search attributes ────────────────────────────────────────────────────────────────────────


def test_search_attributes_are_published_typed_from_the_start(story: Story) -> None:
    published = story.typed_attributes
    assert published.get(search.INCIDENT_KEY.name) == story.key
    assert published.get(search.POLICY.name) == POLICY
    assert published.get(search.PRIORITY.name) == "P1"
    assert published.get(search.STATUS.name) == "triggered"
    assert published.get(search.TIER.name) == 1
    assert published.get(search.SLA_BREACHED.name) is False
    assert search.ACKNOWLEDGED_BY.name not in published, "nobody has acknowledged yet"


def test_search_attribute_queries_follow_the_incident(story: Story) -> None:
    mine = [workflow_id(story.key)]
    q = story.queries
    assert q["by key"] == mine
    assert q.get("tier>=2 while at tier 1", []) == [], "found at tier >= 2 while it was still at tier 1"
    assert q["triggered, tier>=2"] == mine
    assert q["acknowledged by alice"] == mine
    assert q["triggered after the ack"] == [], "still found as triggered after the ack was visible"
    assert q["acknowledged"] == mine
    assert q["policy and priority"] == mine
    assert q["SLA not breached yet"] == mine
    assert q["SLA breached"] == mine
    assert q["resolved"] == mine


def test_list_incidents_filters_by_search_attributes(story: Story) -> None:
    assert story.listed["by key while open"] == [story.key]
    assert story.listed["quoted status, tier>=2"] and story.key in story.listed["quoted status, tier>=2"], story.listed
    assert story.listed["open after resolution"] == [], "a resolved incident is listed as open"
    assert story.listed["all after resolution"] == [story.key]


def test_the_issue_query_works_as_written(story: Story) -> None:
    """Issue #8: `Status="triggered" AND Tier>=2` works in the UI and backs `escalate list`."""
    result = story.listed["the issue's query"]
    assert isinstance(result, list) and story.key in result, (
        f'`escalate list --where \'Status="triggered" AND Tier>=2\'` failed: {result}. The server\'s '
        "query parser reads an unquoted Status as the SQL keyword STATUS (lowercased to `status`, "
        "no such search attribute); only `Status` in backticks works. Rename the attribute (e.g. "
        "IncidentStatus) or quote it for the user in list_incidents; the UI also shows a custom "
        "Status in place of the execution status (temporalio/ui#2577)."
    )


@pytest.mark.parametrize("where", ['Tier >>> 2', 'NoSuchAttribute="x"', 'Tier="two"'])
async def test_a_malformed_filter_is_an_invalid_request(server: Server, where: str) -> None:
    escalations = Escalations(server.env.client)
    with pytest.raises(InvalidRequest, match="not a valid visibility query"):
        await escalations.list_incidents(where=where)


# ── summaries and details ────────────────────────────────────────────────────────────────────


def test_static_summary_names_priority_policy_and_summary(story: Story) -> None:
    assert story.static_summary == f"[P1] {POLICY}: {SUMMARY}"


def test_current_details_follow_the_escalation(story: Story) -> None:
    details = story.details
    assert re.fullmatch(
        rf"\[P1\] tier 1 of 3 \(L1 first line\): waiting for an ack until {UTC_TIME}; resolve by {UTC_TIME}",
        details["triggered"],
    ), details["triggered"]
    assert re.fullmatch(
        rf"\[P1\] tier 2 of 3 \(L2 engineering\): waiting for an ack until {UTC_TIME}; resolve by {UTC_TIME}",
        details["tier2"],
    ), details["tier2"]
    assert re.fullmatch(
        rf"\[P1\] tier 2 of 3 \(L2 engineering\): acknowledged by alice; resolve by {UTC_TIME}", details["acknowledged"]
    ), details["acknowledged"]
    assert details["breached"] == "[P1] tier 2 of 3 (L2 engineering): acknowledged by alice; SLA breached"


def test_timers_and_activities_carry_summaries_that_read_as_the_escalation(story: Story) -> None:
    history = story.history
    assert history is not None
    started = events_of(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    assert summaries(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) == [story.static_summary], started

    timers = summaries(history, EventType.EVENT_TYPE_TIMER_STARTED)
    unnamed = len(events_of(history, EventType.EVENT_TYPE_TIMER_STARTED)) - len(timers)
    assert unnamed == 0, f"{unnamed} timer(s) without a summary; with: {timers}"
    for expected in (
        rf"tier 1 reminder at {UTC_TIME}",
        rf"tier 1 ack window until {UTC_TIME}",
        rf"tier 2 reminder at {UTC_TIME}",
        rf"resolution SLA until {UTC_TIME}",
    ):
        assert any(re.fullmatch(expected, text) for text in timers), f"no timer reads {expected!r}: {timers}"

    # The reads the incident opens with are local activities: markers, named the same way.
    local = summaries(history, EventType.EVENT_TYPE_MARKER_RECORDED)
    assert local == [f"load policy {POLICY}", f"maintenance window of {POLICY}?"], local

    activities = summaries(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    unnamed = len(events_of(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)) - len(activities)
    assert unnamed == 0, f"{unnamed} activit(y/ies) without a summary; with: {activities}"
    # This worker has no SMTP: email is passed over without asking it (the timeline says so).
    assert not any(text.endswith(" via email") for text in activities), activities
    for expected in (
        "page erin via log",
        "page frank via chat",
        "page frank via log",
        "remind erin via log",
        "page (escalated) alice via log",
        "page (escalated) bob via log",
        "tell the outcome to alice via log",
    ):
        assert expected in activities, f"no activity reads {expected!r}: {activities}"
    assert any(text.startswith("tell the manager (SLA breached): dana via ") for text in activities), activities
    assert not any("carol" in text for text in activities), "tier 3 was paged although tier 2 acknowledged"


# ── metrics ──────────────────────────────────────────────────────────────────────────────────


def test_metrics_endpoint_serves_our_counters_beside_the_sdk_series(server: Server, story: Story) -> None:
    text = scrape(server.metrics_port)
    assert "# TYPE escalate_incidents_opened_total counter" in text
    assert "# TYPE escalate_time_to_acknowledge_seconds histogram" in text
    samples = metric_samples(server, story)
    labels = {"policy": POLICY, "priority": "P1"}

    assert one(samples, "escalate_incidents_opened_total", **labels).value == 1
    assert one(samples, "escalate_incidents_resolved_total", **labels).value == 1
    assert one(samples, "escalate_sla_breaches_total", **labels).value == 1
    escalated = one(samples, "escalate_escalations_total", policy=POLICY, tier="2")
    assert escalated.value == 1 and escalated.labels.get("how") == "timeout", escalated
    assert not [s for s in samples if s.name == "escalate_escalations_total" and s.labels.get("tier") == "3"]
    opened = one(samples, "escalate_incidents_opened_total", **labels)
    assert opened.labels.get("workflow_type") == "Incident" and opened.labels.get("namespace") == "default", opened

    assert one(samples, "escalate_time_to_acknowledge_seconds_count", **labels).value == 1
    seconds = one(samples, "escalate_time_to_acknowledge_seconds_sum", **labels).value
    assert 3 <= seconds <= 4 + STEP_WITHIN, f"acknowledged {seconds}s after the trigger"
    buckets = {s.labels["le"]: s.value for s in samples if s.name == "escalate_time_to_acknowledge_seconds_bucket"}
    assert set(buckets) == {str(b) for b in TIME_TO_ACKNOWLEDGE_BUCKETS} | {"+Inf"}, sorted(buckets)
    assert buckets["30"] == 1 and buckets["+Inf"] == 1, buckets

    assert story.final is not None
    notified = [event for event in story.final.timeline if event.kind == "notified"]
    delivered = [
        s for s in samples if s.name == "escalate_notifications_total" and s.labels.get("outcome") == "logged"
    ]
    assert delivered and all(s.labels.get("channel") == "log" for s in delivered), delivered
    assert sum(s.value for s in delivered) == len(notified), (
        f"{sum(s.value for s in delivered)} notifications counted as logged, {len(notified)} in the timeline"
    )
    assert one(samples, "escalate_notifications_total", channel="chat", outcome="not_configured").value >= 1
    # Email is passed over by the incident itself (no worker has SMTP), and counted the same way.
    passed_over = one(samples, "escalate_notifications_total", channel="email", outcome="not_configured")
    assert passed_over.value >= len({event.who for event in notified}), passed_over

    sdk = {s.name for s in samples if s.name.startswith("temporal_")}
    assert {"temporal_workflow_completed", "temporal_activity_execution_latency_count"} <= sdk, sorted(sdk)


# ── logging ──────────────────────────────────────────────────────────────────────────────────


def test_workflow_lines_carry_incident_tier_and_workflow_id_once_each(story: Story) -> None:
    lines = workflow_lines(story)
    assert story.final is not None
    timeline = story.final.timeline
    for line in lines:
        assert line.get("incident") == story.key, line
        assert isinstance(line.get("tier"), int), line
        assert line.get("level") and line.get("timestamp"), line
    # One line per timeline event, in order, none repeated.
    assert [line["event"].split(":", 1)[0] for line in lines] == [event.kind for event in timeline], (
        "\n".join(line["event"] for line in lines)
    )
    notified = [line for line in lines if line["event"].startswith("notified")]
    assert notified and all(line.get("who") and line.get("channel") for line in notified), notified


def test_activity_lines_carry_incident_tier_who_channel_and_workflow_id(story: Story) -> None:
    lines = [
        line for line in story.logs.lines() if line.get("incident") == story.key and "activity_type" in line
    ]
    assert lines, "no log line from the story's activities"
    for line in lines:
        assert line["workflow_id"] == workflow_id(story.key), line
        assert line["activity_type"] == "notify", line
        assert isinstance(line.get("tier"), int) and line.get("who") and line.get("channel"), line
    people = {line["who"] for line in lines}
    assert {"erin", "frank", "alice", "bob", "dana"} <= people, people


async def test_a_replayed_history_logs_nothing_again(story: Story) -> None:
    assert story.history is not None
    before = len(workflow_lines(story))
    assert before > 0
    replayer = Replayer(workflows=[IncidentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(story.history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    after = workflow_lines(story)
    assert len(after) == before, "replay logged again:\n" + "\n".join(line["event"] for line in after[before:])


# ── setting up a namespace ───────────────────────────────────────────────────────────────────


async def run_escalate(server: Server, tmp_path: Path, *args: str, namespace: str) -> Run:
    return await escalate(cli_env(tmp_path, TEMPORAL_ADDRESS=server.address, TEMPORAL_NAMESPACE=namespace), *args)


@pytest.mark.skipif(not ESCALATE.exists(), reason="needs the escalate console script (pip install -e .)")
async def test_escalate_setup_registers_the_search_attributes_once(server: Server, tmp_path: Path) -> None:
    first = await run_escalate(server, tmp_path, "setup", namespace=SETUP_NAMESPACE)
    assert first.returncode == 0, first
    names = sorted(key.name for key in search.ALL)
    assert first.stdout.strip() == f"registered {', '.join(names)} on {server.address}", first

    again = await run_escalate(server, tmp_path, "setup", namespace=SETUP_NAMESPACE)
    assert again.returncode == 0, again
    assert again.stdout.strip() == f"search attributes already registered on {server.address}", again

    client = await Client.connect(server.address, namespace=SETUP_NAMESPACE)
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=SETUP_NAMESPACE))
    for key in search.ALL:
        assert listed.custom_attributes.get(key.name) == key.indexed_value_type.value, (key.name, listed.custom_attributes)
    assert await ensure_search_attributes(client) == []


async def test_ensure_search_attributes_is_idempotent(server: Server) -> None:
    assert await ensure_search_attributes(server.env.client) == []
    assert await ensure_search_attributes(server.env.client) == []


@pytest.mark.skipif(not ESCALATE.exists(), reason="needs the escalate console script (pip install -e .)")
async def test_escalate_setup_says_when_temporal_is_unreachable(server: Server, tmp_path: Path) -> None:
    nowhere = Server(server.env, server.metrics_port, f"127.0.0.1:{free_port()}")
    failed = await run_escalate(nowhere, tmp_path, "setup", namespace="default")
    assert failed.returncode == 1, failed
    assert "cannot reach Temporal" in failed.stderr and nowhere.address in failed.stderr, failed
