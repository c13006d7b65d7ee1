"""``chat: "@alice"``: Slack takes no user names as recipients, so ``escalate policy check`` warns
(file, line, person, field and the fix) but passes, and such a directory keeps loading, as
DESIGN.md's example directory must. The examples themselves use handles Slack takes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from activities.channels import _SLACK_USER_ID
from activities.policy_store import PolicyStore, check_paths
from starter.cli import app
from tests.support.paths import EXAMPLES
from tests.support.policies import DESIGN_DIRECTORY

# A policy paging DESIGN.md's people (its own shape: the example policy is tested elsewhere).
POLICY = """\
policy: payments
manager: dana
windows: {P1: {ack_within: 15m}}
tiers: [{name: L1 support, owners: [team:payments-support]}, {name: L2 engineering, owners: [alice, bob]}]
"""


@pytest.fixture
def design_folder(tmp_path: Path) -> Path:
    (tmp_path / "payments.yaml").write_text(POLICY)
    (tmp_path / "directory.yaml").write_text(DESIGN_DIRECTORY)
    return tmp_path


def test_the_design_example_directory_still_loads(design_folder: Path) -> None:
    store = PolicyStore(design_folder)
    assert store.directory().people["alice"].channels[2].address == "@alice"
    snapshot = store.load("payments")
    assert snapshot.tier_people == [["erin", "frank"], ["alice", "bob"]]


def test_policy_check_warns_about_each_user_name_and_passes(design_folder: Path) -> None:
    report = check_paths([design_folder])
    assert report.ok and report.problems == []
    directory = str(design_folder / "directory.yaml")
    assert [(w.file, w.line, w.path) for w in report.warnings] == [
        (directory, 2, "people.alice.chat"),
        (directory, 3, "people.bob.chat"),
    ]
    alice = str(report.warnings[0])
    assert alice.startswith(f"{directory}:2: people.alice.chat: '@alice' is a Slack user name")
    assert "write alice's Slack member ID instead, e.g. chat: U024BE7LH" in alice
    assert "incoming-webhook URL" in alice


def test_a_single_policy_file_is_warned_about_its_directory(design_folder: Path) -> None:
    report = check_paths([design_folder / "payments.yaml"])
    assert report.ok
    assert [w.path for w in report.warnings] == ["people.alice.chat", "people.bob.chat"]


@pytest.mark.parametrize(
    "chat",
    [
        "U024BE7LH",  # a member ID: a direct message
        "W0123ABCD",  # an Enterprise Grid member ID
        "C0123ABCD",  # a channel ID
        "'#payments-oncall'",  # a channel name
        "https://hooks.slack.com/services/T000/B000/XXXX",  # their own incoming webhook
    ],
)
def test_handles_slack_takes_are_not_warned_about(tmp_path: Path, chat: str) -> None:
    (tmp_path / "directory.yaml").write_text(f"people:\n  alice: {{email: alice@example.com, chat: {chat}}}\n")
    report = check_paths([tmp_path])
    assert report.ok and report.warnings == []


def test_the_cli_prints_the_warning_and_exits_0(design_folder: Path) -> None:
    result = CliRunner().invoke(app, ["policy", "check", str(design_folder)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, result.stderr
    assert warnings[0].startswith(f"warning: {design_folder / 'directory.yaml'}:2: people.alice.chat: '@alice' is a Slack user name")
    assert f"ok: {design_folder / 'directory.yaml'}" in result.stdout
    assert f"ok: {design_folder / 'payments.yaml'}" in result.stdout


def test_the_example_directory_uses_handles_slack_takes() -> None:
    report = check_paths([EXAMPLES])
    assert report.ok
    assert not [w for w in report.warnings if w.path.endswith(".chat")], report.warnings
    people = PolicyStore(EXAMPLES).directory().people
    handles = {name: point.address for name, person in people.items() for point in person.channels if point.channel == "chat"}
    assert handles, "the examples show chat handles"
    for name, handle in handles.items():
        assert _SLACK_USER_ID.match(handle) or re.match(r"https://", handle), (name, handle)
