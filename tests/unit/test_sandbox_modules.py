"""The workflow sandbox's module lists are derived from the package, so that a new module lands
on the right one: the modules that run workflow code are sandboxed (re-imported per workflow and
checked), the deterministic rest is passed through (one copy of each model for every workflow)."""

from __future__ import annotations

import subprocess
import sys

from worker import PURE_MODULES, SANDBOXED_MODULES, WORKFLOWS_DIR

ALL = {f"workflows.{path.stem}" for path in WORKFLOWS_DIR.glob("*.py") if path.stem != "__init__"}


def test_every_workflows_module_is_on_exactly_one_list() -> None:
    assert set(PURE_MODULES) | set(SANDBOXED_MODULES) == ALL
    assert not set(PURE_MODULES) & set(SANDBOXED_MODULES)


def test_workflow_code_is_sandboxed_and_models_and_decisions_are_shared() -> None:
    for name in ("workflows.incident", "workflows.maintenance", "workflows.paging", "workflows.maintenance_hold", "workflows.lookups"):
        assert name in SANDBOXED_MODULES
    for name in ("workflows.model", "workflows.incident_state", "workflows.decisions", "workflows.schedule", "workflows.refusals"):
        assert name in PURE_MODULES


IMPORT_EACH_FIRST = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [module for module in sys.modules if module.startswith("workflows")]:
        del sys.modules[loaded]
    importlib.import_module(name)
"""


def test_each_shared_module_imports_first_on_its_own() -> None:
    """Each imported before any other module of the package (the sandbox may import them in
    any order): no import cycle between the models."""
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH_FIRST, *PURE_MODULES], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
