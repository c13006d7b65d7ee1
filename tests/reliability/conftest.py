"""Fixtures of the reliability tests: real processes on loopback, each stopped at the end
whatever happened (the parts themselves are in ``processes.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.reliability.processes import Temporal, WorkerProcess
from tests.test_webhook import Receiver


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
