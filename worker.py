"""The escalate worker: runs incident workflows and their activities on the ``escalations`` queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities import EscalationActivities
from escalate.logs import get_logger
from escalate.settings import Settings
from escalate.temporal import ensure_search_attributes
from workflows.incident import IncidentWorkflow


def create_worker(client: Client, settings: Settings, **options: Any) -> Worker:
    """The worker; ``options`` pass through to ``temporalio.worker.Worker`` (cache size, slots)."""
    activities = EscalationActivities(settings)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentWorkflow],
        activities=activities.all,
        # In-flight notifications get this long to finish when the worker is asked to stop.
        graceful_shutdown_timeout=timedelta(seconds=10),
        **options,
    )


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then shut down gracefully."""
    log = get_logger(task_queue=settings.task_queue)
    added = await ensure_search_attributes(client)
    if added:
        log.info("registered search attributes", names=added)
    worker = create_worker(client, settings)
    async with worker:
        log.info("worker started", policy_dir=str(settings.policy_dir))
        await stop.wait()
        log.info("worker stopping")
