"""Reading policies and the directory from ``ESCALATE_POLICY_DIR``.

Every error names the file, the line, the field path and what to write instead, e.g.::

    payments.yaml:7: windows.P1.remind_before: remind_before 15m is not inside the ack_within
    window of 15m: write a duration shorter than 15m, e.g. remind_before: 5m
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, RootModel, ValidationError

from workflows.calendar import Calendar
from workflows.policy import (
    SCHEDULE_PREFIX,
    Directory,
    Policy,
    PolicySnapshot,
    Problem,
    Tier,
    Windows,
    calendar_problem,
    contact_problems,
    directory_problems,
    snapshot,
    tier_calendar_problems,
)
from workflows.schedule import Override, Rotation, Schedule, coverage_gaps, describe_gap

DIRECTORY_FILE = "directory.yaml"
CALENDARS_FILE = "calendars.yaml"
NOT_POLICIES = {DIRECTORY_FILE, CALENDARS_FILE}
SCHEDULES_DIR = "schedules"


class Calendars(RootModel[dict[str, Calendar]]):
    """``calendars.yaml``: named business-hours calendars that policies refer to."""

_FIELD_EXAMPLES = {
    "policy": "policy: payments",
    "manager": "manager: dana",
    "windows": "windows: {P1: {ack_within: 15m, remind_before: 5m, resolve_within: 4h}}",
    "tiers": "tiers: [{name: L1 support, owners: [alice]}]",
    "name": "name: L1 support",
    "owners": "owners: [alice, team:payments-support]",
    "ack_within": "ack_within: 15m",
    "remind_before": "remind_before: 5m",
    "remind_at": "remind_at: 10m",
    "resolve_within": "resolve_within: 4h",
    "repeat": "repeat: 1",
    "description": "description: Card payments platform",
    "people": "people: {alice: {email: alice@example.com}}",
    "teams": "teams: {payments-support: [alice, bob]}",
    "schedule": "schedule: platform-primary",
    "timezone": "timezone: Europe/London",
    "layers": 'layers: [{participants: [alice, bob], shift: 1w, handoff: "09:00", start: 2026-11-02}]',
    "participants": "participants: [alice, bob]",
    "shift": "shift: 1w",
    "start": "start: 2026-11-02",
    "who": "who: bob",
    "from": "from: 2026-12-24T09:00",
    "until": "until: 2026-12-27T09:00",
    "calendar": "calendar: uk-office (a name from calendars.yaml)",
    "active": "active: uk-office (a name from calendars.yaml)",
    "on_exhausted": "on_exhausted: notify_manager (or resolve, keep_open)",
    "repeat_from": "repeat_from: L1 support (a tier's name)",
    "business_time": "business_time: true",
    "ack_timeout": "ack_timeout: 30m",
    "after": "after: 5m",
    "via": "via: email",
}
_KNOWN_FIELDS: dict[str, list[str]] = {
    "policy": list(Policy.model_fields),
    "windows": list(Windows.model_fields),
    "tiers": list(Tier.model_fields),
    "directory": list(Directory.model_fields),
    "schedule": list(Schedule.model_fields),
    "layers": list(Rotation.model_fields),
    "overrides": [field.alias or name for name, field in Override.model_fields.items()],
}


@dataclass(frozen=True)
class FileProblem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(Exception):
    """One or more problems with policy files; ``str()`` lists them one per line."""

    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class UnknownPolicy(LookupError):
    pass


@dataclass
class _Document:
    path: Path
    data: Any
    root: yaml.Node | None

    def line_of(self, loc: tuple[Any, ...] | list[Any]) -> int | None:
        node = self.root
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                match = next((value for key, value in node.value if key.value == str(part)), None)
                if match is None:
                    break
                node = match
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                break
        return node.start_mark.line + 1 if node is not None else None


def _read(path: Path) -> _Document:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError([FileProblem(str(path), None, "", f"cannot read the file: {err.strerror}")]) from None
    except UnicodeDecodeError:
        raise PolicyError([FileProblem(str(path), None, "", "not UTF-8 text: save the file as UTF-8")]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise PolicyError(
            [
                FileProblem(
                    str(path),
                    mark.line + 1 if mark else None,
                    _format_loc(tuple(_path_at_yaml_error(text))),
                    f"not valid YAML ({problem}): {_yaml_hint(err)}",
                )
            ]
        ) from None
    return _Document(path, data, root)


def _path_at_yaml_error(text: str) -> list[Any]:
    """The field path the parser had reached when the YAML broke (e.g. ``windows.P1``).

    Each open mapping contributes its latest key and each open sequence its latest index, so the
    path names the field being written where the syntax went wrong.
    """
    stack: list[list[Any]] = []  # ["map", key, expecting_value] or ["seq", index, None]

    def value_begins() -> None:
        if stack and stack[-1][0] == "seq":
            stack[-1][1] += 1

    def value_ends() -> None:
        if stack and stack[-1][0] == "map":
            stack[-1][2] = False

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            top = stack[-1] if stack else None
            is_key = top is not None and top[0] == "map" and not top[2]
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                value_ends()
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if is_key:
                    top[1], top[2] = getattr(event, "value", None), True
                else:
                    value_begins()
                    value_ends()
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if is_key:  # a complex key: nothing to name it by
                    top[1], top[2] = None, True
                else:
                    value_begins()
                mapping = isinstance(event, yaml.MappingStartEvent)
                stack.append(["map", None, False] if mapping else ["seq", -1, None])
    except yaml.YAMLError:
        pass
    return [at for kind, at, _ in stack if at is not None and at != -1]


def _yaml_hint(err: yaml.YAMLError) -> str:
    context = str(getattr(err, "context", None) or "")
    problem = str(getattr(err, "problem", None) or "")
    opened = getattr(err, "context_mark", None)
    where = f" on line {opened.line + 1}" if opened is not None else ""
    if "flow mapping" in context:
        return f"close the '{{' opened{where} with '}}', or write one field per line without braces"
    if "flow sequence" in context:
        return f"close the '[' opened{where} with ']', or write one item per line starting with '- '"
    if "quoted scalar" in context:
        return f"close the quote opened{where}"
    if "\\t" in problem or "\t" in problem:
        return "indent with spaces, not tabs"
    return "check the indentation (spaces only, the same for fields of one section) and quote values containing ': ' or '#'"


def _duplicate_keys(document: _Document) -> list[FileProblem]:
    """YAML quietly keeps only the last of two equal keys; a policy file never means that."""
    problems: list[FileProblem] = []
    seen: set[int] = set()  # an alias repeats a node (and may even contain itself)

    def walk(node: yaml.Node | None, loc: tuple[Any, ...]) -> None:
        if node is None or id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                line = key.start_mark.line + 1
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":  # merge keys may repeat
                    if key.value in first_line:
                        problems.append(
                            FileProblem(
                                str(document.path),
                                line,
                                _format_loc((*loc, key.value)),
                                f"{key.value} is written twice (lines {first_line[key.value]} and {line}) and "
                                "YAML would keep only the last: keep one of them",
                            )
                        )
                    else:
                        first_line[key.value] = line
                    walk(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    walk(document.root, ())
    return problems


def _format_loc(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


_ITEM_EXAMPLES = {
    "tiers": "- {name: L1 support, owners: [alice]}",
    "owners": "- alice (a person), or team:payments-support, or schedule:platform-primary",
    "participants": "- alice",
    "rules": "- {after: 5m, via: email}",
}
"""Examples of one item of a list, by the list's field."""


def _example_for(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """How to write the value at ``loc``: the field's example, or one for an item of a list or an
    entry of a mapping (a priority's windows, a person, a team)."""
    name = loc[-1] if loc else ""
    parent = loc[-2] if len(loc) >= 2 else None
    if isinstance(name, str) and name in _FIELD_EXAMPLES:
        return _FIELD_EXAMPLES[name]
    if isinstance(name, int) and isinstance(parent, str) and parent in _ITEM_EXAMPLES:
        return _ITEM_EXAMPLES[parent]
    if len(loc) == 2 and parent == "windows":
        return f"{name}: {{ack_within: 15m, remind_before: 5m, resolve_within: 4h}}"
    if len(loc) == 2 and parent == "people":
        return f"{name}: {{email: {name}@example.com}}"
    if len(loc) == 2 and parent == "teams":
        return f"{name}: [alice, bob]"
    if len(loc) == 3 and loc[0] == "teams" and isinstance(name, int):
        return "- alice (a name under people:)"
    return None


def _explain(error: dict[str, Any], kind: str) -> str:
    loc = error["loc"]
    name = str(loc[-1]) if loc else ""
    if error["type"] == "invalid_key":
        known = _KNOWN_FIELDS.get(kind, [])
        return f"{name!r} is not a field name: write field names as words" + (f", e.g. one of {', '.join(known)}" if known else "")
    if error["type"] == "missing":
        example = _example_for(loc)
        return f"{name} is required: add it" + (f", e.g. {example}" if example else "")
    if error["type"] == "extra_forbidden":
        section = "windows" if len(loc) == 3 and loc[0] == "windows" else ("tiers" if loc and loc[0] == "tiers" else kind)
        if kind == "schedule" and len(loc) == 3 and loc[0] in ("layers", "overrides"):
            section = str(loc[0])
        known = _KNOWN_FIELDS.get(section, [])
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown field {name!r}: {hint}the fields here are {', '.join(known)}"
    message = str(error["msg"])
    if error["type"] in ("value_error", "assertion_error"):
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    example = _example_for(loc)
    return f"{message}: write e.g. {example}" if example else message


_FORM = re.compile(r"^(int|str|float|bool|bytes|none|timedelta|datetime|list|dict|set|tuple|[a-z-]+\[.*|[A-Z][a-z]\w*)$")
"""How pydantic names the forms of a field that takes one of several (``int``,
``literal['forever']``, ``function-before[parse_duration(), timedelta]``, a model's name)."""


def _in_file(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """An error's location as written in the file: without the form pydantic tried, which it
    adds for a field of several forms (``repeat.int``, ``repeat.literal['forever']``)."""
    kept: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and (part in node or str(part) in map(str, node)):
            node = node[part] if part in node else next(v for k, v in node.items() if str(k) == str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and _FORM.match(part):
            continue
        else:
            node = None
        kept.append(part)
    return tuple(kept)


def _merge_forms(errors: list[dict[str, Any]], data: Any) -> list[dict[str, Any]]:
    """One error per place in the file. A field of several forms fails once per form: keep our
    own validator's words if one form has them (the form that was meant), else say every form."""
    merged: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    of_a_form: set[tuple[Any, ...]] = set()
    for error in errors:
        loc = _in_file(data, tuple(error["loc"]))
        merged.setdefault(loc, []).append(error)
        if len(loc) < len(error["loc"]):
            of_a_form.add(loc)
    for loc in list(merged):
        # The value has the shape of one form and fails inside it (``calendar.timezone``): what
        # the other forms say of the whole (``calendar: Input should be a valid string``) is moot.
        if loc in of_a_form and any(len(other) > len(loc) and other[: len(loc)] == loc for other in merged):
            del merged[loc]
    result = []
    for loc, group in merged.items():
        own = [error for error in group if error["type"] in ("value_error", "assertion_error")]
        if len(group) == 1 or own:
            result.extend({**error, "loc": loc} for error in (own or group))
            continue
        messages = list(dict.fromkeys(str(error["msg"]) for error in group))
        message = messages[0] + "".join(f" or {m.removeprefix('Input should be ')}" for m in messages[1:])
        result.append({"loc": loc, "type": "one_of_forms", "msg": message})
    return result


def _validate(document: _Document, model: type[BaseModel], kind: str) -> Any:
    file = str(document.path)
    if document.data is None:
        if kind == "directory":
            raise PolicyError([FileProblem(file, 1, "people", f"the file is empty: {_EMPTY_HINT[kind]}")])
        try:
            model.model_validate({})
        except ValidationError as err:
            raise PolicyError(
                [FileProblem(file, 1, _format_loc(e["loc"]), f"the file is empty: {_explain(e, kind)}") for e in err.errors()]
            ) from None
        raise PolicyError([FileProblem(file, 1, "", f"the file is empty: {_EMPTY_HINT[kind]}")])
    if not isinstance(document.data, dict):
        raise PolicyError([FileProblem(file, 1, "", f"expected a mapping of fields: {_EMPTY_HINT[kind]}")])
    problems = _duplicate_keys(document)
    try:
        result = model.model_validate(document.data)
    except ValidationError as err:
        problems += [
            FileProblem(file, document.line_of(error["loc"]), _format_loc(error["loc"]), _explain(error, kind))
            for error in _merge_forms(err.errors(), document.data)
        ]
    if problems:
        raise PolicyError(problems)
    return result


_EMPTY_HINT = {
    "schedule": "a schedule needs schedule:, timezone: and layers: (see examples/policies/schedules/)",
    "calendars": 'calendars.yaml names calendars, e.g. uk-office: {timezone: Europe/London, hours: {mon-fri: "09:00-17:00"}}',
    "policy": "a policy needs policy:, manager:, windows: and tiers: (see examples/policies/)",
    "directory": "a directory lists people: (and optionally teams:), e.g. people: {alice: {email: alice@example.com}}",
}


def _located(document: _Document, problems: list[Problem]) -> list[FileProblem]:
    return [
        FileProblem(str(document.path), document.line_of(_split_path(problem.path)), problem.path, problem.message)
        for problem in problems
    ]


def _split_path(path: str) -> list[Any]:
    parts: list[Any] = []
    for chunk in path.replace("]", "").replace("[", ".").split("."):
        if chunk:
            parts.append(int(chunk) if chunk.isdigit() else chunk)
    return parts


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
        self._documents: dict[str, _Document] = {}
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
        document = _read(path)
        directory = _validate(document, Directory, "directory")
        problems = directory_problems(directory)
        if problems:
            raise PolicyError(_located(document, problems))
        return directory

    def calendars(self) -> dict[str, Calendar]:
        """The named calendars of ``calendars.yaml`` (none when there is no such file)."""
        path = self.folder / CALENDARS_FILE
        if not path.exists():
            return {}
        document = _read(path)
        if document.data is None:
            return {}
        return _validate(document, Calendars, "calendars").root

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
                document = _read(path)
                declared = document.data.get("schedule") if isinstance(document.data, dict) else None
                self.broken_schedules.add(declared if isinstance(declared, str) else path.stem)
                schedule: Schedule = _validate(document, Schedule, "schedule")
            except PolicyError as err:
                self.broken_schedules.add(path.stem)
                problems.extend(err.problems)
                continue
            self.broken_schedules -= {schedule.schedule, path.stem}
            layers = []
            for index, layer in enumerate(schedule.layers):
                if isinstance(layer.active, str):
                    if layer.active not in calendars:
                        problems.append(
                            FileProblem(
                                str(path),
                                document.line_of(["layers", index, "active"]),
                                f"layers[{index}].active",
                                f"unknown calendar {layer.active!r}: add it to calendars.yaml, or use one of "
                                f"{', '.join(sorted(calendars)) or '(calendars.yaml defines none)'}",
                            )
                        )
                        continue
                    layer = layer.model_copy(update={"active": calendars[layer.active]})
                layers.append(layer)
            if schedule.schedule in found:
                problems.append(
                    FileProblem(str(path), document.line_of(["schedule"]), "schedule", f"the name {schedule.schedule!r} is used twice: give each schedule its own name")
                )
            found[schedule.schedule] = schedule.model_copy(update={"layers": layers})
            self._documents[schedule.schedule] = document
        if problems:
            raise PolicyError(problems)
        return found

    def schedule_people_problems(self, schedules: dict[str, Schedule], directory: Directory) -> list[FileProblem]:
        """Everyone a schedule names must be a person of the directory."""
        problems = []
        people = sorted(directory.people)
        for name, schedule in schedules.items():
            document = self._documents.get(name)
            places = [(["layers", i, "participants", j], who) for i, layer in enumerate(schedule.layers) for j, who in enumerate(layer.participants)]
            places += [(["overrides", i, "who"], override.who) for i, override in enumerate(schedule.overrides)]
            for loc, who in places:
                if who not in directory.people:
                    problems.append(
                        FileProblem(
                            str(document.path) if document else name,
                            document.line_of(loc) if document else None,
                            _format_loc(tuple(loc)),
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
                document = _read(path)
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
            policy = _validate(document, Policy, "policy")
            directory = self.directory()
            calendars = self.calendars()
            # A broken schedule only stops the policies that page from schedules.
            uses_schedules = any(owner.startswith(SCHEDULE_PREFIX) for tier in policy.tiers for owner in tier.owners)
            schedules = self.schedules(calendars) if uses_schedules else {}
            problems = contact_problems(policy, directory, schedules) + tier_calendar_problems(policy, calendars)
            if (problem := calendar_problem(policy, calendars)) is not None:
                problems.append(problem)
            if problems:
                raise PolicyError(_located(document, problems))
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


def _named(problems: list[Problem], broken_schedules: set[str]) -> list[Problem]:
    """Leave out "unknown schedule" for the schedules whose own files are broken (reported there)."""
    return [p for p in problems if not any(p.message.startswith(f"unknown schedule {name!r}:") for name in broken_schedules)]


def check_paths(paths: list[Path]) -> CheckReport:
    """What ``escalate policy check`` runs: folders are checked whole; a single policy file is
    checked against the ``directory.yaml`` beside it."""
    report = CheckReport()
    for target in paths:
        target = Path(target)
        if target.is_dir():
            files = PolicyStore(target).policy_files()
            folder = target
        elif target.exists():
            files = [] if target.name in NOT_POLICIES else [target]
            folder = target.parent
        else:
            report.problems.append(FileProblem(str(target), None, "", "no such file or folder"))
            continue
        directory: Directory | None = None
        directory_path = folder / DIRECTORY_FILE
        try:
            directory = PolicyStore(folder).directory()
            report.checked.append(str(directory_path))
        except PolicyError as err:
            report.problems.extend(err.problems)
            if not directory_path.exists():
                directory = Directory()  # nobody is known: every owner is reported where it is used
        calendars: dict[str, Calendar] | None = None
        if (folder / CALENDARS_FILE).exists():
            try:
                calendars = PolicyStore(folder).calendars()
                report.checked.append(str(folder / CALENDARS_FILE))
            except PolicyError as err:
                report.problems.extend(err.problems)
        store = PolicyStore(folder)
        schedules: dict[str, Schedule] | None = None
        broken_schedules: set[str] = set()
        if (folder / SCHEDULES_DIR).is_dir():
            try:
                schedules = store.schedules(calendars or {})
            except PolicyError as err:
                # One broken schedule file: the others are still checked, and a policy naming
                # the broken one is not told that it does not exist.
                report.problems.extend(err.problems)
                schedules, broken_schedules = dict(store.loaded_schedules), set(store.broken_schedules)
            report.checked.extend(str(store._documents[name].path) for name in schedules)
            if directory is not None:
                report.problems.extend(store.schedule_people_problems(schedules, directory))
            now = datetime.now(UTC)
            for name, schedule in schedules.items():
                gaps = coverage_gaps(schedule, now)
                if gaps:
                    shown = "; ".join(describe_gap(gap, schedule.zone) for gap in gaps[:3])
                    more = f" and {len(gaps) - 3} more" if len(gaps) > 3 else ""
                    report.warnings.append(
                        FileProblem(
                            str(store._documents[name].path),
                            None,
                            "",
                            f"nobody is on call {shown}{more} (in the next 4 weeks): a tier of only this "
                            "schedule is skipped then; add a layer or participants to cover it",
                        )
                    )
        seen: dict[str, str] = {}
        for path in files:
            report.checked.append(str(path))
            try:
                document = _read(path)
            except PolicyError as err:
                report.problems.extend(err.problems)
                continue
            try:
                policy: Policy = _validate(document, Policy, "policy")
            except PolicyError as err:
                report.problems.extend(err.problems)
                if directory is not None and isinstance(document.data, dict):
                    report.problems.extend(_located(document, _named(contact_problems(document.data, directory, schedules), broken_schedules)))
                continue
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
            if directory is not None:
                report.problems.extend(_located(document, _named(contact_problems(policy, directory, schedules), broken_schedules)))
            report.problems.extend(_located(document, tier_calendar_problems(policy, calendars or {})))
            problem = calendar_problem(policy, calendars or {}) if calendars is not None or not (folder / CALENDARS_FILE).exists() else None
            if problem is not None:
                report.problems.extend(_located(document, [problem]))
    report.problems.sort(key=lambda problem: (problem.file, problem.line or 0))
    return report
