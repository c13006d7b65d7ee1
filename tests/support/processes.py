"""Real processes on loopback: the Temporal dev server on a SQLite file (startable again on the
same file and port), and ``escalate worker`` as a subprocess in its own process group. The
reliability fixtures built on these (``temporal``, ``workers``) are in tests/reliability/conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from escalate.devserver import DevServer
from escalate.temporal import connect
from starter.api import Escalations
from tests.support.cli import make_env
from tests.support.clock import now
from tests.support.net import LOOPBACK, free_port
from tests.support.paths import ESCALATE
from tests.support.receiver import SECRET

# ── processes, as /proc shows them ───────────────────────────────────────────────────────────


def cmdline(pid: int) -> str:
    """The command line of a process ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def temporal_pids(database: Path) -> set[int]:
    """Live ``temporal server start-dev`` processes on this SQLite file (ours only)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            line = cmdline(int(entry.name))
            if "start-dev" in line and str(database) in line and alive(int(entry.name)):
                found.add(int(entry.name))
    return found


def stop_group(process: subprocess.Popen[bytes], grace: float = 0) -> None:
    """Stop a process started in a session of its own, with its whole group: SIGTERM and up to
    ``grace`` seconds to go (when there is a grace), then SIGKILL."""
    if process.poll() is not None:
        return
    if grace:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)


def kill_temporal(pids: set[int], database: Path) -> None:
    """Kill what is left of these ``temporal`` servers on ``database`` (each re-checked, so that
    a reused pid is spared)."""
    for pid in pids:
        if alive(pid) and str(database) in cmdline(pid):
            try:
                os.killpg(pid, signal.SIGKILL)  # `temporal` is a session (and group) leader
            except ProcessLookupError:
                pass
            except PermissionError:
                os.kill(pid, signal.SIGKILL)


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
            stop_group(process)  # a session (and group) leader


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

    @property
    def last_started(self) -> datetime:
        """When it was last started."""
        assert self.started_at is not None, "the worker was never started"
        return self.started_at

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
            stop_group(process)


class Workers(list[WorkerProcess]):
    """The ``escalate worker`` processes of one test, each killed at its end (the ``workers``
    fixture of tests/reliability/conftest.py), with their logs in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.log_dir = log_dir

    async def start(self, temporal: Temporal, policies: Path, prefix: str, **extra: str) -> tuple[WorkerProcess, Escalations]:
        """A worker with these policies on a task queue of its own, started and ready; the
        starter API on its queue."""
        queue = task_queue(prefix)
        worker = WorkerProcess(worker_env(temporal, policies, queue, **extra), self.log_dir)
        self.append(worker)
        await worker.start_ready()
        assert temporal.client is not None
        return worker, Escalations(temporal.client, queue)

    def cleanup(self) -> None:
        for worker in self:
            worker.cleanup()


def task_queue(prefix: str) -> str:
    """A task queue of the test's own."""
    return f"reliability-{prefix}-{uuid.uuid4().hex[:8]}"
