"""The escalate worker: runs incident workflows and their activities on the ``escalations`` queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import (
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)

from activities import EscalationActivities
from escalate.logs import get_logger
from escalate.settings import Settings
from escalate.temporal import ensure_search_attributes
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWorkflow

PURE_MODULES = (
    "workflows.calendar",
    "workflows.decisions",
    "workflows.durations",
    "workflows.metrics",
    "workflows.model",
    "workflows.policy",
    "workflows.search",
    "workflows.timeline",
)
"""Deterministic modules the workflow sandbox shares instead of re-importing for every run: one
copy of each pydantic model (so a model made by one module is the same class to another), and
faster workflow starts. The workflow module itself stays sandboxed."""


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_MODULES))


def create_worker(client: Client, settings: Settings, **options: Any) -> Worker:
    """The worker; ``options`` pass through to ``temporalio.worker.Worker`` (cache size, slots)."""
    activities = EscalationActivities(settings, client)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentWorkflow, MaintenanceWorkflow],
        activities=activities.all,
        workflow_runner=workflow_runner(),
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
