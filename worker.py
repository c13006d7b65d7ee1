"""The escalate worker: runs incident workflows and their activities on the ``escalations`` queue."""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from datetime import timedelta
from pathlib import Path
from types import CodeType
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import (
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)

import workflows
from activities import EscalationActivities
from escalate.logs import get_logger
from escalate.settings import Settings
from escalate.temporal import ensure_search_attributes
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWorkflow

WORKFLOWS_DIR = Path(workflows.__file__).resolve().parent


def _workflow_modules() -> dict[str, str]:
    """Every module of the ``workflows`` package, with its source."""
    return {
        f"workflows.{path.stem}": path.read_text(encoding="utf-8")
        for path in sorted(WORKFLOWS_DIR.glob("*.py"))
        if path.stem != "__init__"
    }


def _uses_workflow_api(source: str) -> bool:
    return "from temporalio import workflow" in source or "import temporalio.workflow" in source


SANDBOXED_MODULES = tuple(name for name, source in _workflow_modules().items() if _uses_workflow_api(source))
"""The modules that run workflow code (they call ``temporalio.workflow``): the sandbox imports
them afresh for every workflow and checks what they call."""

PURE_MODULES = tuple(name for name in _workflow_modules() if name not in SANDBOXED_MODULES)
"""The deterministic rest of the package (models, decisions, calendars, schedules), which the
workflow sandbox shares instead of re-importing for every run: one copy of each pydantic model
(so a model made by one module is the same class to another), and faster workflow starts.
Derived, so that a new module cannot be forgotten."""


class _SharedCodeLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, cache: dict[tuple[str, str], CodeType]) -> None:
        super().__init__(fullname, path)
        self._cache = cache

    def get_code(self, fullname: str) -> CodeType:
        key = (fullname, self.path)
        code = self._cache.get(key)
        if code is None:
            compiled = super().get_code(fullname)
            if compiled is None:  # a source file always compiles to code (or raises)
                raise ImportError(f"no code for {fullname} in {self.path}")
            code = self._cache[key] = compiled
        return code


class _SharedCodeFinder(importlib.abc.MetaPathFinder):
    """One compiled code object per workflow module, for every sandboxed import of it.

    The sandbox still runs the module afresh for each workflow (its own globals, classes and
    functions: the isolation, and the restrictions on what the workflow code may call, stay as
    they are); only the immutable code is shared instead of being read again each time. That
    saves about 140 KB per cached workflow (of about 340 KB: the bench's memory figure) and,
    where there is no bytecode cache (``PYTHONDONTWRITEBYTECODE`` with a source checkout), the
    7 ms compilation of ``workflows/incident.py`` per workflow. A worker runs the workflow code
    it first loaded, as it does the pass-through modules: restart it to deploy a change."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(names)
        self.code: dict[tuple[str, str], CodeType] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader or not spec.origin:
            return spec
        spec.loader = _SharedCodeLoader(fullname, spec.origin, self.code)
        return spec


def _share_workflow_code() -> None:
    if not any(isinstance(finder, _SharedCodeFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SharedCodeFinder(SANDBOXED_MODULES))


def workflow_runner() -> SandboxedWorkflowRunner:
    _share_workflow_code()
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
