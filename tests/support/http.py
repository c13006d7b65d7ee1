"""The HTTP API under test: the real app in process (``asgi_client``) or served by uvicorn on a
loopback port (``served``), a real worker behind it (``worker``), what a client sends it
(``new_incident``), what its answers must be (the status JSON of the contract, RFC 9457
problems), and the one-click links a page carries (``links_in``)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from escalate.settings import Settings
from starter.api import Escalations
from starter.web import serve
from tests.support.incidents import settle
from tests.support.net import free_port
from tests.support.temporal import TrackedEscalations, running
from tests.support.timeline import CONTRACT_KEYS, EVENT_KEYS
from workflows.model import workflow_id

PROBLEM = "application/problem+json"
TOKEN = "s3cr3t-api-token-for-tests"
"""A bearer token for ``ESCALATE_API_TOKEN``."""
LINK_SECRET = "link-signing-secret-for-tests"
"""A secret for ``ESCALATE_LINK_SECRET`` (signed one-click links)."""


def asgi_client(app: Any, **headers: str) -> httpx.AsyncClient:
    """A client of the app in this process (no network)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://escalate.test", headers=headers, trust_env=False
    )


def http_client(base_url: str, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers=headers, trust_env=False, timeout=60)


@asynccontextmanager
async def served(settings: Settings, escalations: Escalations | None, port: int | None = None) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port (``starter.web.serve``), until the block ends."""
    port = port or free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop, escalations))
    base = f"http://127.0.0.1:{port}"
    try:
        async with http_client(base) as probe:
            for _ in range(300):
                if task.done():
                    await task  # raises why it could not serve
                    pytest.fail("the API stopped while starting")
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"uvicorn did not answer on {base} within 15s")
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def worker(env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[TrackedEscalations]:
    """``running`` (a real worker; open incidents closed after), settled first."""
    async with running(env, settings) as escalations:
        try:
            yield escalations
        finally:
            await settle(escalations)


def new_incident(key: str, **overrides: Any) -> dict[str, Any]:
    """The body of ``POST /v1/incidents``: a payments P2 (an hour before anything fires, so that
    no timer gets in the way of a test in real time); an override of None leaves the field out."""
    body: dict[str, Any] = {
        "policy": "payments",
        "key": key,
        "priority": "P2",
        "summary": "Refunds stuck in the queue",
        "details": {"region": "eu-west-1", "queue_depth": 1200},
        "reporter": "oncall@example.com",
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


def assert_status_json(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """A 2xx answer that is the status JSON of the contract (times in ISO 8601 UTC)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert CONTRACT_KEYS <= body.keys(), f"missing contract keys: {CONTRACT_KEYS - body.keys()}"
    for event in body["timeline"]:
        assert EVENT_KEYS <= event.keys(), event
        assert datetime.fromisoformat(event["at"]).utcoffset() == timedelta(0), event["at"]
    if body["resolve_by"] is not None:
        assert datetime.fromisoformat(body["resolve_by"]).utcoffset() == timedelta(0)
    return body


def assert_problem(
    response: httpx.Response, status: int, *, field: str | None = None, says: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An RFC 9457 problem: the status, a title, a detail that says what to do; for bad input,
    the field at fault named in ``errors`` and in the detail."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"], body
    if field is not None:
        assert field in [error["field"] for error in body.get("errors", [])], body
        assert field in body["detail"], body["detail"]
    for words in says:
        assert words in body["detail"], f"{words!r} not in {body['detail']!r}"
    return body


async def wait_closed(env: WorkflowEnvironment, key: str, timeout: float = 15) -> None:
    """Until incident ``key``'s run has closed (in real time)."""
    handle = env.client.get_workflow_handle(workflow_id(key))
    deadline = time.monotonic() + timeout
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, f"incident {key} did not close after its resolution"
        await asyncio.sleep(0.05)


def links_in(text: str) -> dict[str, str]:
    """The one-click links of a message: ``ack`` and ``resolve``, those it carries."""
    found = {}
    for action, label in (("ack", "Or in one click: "), ("resolve", "Resolve: ")):
        match = re.search(re.escape(label) + r"(\S+)", text)
        if match:
            found[action] = match.group(1)
    return found
