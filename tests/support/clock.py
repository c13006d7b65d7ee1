"""London wall-clock time, moving the time-skipping server's clock, and the wall clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment

LONDON = ZoneInfo("Europe/London")


def london(day: date, hour: int, minute: int = 0) -> datetime:
    """That London wall-clock time, in UTC."""
    return datetime.combine(day, time(hour, minute), LONDON).astimezone(UTC)


def local(moment: datetime | None) -> str:
    """A moment as a person in London reads it (``-`` for none)."""
    return moment.astimezone(LONDON).strftime("%a %Y-%m-%d %H:%M:%S %Z") if moment else "-"


async def move_to(env: WorkflowEnvironment, target: datetime) -> None:
    """Move the test server's clock to ``target`` (it only moves forward)."""
    now = await env.get_current_time()
    assert target > now, f"the server is already at {local(now)}, past {local(target)}"
    await env.sleep(target - now)


# ── the wall clock ───────────────────────────────────────────────────────────────────────────


def now() -> datetime:
    return datetime.now(UTC)


async def sleep_until(moment: datetime) -> None:
    """Sleep (in real time) until ``moment`` of the wall clock."""
    delay = (moment - now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)
