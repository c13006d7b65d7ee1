"""Polling in real time until something holds, failing with what never came."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


async def wait_for(
    what: str,
    probe: Callable[[], Awaitable[T | None]],
    timeout: float = 30,
    interval: float = 0.2,
    explain: Callable[[], str] | None = None,
) -> T:
    """Await ``probe`` until it returns something truthy, and return that; fail after ``timeout``
    seconds naming ``what`` (and what ``explain`` says)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}" + (f"\n{explain()}" if explain else ""))
        await asyncio.sleep(interval)


def wait_until(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """``wait_for`` for a probe that blocks (subprocesses, plain HTTP), outside an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
