"""Where things are: the repository, the test folders, the console script under test."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
"""The repository (or worktree) under test."""
TEST_POLICIES = TESTS / "policies"
"""The test policies: ``fast`` (4 s windows at P1), ``backup``, and their directory."""
HISTORIES = TESTS / "histories"
ARTIFACTS = TESTS / "artifacts"
"""Screenshots and other things kept for a person to look at (ignored by git)."""
EXAMPLES = ROOT / "examples" / "policies"
ESCALATE = Path(sys.executable).parent / "escalate"
"""The ``escalate`` console script of the interpreter running the tests."""
