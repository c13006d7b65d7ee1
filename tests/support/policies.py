"""Policy folders written for one test: a ``directory.yaml`` whose addresses point at the test's
own receivers (their ports are only known at run time) and the policies, as a person writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.receiver import Receiver

Person = dict[str, Any]


# Both examples exactly as DESIGN.md writes them: files written like these must keep loading.
DESIGN_POLICY = """\
policy: payments
description: Card payments platform
manager: dana
windows:                       # per priority
  P1: {ack_within: 15m, remind_before: 5m, resolve_within: 4h}
  P2: {ack_within: 1h,  remind_before: 15m, resolve_within: 3d}
  P3: {ack_within: 5d,  remind_before: 1d, resolve_within: 30d}
tiers:
  - name: L1 support
    owners: [team:payments-support]
  - name: L2 payments engineering
    owners: [alice, bob]
  - name: L3 head of payments
    owners: [carol]
repeat: 1
"""

DESIGN_DIRECTORY = """\
people:
  alice: {email: alice@example.com, webhook: "https://hooks.example.com/alice", chat: "@alice"}
  bob: {email: bob@example.com, chat: "@bob"}
  carol: {email: carol@example.com}
  dana: {email: dana@example.com}
  erin: {email: erin@example.com}
  frank: {webhook: "https://hooks.example.com/frank"}
teams:
  payments-support: [erin, frank]
"""


def write_folder(
    folder: Path, people: dict[str, Person], *policies: dict[str, Any], teams: dict[str, list[str]] | None = None
) -> Path:
    """``directory.yaml`` (``people``, ``teams``) and each policy as ``<its name>.yaml`` in
    ``folder`` (made if missing). A person's channels are tried in the order written here, as in a
    hand-written directory."""
    folder.mkdir(parents=True, exist_ok=True)
    directory = {"people": people, "teams": teams or {}}
    (folder / "directory.yaml").write_text(yaml.safe_dump(directory, sort_keys=False))
    for policy in policies:
        (folder / f"{policy['policy']}.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return folder


def tier(name: str, *owners: str, **extra: Any) -> dict[str, Any]:
    """One tier of a policy: its name, owners and what else it says (``ack_within``…)."""
    return {"name": name, "owners": list(owners), **extra}


def policy(name: str, *, windows: dict[str, dict[str, str]], tiers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A policy as written in its YAML file, with mia as its manager."""
    return {"policy": name, "description": "on-call paging tests", "manager": "mia", "windows": windows, "tiers": tiers, **extra}


def tiers_of(*owners: list[str], names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Tiers with these owners, named from ``names`` or "Tier 1", "Tier 2"…"""
    return [{"name": names[n] if n < len(names) else f"Tier {n + 1}", "owners": list(who)} for n, who in enumerate(owners)]


def webhooks(receiver: Receiver, *names: str, under: str = "") -> dict[str, Person]:
    """People reached only by webhook, each at ``<under>/<name>`` of the receiver (routed there,
    answered 200 unless the test routes it otherwise)."""
    people = {}
    for name in names:
        path = f"{under}/{name}"
        if path not in receiver.scripts:
            receiver.route(path)
        people[name] = {"webhook": receiver.url(path)}
    return people


def write_policy(
    folder: Path,
    name: str,
    *,
    people: dict[str, Person],
    tiers: list[list[str]],
    windows: dict[str, dict[str, str]],
    manager: str = "mia",
    tier_windows: dict[int, str] | None = None,
) -> Path:
    """A policy of seconds-long windows for a real server, with ``repeat: 0``, and its
    ``directory.yaml``; ``tier_windows`` gives tiers (1-based) their own flat ``ack_within``."""
    own = tier_windows or {}
    policy = {
        "policy": name,
        "description": "Reliability tests: seconds-long windows on a real server",
        "manager": manager,
        "windows": windows,
        "tiers": [tier | ({"ack_within": own[n]} if n in own else {}) for n, tier in enumerate(tiers_of(*tiers), start=1)],
        "repeat": 0,
    }
    return write_folder(folder, people, policy)


def line_of(text: str, marker: str) -> int:
    """The 1-based line of ``text`` that contains ``marker`` (exactly one must)."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(lines) == 1, f"{marker!r} is on lines {lines}"
    return lines[0]
