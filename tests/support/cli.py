"""Running the real ``escalate`` console script as a user does, in an environment of the test's
own (no ``ESCALATE_``/``TEMPORAL_`` variable or Temporal profile of whoever runs the tests leaks
in), and reading how it exited.

A CLI process killed by SIGSEGV/SIGABRT at exit, after its work and output were done, is the
temporalio bridge crashing during interpreter finalisation (temporalio/sdk-python#300):
``run_cli`` records it in ``CLI_CRASHES``, reported by tests/e2e/test_e2e_cli.py
(test_cli_never_crashes_at_exit), not by every scenario test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from escalate.settings import Settings
from tests.support.net import free_port
from tests.support.paths import ESCALATE, TEST_POLICIES

CRASH_RETURN_CODES = {-signal.SIGSEGV, -signal.SIGABRT}
CLI_CRASHES: list[str] = []


# ── environments ─────────────────────────────────────────────────────────────────────────────


def cli_env(home: Path, **values: str) -> dict[str, str]:
    """This process's environment without any ``ESCALATE_``/``TEMPORAL_`` variable, with no
    Temporal profile (``TEMPORAL_CONFIG_FILE`` names a file in ``home`` that is not there), no
    proxy for loopback, unbuffered output; then ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCALATE_", "TEMPORAL_"))}
    env.update(
        TEMPORAL_CONFIG_FILE=str(home / "no-temporal-profile.toml"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.update(values)
    return env


def make_env(data_dir: Path, port: int) -> dict[str, str]:
    """The environment of an ``escalate dev`` (and of the commands run against it) on Temporal
    port ``port``, with the test policies, its data and JSON logs in ``data_dir``."""
    return cli_env(
        data_dir,
        ESCALATE_DATA_DIR=str(data_dir),
        ESCALATE_POLICY_DIR=str(TEST_POLICIES),
        ESCALATE_LOG_FORMAT="json",
        ESCALATE_METRICS_ADDR=f"127.0.0.1:{free_port()}",
        TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
    )


def server_env(env: WorkflowEnvironment, settings: Settings, home: Path) -> dict[str, str]:
    """The environment of a command run against this server and the test's worker (its policies
    and task queue), e.g. the time-skipping server."""
    return cli_env(
        home,
        TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=env.client.namespace,
        ESCALATE_POLICY_DIR=str(settings.policy_dir),
        ESCALATE_DATA_DIR=str(home / "data"),
        ESCALATE_TASK_QUEUE=settings.task_queue,
    )


def offline(env: dict[str, str]) -> dict[str, str]:
    """The same environment with no Temporal (and no API) reachable."""
    return {**env, "TEMPORAL_ADDRESS": "127.0.0.1:1", "ESCALATE_API_URL": "http://127.0.0.1:1"}


# ── running it ───────────────────────────────────────────────────────────────────────────────


@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def crashed_at_exit(self) -> bool:
        return self.returncode in CRASH_RETURN_CODES

    @property
    def code(self) -> int:
        """The exit status; for a crash at exit, the status its output says it had (1 when it
        said why it failed, else 0)."""
        if self.crashed_at_exit:
            return 1 if self.stderr.strip().startswith("escalate: ") else 0
        return self.returncode

    @property
    def outcome(self) -> tuple[int, str, str]:
        """(exit status as it was, stdout, stderr)."""
        return self.returncode, self.stdout, self.stderr

    @property
    def reported(self) -> tuple[int, str, str]:
        """(exit status, inferred after a crash at exit (``code``), stdout, stderr)."""
        return self.code, self.stdout, self.stderr

    def __str__(self) -> str:
        return (
            f"`escalate {' '.join(self.args)}` exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def run_cli(env: dict[str, str], *args: str, retry_crash: bool = False, timeout: float = 60) -> Run:
    """Run ``escalate ARGS``. ``retry_crash`` (for reads only) runs it again if it crashed at exit."""
    for _ in range(3):
        try:
            done = subprocess.run(
                [str(ESCALATE), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"`escalate {' '.join(args)}` did not finish within {timeout:.0f}s: {err.stderr!r}")
        run = Run(tuple(args), done.returncode, done.stdout, done.stderr)
        if not run.crashed_at_exit:
            return run
        CLI_CRASHES.append(str(run))
        if not retry_crash:
            return run
    return run


def expect_exit(run: Run, code: int) -> None:
    """Assert the exit status. A crash at interpreter exit (recorded in CLI_CRASHES, reported by
    its own test) hides the status; the caller's checks of the output still apply."""
    if run.crashed_at_exit and code in (0, 1):
        return
    assert run.returncode == code, str(run)


async def escalate(env: dict[str, str], *args: str, timeout: float = 60, retry_crash: bool = False) -> Run:
    """``run_cli`` without blocking the event loop (a worker of the test may run on it).
    ``retry_crash`` (for reads only) runs it again if it crashed at exit."""
    for _ in range(3):
        process = await asyncio.create_subprocess_exec(
            str(ESCALATE), *args, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"`escalate {' '.join(args)}` did not finish within {timeout:.0f}s (no worker on its task queue?)")
        assert process.returncode is not None
        run = Run(tuple(args), process.returncode, stdout.decode(), stderr.decode())
        if not run.crashed_at_exit:
            return run
        print(f"\n[cli] `escalate {' '.join(args)}` crashed at exit ({run.returncode})")
        if not retry_crash:
            return run
    return run


def policy_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    """``escalate policy check PATH…``."""
    return subprocess.run(
        [str(ESCALATE), "policy", "check", *map(str, paths)], capture_output=True, text=True, timeout=60, check=False
    )


def without_source_line(markdown: str) -> str:
    """A review in Markdown without its ``_Source:`` line (where the history was read from)."""
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("_Source:"))
