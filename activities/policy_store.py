"""The policy folder (``ESCALATE_POLICY_DIR``): policies, the directory, calendars and on-call
schedules, loaded into the snapshot an incident starts with, and checked whole for ``escalate
policy check``. Every problem names the file, the line, the field path and what to write
instead (see ``activities.policy_yaml``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import RootModel

from activities.policy_yaml import Document, FileProblem, PolicyError, format_loc, located, read_document, validate
from workflows.calendar import Calendar
from workflows.policy import (
    SCHEDULE_PREFIX,
    Directory,
    Policy,
    PolicySnapshot,
    Problem,
    calendar_problem,
    contact_problems,
    directory_problems,
    snapshot,
    tier_calendar_problems,
)
from workflows.schedule import Rotation, Schedule, coverage_gaps, describe_gap

__all__ = [
    "CALENDARS_FILE",
    "DIRECTORY_FILE",
    "CheckReport",
    "FileProblem",
    "PolicyError",
    "PolicyStore",
    "UnknownPolicy",
    "chat_handle_warnings",
    "check_paths",
]

DIRECTORY_FILE = "directory.yaml"
CALENDARS_FILE = "calendars.yaml"
NOT_POLICIES = {DIRECTORY_FILE, CALENDARS_FILE}
SCHEDULES_DIR = "schedules"


class Calendars(RootModel[dict[str, Calendar]]):
    """``calendars.yaml``: named business-hours calendars that policies refer to."""


class UnknownPolicy(LookupError):
    pass


@dataclass
class CheckReport:
    checked: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    warnings: list[FileProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _file_stamp(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size, status.st_ino


class PolicyStore:
    """The policy folder: ``*.yaml`` policies beside one ``directory.yaml``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._documents: dict[str, Document] = {}
        """The schedule files read, by schedule name."""
        self.directory_document: Document | None = None
        """``directory.yaml`` as last read, for locating what is said about it."""
        self._snapshots: dict[str, tuple[tuple[tuple[str, int, int, int], ...], PolicySnapshot]] = {}
        self.loaded_schedules: dict[str, Schedule] = {}
        self.broken_schedules: set[str] = set()

    def policy_files(self) -> list[Path]:
        if not self.folder.is_dir():
            raise PolicyError(
                [
                    FileProblem(
                        str(self.folder),
                        None,
                        "",
                        "the policy folder does not exist: set ESCALATE_POLICY_DIR to a folder of policy YAML files",
                    )
                ]
            )
        return sorted(
            path
            for pattern in ("*.yaml", "*.yml")
            for path in self.folder.glob(pattern)
            if path.name not in NOT_POLICIES
        )

    def directory(self) -> Directory:
        path = self.folder / DIRECTORY_FILE
        if not path.exists():
            raise PolicyError(
                [
                    FileProblem(
                        str(path),
                        None,
                        "",
                        "missing: every policy folder needs a directory.yaml listing people (and teams) "
                        "beside the policies, e.g. people: {alice: {email: alice@example.com}}",
                    )
                ]
            )
        document = read_document(path)
        directory: Directory = validate(document, Directory, "directory")
        problems = directory_problems(directory)
        if problems:
            raise PolicyError(located(document, problems))
        self.directory_document = document
        return directory

    def calendars(self) -> dict[str, Calendar]:
        """The named calendars of ``calendars.yaml`` (none when there is no such file)."""
        path = self.folder / CALENDARS_FILE
        if not path.exists():
            return {}
        document = read_document(path)
        if document.data is None:
            return {}
        return validate(document, Calendars, "calendars").root

    def schedules(self, calendars: dict[str, Calendar] | None = None) -> dict[str, Schedule]:
        """The on-call schedules of ``schedules/*.yaml``, with named layer calendars resolved."""
        folder = self.folder / SCHEDULES_DIR
        if not folder.is_dir():
            return {}
        calendars = self.calendars() if calendars is None else calendars
        found: dict[str, Schedule] = {}
        problems: list[FileProblem] = []
        # What did load, and the names of the files that did not, for a check that goes on.
        self.loaded_schedules, self.broken_schedules = found, set()
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                document = read_document(path)
                declared = document.data.get("schedule") if isinstance(document.data, dict) else None
                self.broken_schedules.add(declared if isinstance(declared, str) else path.stem)
                schedule: Schedule = validate(document, Schedule, "schedule")
            except PolicyError as err:
                self.broken_schedules.add(path.stem)
                problems.extend(err.problems)
                continue
            self.broken_schedules -= {schedule.schedule, path.stem}
            layers = _layers_with_calendars(document, schedule, calendars, problems)
            if schedule.schedule in found:
                problems.append(
                    FileProblem(
                        str(path),
                        document.line_of(["schedule"]),
                        "schedule",
                        f"the name {schedule.schedule!r} is used twice: give each schedule its own name",
                    )
                )
            found[schedule.schedule] = schedule.model_copy(update={"layers": layers})
            self._documents[schedule.schedule] = document
        if problems:
            raise PolicyError(problems)
        return found

    def schedule_file(self, name: str) -> Path:
        """The file a schedule read by ``schedules()`` came from."""
        return self._documents[name].path

    def schedule_people_problems(self, schedules: dict[str, Schedule], directory: Directory) -> list[FileProblem]:
        """Everyone a schedule names must be a person of the directory."""
        problems = []
        people = sorted(directory.people)
        for name, schedule in schedules.items():
            document = self._documents.get(name)
            places = [
                (["layers", i, "participants", j], who)
                for i, layer in enumerate(schedule.layers)
                for j, who in enumerate(layer.participants)
            ]
            places += [(["overrides", i, "who"], override.who) for i, override in enumerate(schedule.overrides)]
            for loc, who in places:
                if who not in directory.people:
                    problems.append(
                        FileProblem(
                            str(document.path) if document else name,
                            document.line_of(loc) if document else None,
                            format_loc(tuple(loc)),
                            f"unknown contact {who!r}: add {who} under people: in directory.yaml, or use one of {', '.join(people)}",
                        )
                    )
        return problems

    def load(self, name: str) -> PolicySnapshot:
        """The snapshot of one policy; UnknownPolicy or PolicyError when it cannot be had. Every
        incident opens with a load: the snapshot is read and checked again only when a file of
        the folder has changed since (an edit applies to the incidents opened after it)."""
        stamp = self._stamp()
        if stamp is not None and name in self._snapshots and self._snapshots[name][0] == stamp:
            return self._snapshots[name][1]
        loaded = self._load(name)
        if stamp is not None:
            self._snapshots[name] = (stamp, loaded)
        return loaded

    def _stamp(self) -> tuple[tuple[str, int, int, int], ...] | None:
        """The folder's YAML files as they are now (path, modification time, size, inode), or
        None when they cannot all be looked at (then nothing is reused)."""
        try:
            paths = sorted(
                path
                for folder in (self.folder, self.folder / SCHEDULES_DIR)
                for pattern in ("*.yaml", "*.yml")
                for path in folder.glob(pattern)
            )
            return tuple((str(path), *_file_stamp(path)) for path in paths)
        except OSError:
            return None

    def _load(self, name: str) -> PolicySnapshot:
        unreadable: list[str] = []
        names: list[str] = []
        for path in self.policy_files():
            try:
                document = read_document(path)
            except PolicyError:
                if path.stem == name:  # most likely the policy asked for: say what is wrong with it
                    raise
                unreadable.append(path.name)
                continue
            declared = document.data.get("policy") if isinstance(document.data, dict) else None
            if declared != name:
                if isinstance(declared, str):
                    names.append(declared)
                continue
            policy = validate(document, Policy, "policy")
            directory = self.directory()
            calendars = self.calendars()
            # A broken schedule only stops the policies that page from schedules.
            uses_schedules = any(owner.startswith(SCHEDULE_PREFIX) for tier in policy.tiers for owner in tier.owners)
            schedules = self.schedules(calendars) if uses_schedules else {}
            problems = contact_problems(policy, directory, schedules) + tier_calendar_problems(policy, calendars)
            if (problem := calendar_problem(policy, calendars)) is not None:
                problems.append(problem)
            if problems:
                raise PolicyError(located(document, problems))
            schedule_problems = self.schedule_people_problems(schedules, directory)
            if schedule_problems:
                raise PolicyError(schedule_problems)
            return snapshot(policy, directory, source=str(path), calendars=calendars, schedules=schedules)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = ", ".join(sorted(names)) or "none"
        skipped = f" ({', '.join(unreadable)} could not be read)" if unreadable else ""
        raise UnknownPolicy(f"unknown policy {name!r}: {hint}the policies in {self.folder} are {known}{skipped}")

    def check(self) -> CheckReport:
        """Validate the whole folder: every policy, the directory, and names used twice."""
        return check_paths([self.folder])


def _layers_with_calendars(
    document: Document, schedule: Schedule, calendars: dict[str, Calendar], problems: list[FileProblem]
) -> list[Rotation]:
    """The schedule's layers with the calendars they name (``active: uk-office``) put in; a layer
    naming an unknown calendar is left out and said in ``problems``."""
    layers = []
    for index, layer in enumerate(schedule.layers):
        if isinstance(layer.active, str):
            if layer.active not in calendars:
                problems.append(
                    FileProblem(
                        str(document.path),
                        document.line_of(["layers", index, "active"]),
                        f"layers[{index}].active",
                        f"unknown calendar {layer.active!r}: add it to calendars.yaml, or use one of "
                        f"{', '.join(sorted(calendars)) or '(calendars.yaml defines none)'}",
                    )
                )
                continue
            layer = layer.model_copy(update={"active": calendars[layer.active]})
        layers.append(layer)
    return layers


def _named(problems: list[Problem], broken_schedules: set[str]) -> list[Problem]:
    """Leave out "unknown schedule" for the schedules whose own files are broken (reported there)."""
    return [p for p in problems if not any(p.message.startswith(f"unknown schedule {name!r}:") for name in broken_schedules)]


def chat_handle_warnings(document: Document, directory: Directory) -> list[FileProblem]:
    """``chat: "@alice"`` loads (directories written that way must keep loading) but reaches
    nobody: Slack stopped taking user names as recipients in 2018 (``chat.postMessage`` answers
    ``channel_not_found``), and only ``<@member-id>`` mentions notify anyone. Slack takes a member
    ID (``U…``, which opens a direct message), a channel ID or name, or an incoming-webhook URL."""
    warnings = []
    for name, person in directory.people.items():
        for point in person.channels:
            if point.channel == "chat" and point.address.startswith("@"):
                warnings.append(
                    FileProblem(
                        str(document.path),
                        document.line_of(["people", name, "chat"]),
                        f"people.{name}.chat",
                        f"{point.address!r} is a Slack user name, which Slack does not take as a recipient (and "
                        f"which notifies nobody in a message): write {name}'s Slack member ID instead, e.g. "
                        "chat: U024BE7LH (Slack: their profile, ⋮, Copy member ID), or their own incoming-webhook URL",
                    )
                )
    return warnings


def _coverage_warnings(store: PolicyStore, schedules: dict[str, Schedule]) -> list[FileProblem]:
    """A schedule with nobody on call at times in the next 4 weeks (not an error: some mean it)."""
    warnings = []
    now = datetime.now(UTC)
    for name, schedule in schedules.items():
        gaps = coverage_gaps(schedule, now)
        if gaps:
            shown = "; ".join(describe_gap(gap, schedule.zone) for gap in gaps[:3])
            more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
            warnings.append(
                FileProblem(
                    str(store.schedule_file(name)),
                    None,
                    "",
                    f"nobody is on call {shown}{more} (in the next 4 weeks): a tier of only this "
                    "schedule is skipped then; add a layer or participants to cover it",
                )
            )
    return warnings


@dataclass
class _Folder:
    """What the policies of one folder are checked against: whatever of the directory, the
    calendars and the schedules could be read (their own problems are reported once, there)."""

    path: Path
    directory: Directory | None = None
    calendars: dict[str, Calendar] | None = None
    calendars_broken: bool = False
    schedules: dict[str, Schedule] | None = None
    broken_schedules: set[str] = field(default_factory=set)

    def contact_problems(self, policy: Policy | dict[str, object]) -> list[Problem]:
        if self.directory is None:
            return []
        return _named(contact_problems(policy, self.directory, self.schedules), self.broken_schedules)


def _check_directory(folder: _Folder, report: CheckReport) -> None:
    path = folder.path / DIRECTORY_FILE
    store = PolicyStore(folder.path)
    try:
        folder.directory = store.directory()
    except PolicyError as err:
        report.problems.extend(err.problems)
        if not path.exists():
            folder.directory = Directory()  # nobody is known: every owner is reported where it is used
        return
    report.checked.append(str(path))
    if store.directory_document is not None:
        report.warnings.extend(chat_handle_warnings(store.directory_document, folder.directory))


def _check_calendars(folder: _Folder, report: CheckReport) -> None:
    path = folder.path / CALENDARS_FILE
    if not path.exists():
        return
    try:
        folder.calendars = PolicyStore(folder.path).calendars()
        report.checked.append(str(path))
    except PolicyError as err:
        report.problems.extend(err.problems)
        folder.calendars_broken = True


def _check_schedules(folder: _Folder, report: CheckReport) -> None:
    if not (folder.path / SCHEDULES_DIR).is_dir():
        return
    store = PolicyStore(folder.path)
    try:
        folder.schedules = store.schedules(folder.calendars or {})
    except PolicyError as err:
        # One broken schedule file: the others are still checked, and a policy naming the
        # broken one is not told that it does not exist.
        report.problems.extend(err.problems)
        folder.schedules, folder.broken_schedules = dict(store.loaded_schedules), set(store.broken_schedules)
    report.checked.extend(str(store.schedule_file(name)) for name in folder.schedules)
    if folder.directory is not None:
        report.problems.extend(store.schedule_people_problems(folder.schedules, folder.directory))
    report.warnings.extend(_coverage_warnings(store, folder.schedules))


def _check_policy(path: Path, folder: _Folder, seen: dict[str, str], report: CheckReport) -> None:
    """One policy file: its own fields, then what it names (people, teams, schedules, calendars);
    ``seen`` maps the policy names of the folder so far to their files."""
    report.checked.append(str(path))
    try:
        document = read_document(path)
    except PolicyError as err:
        report.problems.extend(err.problems)
        return
    try:
        policy: Policy = validate(document, Policy, "policy")
    except PolicyError as err:
        report.problems.extend(err.problems)
        if isinstance(document.data, dict):
            report.problems.extend(located(document, folder.contact_problems(document.data)))
        return
    if policy.policy in seen:
        report.problems.append(
            FileProblem(
                str(path),
                document.line_of(["policy"]),
                "policy",
                f"the name {policy.policy!r} is already used by {seen[policy.policy]}: give each policy its own name",
            )
        )
    seen[policy.policy] = str(path)
    report.problems.extend(located(document, folder.contact_problems(policy)))
    calendars = folder.calendars or {}
    report.problems.extend(located(document, tier_calendar_problems(policy, calendars)))
    if not folder.calendars_broken and (problem := calendar_problem(policy, calendars)) is not None:
        report.problems.extend(located(document, [problem]))


def check_paths(paths: list[Path]) -> CheckReport:
    """What ``escalate policy check`` runs: folders are checked whole; a single policy file is
    checked against the ``directory.yaml`` beside it. Problems are errors; warnings (a gap in a
    schedule, a chat handle Slack will not take) name what to change but do not fail the check."""
    report = CheckReport()
    for target in map(Path, paths):
        if target.is_dir():
            files, folder = PolicyStore(target).policy_files(), _Folder(target)
        elif target.exists():
            files, folder = ([] if target.name in NOT_POLICIES else [target]), _Folder(target.parent)
        else:
            report.problems.append(FileProblem(str(target), None, "", "no such file or folder"))
            continue
        _check_directory(folder, report)
        _check_calendars(folder, report)
        _check_schedules(folder, report)
        seen: dict[str, str] = {}
        for path in files:
            _check_policy(path, folder, seen, report)
    report.problems.sort(key=lambda problem: (problem.file, problem.line or 0))
    return report
