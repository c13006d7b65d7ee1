"""The ``hooks`` policy of the delivery tests (webhook, chat, push, contact rules): a policy
folder whose people are reached at this test's receivers, an incident of it, and its end."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations
from tests.support.incidents import finish as finish_incident
from tests.support.incidents import open_incident as open_of
from tests.support.policies import Person, tiers_of, write_folder
from workflows.model import IncidentStatus, TimelineEvent

TIER_NAMES = ("On-call", "Backup", "Head of ops")


def write_policy_dir(
    root: Path,
    people: dict[str, Person],
    *,
    tiers: list[list[str]],
    teams: dict[str, list[str]] | None = None,
    manager: str = "mia",
    ack_within: str = "10m",
) -> Path:
    """``root/policies``: ``hooks.yaml`` (P1: ack within ``ack_within``, resolve within 1h) and
    a ``directory.yaml`` of ``people`` and ``teams``."""
    policy = {
        "policy": "hooks",
        "description": "Webhook and chat delivery tests",
        "manager": manager,
        "windows": {"P1": {"ack_within": ack_within, "resolve_within": "1h"}},
        "tiers": tiers_of(*tiers, names=TIER_NAMES),
    }
    return write_folder(root / "policies", people, policy, teams=teams)


async def open_incident(escalations: Escalations, prefix: str) -> tuple[str, datetime]:
    """A P1 incident of ``hooks``: its key and trigger time."""
    return await open_of(escalations, "hooks", prefix, summary="Checkout latency over 2s")


async def finish(time_env: WorkflowEnvironment, escalations: Escalations, key: str, name: str) -> IncidentStatus:
    """Resolve, wait for the run to close and keep its history for the replay test."""
    return await finish_incident(time_env, escalations, key, name, by="olga", resolution="rolled back the checkout deploy")


def attempt_numbers(failed: list[TimelineEvent]) -> list[str]:
    """The attempt number each failed delivery's detail gives."""
    return [event.detail.split(", attempt ")[1].split(":")[0] for event in failed]
