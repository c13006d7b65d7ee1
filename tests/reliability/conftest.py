"""Fixtures of the reliability tests: real processes on loopback, each stopped at the end
whatever happened (the parts themselves are in ``tests/support/processes.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.processes import Temporal, Workers
from tests.support.receiver import Receiver
from tests.support.temporal import module_time_env

time_env = module_time_env
"""A time-skipping server of each module's own (``tests.support.temporal.module_time_env``):
modules here skip days (a 30-day incident, the fuzzed incidents' windows) on a server nobody
else shares."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Temporal]:
    """One dev server on a SQLite file for the module; each test uses its own task queue."""
    server = Temporal(tmp_path_factory.mktemp("temporal"))
    try:
        await server.start()
        yield server
    finally:
        server.kill_all()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Every worker a test makes is killed at the end, whatever happened."""
    made = Workers(tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def hooks(receiver: Receiver) -> Receiver:
    """Everybody's webhook: a real HTTP server on 127.0.0.1 that keeps every request."""
    return receiver
