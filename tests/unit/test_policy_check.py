"""``escalate policy check PATH…`` and the policy store: every problem names the file, the line,
the field and what to write instead; good folders pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from activities.policy_store import PolicyError, PolicyStore, UnknownPolicy, check_paths
from tests.support.cli import policy_check
from tests.support.paths import EXAMPLES, ROOT, TEST_POLICIES
from tests.support.policies import line_of

GOOD = """\
policy: good
manager: dana
windows:
  P1: {ack_within: 15m, remind_before: 5m, resolve_within: 4h}
tiers:
  - name: L1 first line
    owners: [team:first-line]
  - name: L2 engineering
    owners: [alice, bob]
"""


def bad_copy(*replacements: tuple[str, str]) -> str:
    """GOOD with the replacements made, under its own policy name (``bad``)."""
    text = GOOD.replace("policy: good", "policy: bad")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A policy folder with the tests' directory.yaml and one good policy."""
    shutil.copy(TEST_POLICIES / "directory.yaml", tmp_path / "directory.yaml")
    (tmp_path / "good.yaml").write_text(GOOD)
    return tmp_path


def assert_rejected(result: subprocess.CompletedProcess[str], file: Path, line: int, field: str, *hints: str) -> str:
    """Exit 1 and, on stderr, ``FILE:LINE: FIELD: …`` with every hint on that same line."""
    assert result.returncode == 1, result.stderr
    located = f"{file}:{line}: {field}: "
    matching = [text for text in result.stderr.splitlines() if located in text]
    assert matching, f"no line with {located!r} in:\n{result.stderr}"
    for hint in hints:
        assert any(hint in text for text in matching), f"{hint!r} not in {matching}"
    return matching[0]


# ── good folders ──────────────────────────────────────────────────────────────────────────


@pytest.mark.slow  # runs the console script
def test_example_policies_pass() -> None:
    result = policy_check(EXAMPLES)
    assert result.returncode == 0, result.stderr
    # The office-hours secondary is the one deliberate gap: a warning, not an error.
    warnings = result.stderr.splitlines()
    gap = f"warning: {EXAMPLES / 'schedules' / 'platform-secondary.yaml'}: nobody is on call"
    assert len(warnings) == 1 and warnings[0].startswith(gap), result.stderr
    for name in ("directory", "payments", "database", "service-desk", "walkthrough", "platform", "customer-support"):
        assert f"ok: {EXAMPLES / name}.yaml" in result.stdout


@pytest.mark.slow  # runs the console script
def test_test_policies_pass() -> None:
    result = policy_check(TEST_POLICIES)
    assert result.returncode == 0, result.stderr
    assert f"ok: {TEST_POLICIES / 'fast.yaml'}" in result.stdout


@pytest.mark.slow  # runs the console script
def test_single_file_is_checked_against_the_directory_beside_it() -> None:
    result = policy_check(EXAMPLES / "payments.yaml", TEST_POLICIES)
    assert result.returncode == 0, result.stderr
    assert f"ok: {EXAMPLES / 'payments.yaml'}" in result.stdout
    assert f"ok: {EXAMPLES / 'directory.yaml'}" in result.stdout


@pytest.mark.slow  # runs the console script
def test_usage_error_exits_2() -> None:
    assert policy_check().returncode == 2


# ── each kind of mistake ──────────────────────────────────────────────────────────────────


@pytest.mark.slow  # runs the console script
def test_unknown_contact(folder: Path) -> None:
    text = bad_copy(("[alice, bob]", "[alcie, bob]"), ("team:first-line", "team:frist-line"))
    (folder / "bad.yaml").write_text(text)
    result = policy_check(folder)
    assert_rejected(
        result, folder / "bad.yaml", line_of(text, "alcie"), "tiers[1].owners[0]",
        "unknown contact 'alcie'", "did you mean 'alice'?", "add alcie under people: in directory.yaml",
    )
    assert_rejected(
        result, folder / "bad.yaml", line_of(text, "frist-line"), "tiers[0].owners[0]",
        "unknown team 'frist-line'", "did you mean 'first-line'?",
    )
    assert f"ok: {folder / 'good.yaml'}" in result.stdout  # the good file is still reported good
    assert "ok: " + str(folder / "bad.yaml") not in result.stdout


@pytest.mark.slow  # runs the console script
def test_unknown_manager(folder: Path) -> None:
    text = bad_copy(("manager: dana", "manager: dan"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(policy_check(folder), folder / "bad.yaml", 2, "manager", "unknown contact 'dan'", "did you mean 'dana'?")


@pytest.mark.slow  # runs the console script
def test_tier_with_no_owners(folder: Path) -> None:
    text = bad_copy(("[alice, bob]", "[]"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "bad.yaml", line_of(text, "owners: []"), "tiers[1].owners",
        "tier 'L2 engineering' has no owners", "list at least one person or team",
    )


@pytest.mark.slow  # runs the console script
def test_reminder_at_the_end_of_its_window(folder: Path) -> None:
    text = bad_copy(("remind_before: 5m", "remind_before: 15m"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "bad.yaml", line_of(text, "P1:"), "windows.P1.remind_before",
        "remind_before 15m is not inside the ack_within window of 15m", "write a duration shorter than 15m",
        "e.g. remind_before: 5m",
    )


@pytest.mark.slow  # runs the console script
def test_reminder_after_its_window(folder: Path) -> None:
    text = bad_copy(
        (
            "  P1: {ack_within: 15m, remind_before: 5m, resolve_within: 4h}\n",
            "  P1: {ack_within: 15m, remind_before: 5m, resolve_within: 4h}\n  P2:\n    ack_within: 1h\n    remind_at: 2h\n",
        )
    )
    (folder / "bad.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "bad.yaml", line_of(text, "remind_at: 2h"), "windows.P2.remind_at",
        "remind_at 2h is not inside the ack_within window of 1h", "write a duration shorter than 1h",
    )


@pytest.mark.slow  # runs the console script
def test_unknown_priority(folder: Path) -> None:
    text = bad_copy(("  P1:", "  P7:"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "bad.yaml", line_of(text, "P7:"), "windows.P7",
        "unknown priority 'P7'", "write one of P1, P2, P3, P4, P5",
    )


@pytest.mark.slow  # runs the console script
def test_duration_without_a_known_unit(folder: Path) -> None:
    text = bad_copy(("  P1: {ack_within: 15m, remind_before: 5m, resolve_within: 4h}", "  P3:\n    ack_within: 5 dayz"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "bad.yaml", line_of(text, "5 dayz"), "windows.P3.ack_within",
        "'5 dayz' is not a duration", "write a duration like 30s, 15m, 1h30m, 5d",
    )


@pytest.mark.slow  # runs the console script
def test_duration_without_unit(folder: Path) -> None:
    text = bad_copy(("resolve_within: 4h", "resolve_within: 240"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(policy_check(folder), folder / "bad.yaml", line_of(text, "P1:"), "windows.P1.resolve_within", "240 has no unit")


@pytest.mark.slow  # runs the console script
def test_yaml_syntax_error(folder: Path) -> None:
    text = bad_copy(("resolve_within: 4h}", "resolve_within: 4h"))  # the { is never closed
    (folder / "bad.yaml").write_text(text)
    result = policy_check(folder)
    assert_rejected(
        result, folder / "bad.yaml", line_of(text, "tiers:"), "windows.P1.resolve_within",
        "not valid YAML", f"close the '{{' opened on line {line_of(text, 'P1:')}",
    )
    assert f"ok: {folder / 'good.yaml'}" in result.stdout


@pytest.mark.slow  # runs the console script
def test_yaml_indentation_error(folder: Path) -> None:
    text = bad_copy(("    owners: [alice, bob]", "   owners: [alice, bob]"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "bad.yaml", line_of(text, "[alice, bob]"), "tiers[1]",
        "not valid YAML", "check the indentation",
    )


@pytest.mark.slow  # runs the console script
def test_empty_file(folder: Path) -> None:
    (folder / "bad.yaml").write_text("# nothing here yet\n")
    result = policy_check(folder)
    assert_rejected(result, folder / "bad.yaml", 1, "policy", "the file is empty", "add it, e.g. policy: payments")
    assert_rejected(result, folder / "bad.yaml", 1, "tiers", "the file is empty", "e.g. tiers: [")


@pytest.mark.slow  # runs the console script
def test_unknown_field(folder: Path) -> None:
    text = bad_copy(("remind_before:", "remind_befor:")) + "escalate_after: 5m\n"
    (folder / "bad.yaml").write_text(text)
    result = policy_check(folder)
    assert_rejected(
        result, folder / "bad.yaml", line_of(text, "remind_befor:"), "windows.P1.remind_befor",
        "unknown field 'remind_befor'", "did you mean 'remind_before'?",
    )
    assert_rejected(
        result, folder / "bad.yaml", line_of(text, "escalate_after"), "escalate_after",
        "unknown field 'escalate_after'", "the fields here are policy, description, manager, windows, tiers, repeat",
    )


@pytest.mark.slow  # runs the console script
def test_missing_required_fields(folder: Path) -> None:
    text = bad_copy(
        ("manager: dana\n", ""), ("ack_within: 15m, ", ""), ("  - name: L2 engineering\n    owners", "  - owners")
    )
    (folder / "bad.yaml").write_text(text)
    result = policy_check(folder)
    assert_rejected(result, folder / "bad.yaml", 1, "manager", "manager is required", "e.g. manager: dana")
    assert_rejected(
        result, folder / "bad.yaml", line_of(text, "P1:"), "windows.P1.ack_within",
        "ack_within is required", "e.g. ack_within: 15m",
    )
    assert_rejected(
        result, folder / "bad.yaml", line_of(text, "- owners"), "tiers[1].name", "name is required", "e.g. name: "
    )


@pytest.mark.slow  # runs the console script
def test_the_same_priority_written_twice(folder: Path) -> None:
    text = bad_copy(("tiers:", "  P1: {ack_within: 1h}\ntiers:"))
    (folder / "bad.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "bad.yaml", line_of(text, "P1: {ack_within: 1h}"), "windows.P1",
        "written twice", "keep one of them",
    )


@pytest.mark.slow  # runs the console script
def test_the_same_person_written_twice_in_the_directory(folder: Path) -> None:
    text = (TEST_POLICIES / "directory.yaml").read_text().replace("teams:", "  bob: {chat: \"@bob\"}\nteams:")
    (folder / "directory.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "directory.yaml", line_of(text, '"@bob"'), "people.bob",
        f"bob is written twice (lines {line_of(text, 'bob@example.com')} and", "keep one of them",
    )


@pytest.mark.slow  # runs the console script
def test_two_files_with_one_policy_name(folder: Path) -> None:
    (folder / "other.yaml").write_text(GOOD)
    result = policy_check(folder)
    line = assert_rejected(
        result, folder / "other.yaml", 1, "policy", "'good' is already used by", "give each policy its own name"
    )
    assert str(folder / "good.yaml") in line


@pytest.mark.slow  # runs the console script
def test_missing_directory(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    result = policy_check(tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path / 'directory.yaml'}: missing: every policy folder needs a directory.yaml" in result.stderr
    # The owners are still checked, against nobody: each is named where it is used.
    assert_rejected(
        result, tmp_path / "good.yaml", line_of(GOOD, "[alice, bob]"), "tiers[1].owners[0]",
        "unknown contact 'alice'", "add alice under people: in directory.yaml",
    )
    assert "ok: " not in result.stdout


@pytest.mark.slow  # runs the console script
def test_broken_directory(folder: Path) -> None:
    text = (TEST_POLICIES / "directory.yaml").read_text().replace("email: bob@", "emial: bob@")
    (folder / "directory.yaml").write_text(text)
    assert_rejected(
        policy_check(folder), folder / "directory.yaml", line_of(text, "emial"), "people.bob",
        "unknown channel 'emial'", "did you mean 'email'?",
    )


@pytest.mark.slow  # runs the console script
def test_missing_path() -> None:
    result = policy_check(ROOT / "no-such-folder")
    assert result.returncode == 1
    assert f"{ROOT / 'no-such-folder'}: no such file or folder" in result.stderr


def test_check_paths_reports_in_file_and_line_order(folder: Path) -> None:
    text = bad_copy(("[alice, bob]", "[alcie, bob]"), ("remind_before: 5m", "remind_before: 1h"))
    (folder / "bad.yaml").write_text(text)
    report = check_paths([folder])
    assert not report.ok
    assert [(p.path, p.line) for p in report.problems] == [
        ("windows.P1.remind_before", line_of(text, "P1:")),
        ("tiers[1].owners[0]", line_of(text, "alcie")),
    ]
    assert str(folder / "good.yaml") in report.checked


# ── PolicyStore.load ──────────────────────────────────────────────────────────────────────


def test_load_gives_a_snapshot() -> None:
    snap = PolicyStore(EXAMPLES).load("payments")
    assert snap.name == "payments"
    assert snap.source == str(EXAMPLES / "payments.yaml")
    assert snap.tier_count == 3
    assert snap.people_of(1) == ["erin", "frank"]
    assert snap.people_of(2) == ["alice", "bob"]
    assert "dana" in snap.people
    assert snap.policy.windows_for("P1").resolve_within is not None


def test_load_service_desk_with_named_priorities() -> None:
    snap = PolicyStore(EXAMPLES).load("service-desk")
    assert sorted(snap.policy.windows) == ["P1", "P2", "P3", "P4"]


def test_load_an_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(UnknownPolicy) as caught:
        PolicyStore(EXAMPLES).load("paymnts")
    message = str(caught.value)
    assert "unknown policy 'paymnts'" in message
    assert "did you mean 'payments'?" in message
    assert "customer-support, database, payments, platform, service-desk, walkthrough" in message


def test_load_a_broken_policy_names_the_file(folder: Path) -> None:
    text = GOOD.replace("policy: good", "policy: broken").replace("remind_before: 5m", "remind_before: 20m")
    (folder / "broken.yaml").write_text(text)
    with pytest.raises(PolicyError) as caught:
        PolicyStore(folder).load("broken")
    assert f"{folder / 'broken.yaml'}:{line_of(text, 'P1:')}: windows.P1.remind_before:" in str(caught.value)


def test_load_a_policy_with_an_unknown_contact_names_the_file(folder: Path) -> None:
    text = GOOD.replace("policy: good", "policy: broken").replace("[alice, bob]", "[alice, zed]")
    (folder / "broken.yaml").write_text(text)
    with pytest.raises(PolicyError) as caught:
        PolicyStore(folder).load("broken")
    assert f"{folder / 'broken.yaml'}:{line_of(text, 'zed')}: tiers[1].owners[1]: unknown contact 'zed'" in str(caught.value)


def test_load_a_policy_whose_yaml_is_broken_names_the_file(folder: Path) -> None:
    (folder / "broken.yaml").write_text("policy: broken\nwindows: {P1: {ack_within: 15m}\n")
    with pytest.raises(PolicyError) as caught:
        PolicyStore(folder).load("broken")
    assert str(folder / "broken.yaml") in str(caught.value)
    assert "not valid YAML" in str(caught.value)


def test_an_escape_past_the_last_unicode_character_is_a_clear_error_not_a_crash(folder: Path) -> None:
    """PyYAML raises a plain ValueError for it (found by the fuzzed policy files)."""
    text = GOOD.replace("policy: good", "policy: odd").replace("manager: dana", 'manager: "\\U00110000"')
    assert text != GOOD.replace("policy: good", "policy: odd")
    (folder / "odd.yaml").write_text(text)
    with pytest.raises(PolicyError) as caught:
        PolicyStore(folder).load("odd")
    assert f"{folder / 'odd.yaml'}:{line_of(text, 'U00110000')}:" in str(caught.value)
    assert "a \\U escape must name a character, at most \\U0010FFFF" in str(caught.value)
    report = check_paths([folder])
    assert not report.ok and "U0010FFFF" in "\n".join(map(str, report.problems))


def test_load_skips_unreadable_files_of_other_policies(folder: Path) -> None:
    (folder / "scratch.yaml").write_text("policy: [unclosed\n")
    assert PolicyStore(folder).load("good").name == "good"
    with pytest.raises(UnknownPolicy, match=r"scratch\.yaml could not be read"):
        PolicyStore(folder).load("other")


def test_load_without_directory(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    with pytest.raises(PolicyError, match="directory.yaml: missing"):
        PolicyStore(tmp_path).load("good")


def test_load_from_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="the policy folder does not exist"):
        PolicyStore(tmp_path / "nowhere").load("good")
