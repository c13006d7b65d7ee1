"""The policy (escalation matrix) and the contact directory as models: what loads, what is
rejected and with which hint, and how a snapshot expands teams to people."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from activities.policy_store import PolicyStore, check_paths
from tests.support.policies import DESIGN_DIRECTORY, DESIGN_POLICY
from workflows.model import NewIncident
from workflows.policy import (
    PRIORITY_HINT,
    Directory,
    Person,
    Policy,
    PolicySnapshot,
    Tier,
    Windows,
    contact_problems,
    directory_problems,
    normalise_priority,
    snapshot,
)


def design_policy(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DESIGN_POLICY)
    data.update(changes)
    return data


@pytest.fixture
def policy() -> Policy:
    return Policy.model_validate(yaml.safe_load(DESIGN_POLICY))


@pytest.fixture
def directory() -> Directory:
    return Directory.model_validate(yaml.safe_load(DESIGN_DIRECTORY))


def error_text(err: pytest.ExceptionInfo[ValidationError]) -> str:
    return "\n".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.value.errors())


# ── the DESIGN.md examples ─────────────────────────────────────────────────────────────────


def test_design_example_policy_loads(policy: Policy) -> None:
    assert policy.policy == "payments"
    assert policy.description == "Card payments platform"
    assert policy.manager == "dana"
    assert policy.repeat == 1
    assert [tier.name for tier in policy.tiers] == ["L1 support", "L2 payments engineering", "L3 head of payments"]
    assert [tier.owners for tier in policy.tiers] == [["team:payments-support"], ["alice", "bob"], ["carol"]]
    assert list(policy.windows) == ["P1", "P2", "P3"]
    p1 = policy.windows_for("P1")
    assert (p1.ack_within, p1.remind_before, p1.resolve_within) == (
        timedelta(minutes=15),
        timedelta(minutes=5),
        timedelta(hours=4),
    )
    assert policy.windows_for("P2").resolve_within == timedelta(days=3)
    assert policy.windows_for("P3").ack_within == timedelta(days=5)
    assert policy.windows_for("P3").remind_before == timedelta(days=1)


def test_design_example_directory_loads(directory: Directory) -> None:
    assert list(directory.people) == ["alice", "bob", "carol", "dana", "erin", "frank"]
    alice = directory.people["alice"]
    assert [(point.channel, point.address) for point in alice.channels] == [
        ("email", "alice@example.com"),
        ("webhook", "https://hooks.example.com/alice"),
        ("chat", "@alice"),
    ], "every channel, in the order the directory lists them"
    assert [(point.channel, point.address) for point in directory.people["frank"].channels] == [
        ("webhook", "https://hooks.example.com/frank")
    ]
    assert directory.teams == {"payments-support": ["erin", "frank"]}
    assert directory_problems(directory) == []


def test_design_examples_have_no_contact_problems(policy: Policy, directory: Directory) -> None:
    assert contact_problems(policy, directory) == []


def test_design_examples_load_as_files(tmp_path: Path) -> None:
    (tmp_path / "directory.yaml").write_text(DESIGN_DIRECTORY)
    (tmp_path / "payments.yaml").write_text(DESIGN_POLICY)
    report = check_paths([tmp_path])
    assert report.ok, "\n".join(map(str, report.problems))
    assert sorted(report.checked) == [str(tmp_path / "directory.yaml"), str(tmp_path / "payments.yaml")]
    snap = PolicyStore(tmp_path).load("payments")
    assert snap.people_of(1) == ["erin", "frank"]
    assert [point.address for point in snap.people["frank"].channels] == ["https://hooks.example.com/frank"]


def test_windows_for_a_priority_the_policy_lacks_names_the_ones_it_has(policy: Policy) -> None:
    with pytest.raises(ValueError, match=r"no windows for P4: it defines P1, P2, P3"):
        policy.windows_for("P4")


# ── priorities ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("written", "priority"),
    [("P1", "P1"), ("p2", "P2"), (" P5 ", "P5"), ("critical", "P1"), ("High", "P2"), ("medium", "P3"),
     ("moderate", "P3"), ("low", "P4"), ("info", "P5"), ("informational", "P5")],
)
def test_priorities_normalise(written: str, priority: str) -> None:
    assert normalise_priority(written) == priority


@pytest.mark.parametrize("written", ["P7", "P0", "urgent", "", "1"])
def test_unknown_priority_is_rejected_with_the_hint(written: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalise_priority(written)
    assert f"unknown priority {written!r}" in str(caught.value)
    assert PRIORITY_HINT in str(caught.value)


def test_policy_window_keys_normalise() -> None:
    policy = Policy.model_validate(
        design_policy(windows={"critical": {"ack_within": "15m"}, "medium": {"ack_within": "5d", "remind_at": "4d"}})
    )
    assert list(policy.windows) == ["P1", "P3"]
    assert policy.windows_for("P3").remind_at == timedelta(days=4)
    assert policy.windows_for("medium") is policy.windows_for("P3")


def test_policy_rejects_p7_at_its_key() -> None:
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(design_policy(windows={"P7": {"ack_within": "15m"}}))
    (error,) = caught.value.errors()
    assert error["loc"][:2] == ("windows", "P7")
    assert PRIORITY_HINT in error["msg"]


def test_policy_rejects_two_names_for_one_priority() -> None:
    # A dict keyed by the normalised priority would silently keep only one of the two.
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(design_policy(windows={"critical": {"ack_within": "15m"}, "P1": {"ack_within": "1h"}}))
    assert "'critical' and 'P1' are both P1: keep one of them" in error_text(caught)


# ── windows ───────────────────────────────────────────────────────────────────────────────


def test_reminder_offset() -> None:
    assert Windows(ack_within="15m", remind_before="5m").reminder_offset() == timedelta(minutes=10)
    assert Windows(ack_within="5d", remind_at="4d").reminder_offset() == timedelta(days=4)
    assert Windows(ack_within="15m").reminder_offset() is None


@pytest.mark.parametrize("remind_before", ["15m", "20m", "1h"])
def test_remind_before_must_be_inside_the_window(remind_before: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Windows(ack_within="15m", remind_before=remind_before)
    (error,) = caught.value.errors()
    assert error["loc"] == ("remind_before",)
    assert "is not inside the ack_within window of 15m" in error["msg"]
    assert "write a duration shorter than 15m, e.g. remind_before: 5m" in error["msg"]


@pytest.mark.parametrize("remind_at", ["1h", "2h"])
def test_remind_at_must_be_inside_the_window(remind_at: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Windows(ack_within="1h", remind_at=remind_at)
    (error,) = caught.value.errors()
    assert error["loc"] == ("remind_at",)
    assert f"remind_at {remind_at} is not inside the ack_within window of 1h" in error["msg"]
    assert "e.g. remind_at: 40m" in error["msg"]


def test_zero_reminder_is_rejected() -> None:
    with pytest.raises(ValidationError, match="not inside the ack_within window"):
        Windows(ack_within="15m", remind_before="0s")


def test_remind_before_and_remind_at_together_are_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        Windows(ack_within="15m", remind_before="5m", remind_at="10m")
    (error,) = caught.value.errors()
    assert error["loc"] == ("remind_at",)
    assert "either remind_before" in error["msg"] and "not both" in error["msg"]


def test_zero_windows_are_rejected() -> None:
    with pytest.raises(ValidationError, match="ack_within must be longer than 0s"):
        Windows(ack_within="0s")
    with pytest.raises(ValidationError, match="resolve_within must be longer than 0s"):
        Windows(ack_within="15m", resolve_within="0s")


def test_windows_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        Windows.model_validate({"ack_within": "15m", "remind_befor": "5m"})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


# ── tiers ─────────────────────────────────────────────────────────────────────────────────


def test_tier_with_no_owners_is_rejected_at_its_owners() -> None:
    with pytest.raises(ValidationError) as caught:
        Tier(name="L1 support", owners=[])
    (error,) = caught.value.errors()
    assert error["loc"] == ("owners",)
    assert "tier 'L1 support' has no owners" in error["msg"]
    assert "e.g. owners: [alice, team:payments-support]" in error["msg"]


def test_tier_accepts_a_single_owner_written_without_brackets() -> None:
    assert Tier(name="L3", owners="carol").owners == ["carol"]


def test_two_tiers_with_one_name_are_rejected() -> None:
    tiers = [{"name": "L1", "owners": ["alice"]}, {"name": "L2", "owners": ["bob"]}, {"name": "L1", "owners": ["carol"]}]
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(design_policy(tiers=tiers))
    assert "two tiers are named 'L1' (tiers 1 and 3): give every tier its own name" in error_text(caught)


def test_policy_needs_at_least_one_tier_and_one_window() -> None:
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(design_policy(tiers=[], windows={}))
    assert {error["loc"] for error in caught.value.errors()} == {("tiers",), ("windows",)}


def test_repeat_must_not_be_negative() -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate(design_policy(repeat=-1))


# ── people ────────────────────────────────────────────────────────────────────────────────


def test_person_keeps_channels_in_the_written_order() -> None:
    person = Person.model_validate(yaml.safe_load('{chat: "@frank", webhook: "https://h/f", email: f@example.com}'))
    assert [point.channel for point in person.channels] == ["chat", "webhook", "email"]
    other = Person.model_validate(yaml.safe_load('{email: f@example.com, chat: "@frank"}'))
    assert [point.channel for point in other.channels] == ["email", "chat"]


def test_person_skips_blank_channels() -> None:
    person = Person.model_validate({"email": "e@example.com", "chat": None, "webhook": ""})
    assert [point.channel for point in person.channels] == ["email"]


def test_unknown_channel_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ValidationError) as caught:
        Person.model_validate({"emial": "alice@example.com"})
    message = error_text(caught)
    assert "unknown channel 'emial'" in message
    assert "did you mean 'email'?" in message
    assert "email, webhook, chat" in message


def test_person_with_no_channel_is_rejected() -> None:
    with pytest.raises(ValidationError, match="no way to reach this person"):
        Person.model_validate({})


def test_directory_rejects_a_bad_person_name() -> None:
    with pytest.raises(ValidationError, match="not a valid person name"):
        Directory.model_validate({"people": {"al ice": {"email": "a@example.com"}}})


def test_directory_problems_find_unknown_and_empty_teams(directory: Directory) -> None:
    broken = directory.model_copy(update={"teams": {"payments-support": ["erin", "frnak"], "nobody": []}})
    problems = {problem.path: problem.message for problem in directory_problems(broken)}
    assert set(problems) == {"teams.payments-support[1]", "teams.nobody"}
    assert "unknown contact 'frnak': did you mean 'frank'?" in problems["teams.payments-support[1]"]
    assert "team 'nobody' has no members" in problems["teams.nobody"]


# ── snapshot ──────────────────────────────────────────────────────────────────────────────


def test_snapshot_expands_teams_to_their_members(policy: Policy, directory: Directory) -> None:
    snap = snapshot(policy, directory, source="payments.yaml")
    assert snap.name == "payments"
    assert snap.source == "payments.yaml"
    assert snap.tier_count == 3
    assert snap.people_of(1) == ["erin", "frank"]
    assert snap.people_of(2) == ["alice", "bob"]
    assert snap.people_of(3) == ["carol"]
    assert snap.tier_name(2) == "L2 payments engineering"
    assert "dana" in snap.people  # the manager, who is told on SLA breach or exhaustion
    assert set(snap.people) == {"alice", "bob", "carol", "dana", "erin", "frank"}
    assert snap.people["frank"] == directory.people["frank"]


def test_snapshot_keeps_the_written_order_and_each_person_once(directory: Directory) -> None:
    directory = directory.model_copy(update={"teams": {"payments-support": ["frank", "erin"], "duo": ["bob", "frank"]}})
    tiers = [{"name": "mixed", "owners": ["carol", "team:payments-support", "team:duo", "carol", "alice"]}]
    snap = snapshot(Policy.model_validate(design_policy(tiers=tiers, repeat=0)), directory)
    assert snap.people_of(1) == ["carol", "frank", "erin", "bob", "alice"]
    assert set(snap.people) == {"carol", "frank", "erin", "bob", "alice", "dana"}


def test_snapshot_only_carries_the_people_involved(directory: Directory) -> None:
    tiers = [{"name": "only", "owners": ["bob"]}]
    snap = snapshot(Policy.model_validate(design_policy(tiers=tiers)), directory)
    assert set(snap.people) == {"bob", "dana"}


def test_people_of_returns_a_copy(policy: Policy, directory: Directory) -> None:
    snap = snapshot(policy, directory)
    snap.people_of(2).append("mallory")
    assert snap.people_of(2) == ["alice", "bob"]


def test_snapshot_survives_the_json_round_trip_of_workflow_history(policy: Policy, directory: Directory) -> None:
    snap = snapshot(policy, directory, source="payments.yaml")
    again = PolicySnapshot.model_validate_json(snap.model_dump_json())
    assert again == snap
    assert [p.channel for p in again.people["alice"].channels] == ["email", "webhook", "chat"]


def test_snapshot_refuses_unknown_contacts(directory: Directory) -> None:
    policy = Policy.model_validate(design_policy(tiers=[{"name": "L1", "owners": ["alcie"]}]))
    with pytest.raises(ValueError, match=r"tiers\[0\]\.owners\[0\]: unknown contact 'alcie'"):
        snapshot(policy, directory)


# ── contact problems ──────────────────────────────────────────────────────────────────────


def test_contact_problems_name_the_field_and_suggest_a_close_name(directory: Directory) -> None:
    tiers = [
        {"name": "L1", "owners": ["team:payments-suport"]},
        {"name": "L2", "owners": ["alice", "bobb"]},
        {"name": "L3", "owners": ["zed"]},
    ]
    policy = Policy.model_validate(design_policy(tiers=tiers, manager="dena"))
    problems = {problem.path: problem.message for problem in contact_problems(policy, directory)}
    assert set(problems) == {"tiers[0].owners[0]", "tiers[1].owners[1]", "tiers[2].owners[0]", "manager"}
    assert "unknown team 'payments-suport': did you mean 'payments-support'?" in problems["tiers[0].owners[0]"]
    assert "add it under teams: in directory.yaml" in problems["tiers[0].owners[0]"]
    assert "unknown contact 'bobb': did you mean 'bob'?" in problems["tiers[1].owners[1]"]
    assert "add bobb under people: in directory.yaml" in problems["tiers[1].owners[1]"]
    assert "did you mean" not in problems["tiers[2].owners[0]"]
    assert "alice, bob, carol, dana, erin, frank" in problems["tiers[2].owners[0]"]
    assert "unknown contact 'dena': did you mean 'dana'?" in problems["manager"]


def test_contact_problems_of_the_raw_mapping_of_a_policy_that_failed_validation(directory: Directory) -> None:
    raw = design_policy(
        windows={"P1": {"ack_within": "5 dayz"}},
        tiers=[{"name": "L1", "owners": "carl"}, {"name": "L2"}, "not a tier", {"name": "L3", "owners": [7, "erni"]}],
    )
    with pytest.raises(ValidationError):
        Policy.model_validate(raw)
    problems = {problem.path: problem.message for problem in contact_problems(raw, directory)}
    assert set(problems) == {"tiers[0].owners[0]", "tiers[3].owners[1]"}
    assert "unknown contact 'carl': did you mean 'carol'?" in problems["tiers[0].owners[0]"]
    assert "unknown contact 'erni': did you mean 'erin'?" in problems["tiers[3].owners[1]"]


def test_contact_problems_of_a_raw_mapping_without_tiers(directory: Directory) -> None:
    assert contact_problems({"manager": "dana"}, directory) == []
    assert [p.path for p in contact_problems({"manager": "dan", "tiers": "oops"}, directory)] == ["manager"]


@pytest.mark.parametrize("key", ["db-1\n", "db-1\r\n", "-db-1", "db 1", "x" * 201])
def test_an_incident_key_is_the_whole_value_or_refused(key: str) -> None:
    """Checked as a whole: a trailing newline does not slip past the pattern's end."""
    with pytest.raises(ValueError, match="not a valid incident key"):
        NewIncident(policy="payments", key=key, priority="P1", summary="s")
    assert NewIncident(policy="payments", key="db-1", priority="P1", summary="s").key == "db-1"
