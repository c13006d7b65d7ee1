"""Reading one YAML file of the policy folder into its model, with every problem located and
explained: each names the file, the line, the field path and what to write instead, e.g.::

    payments.yaml:7: windows.P1.remind_before: remind_before 15m is not inside the ack_within
    window of 15m: write a duration shorter than 15m, e.g. remind_before: 5m

``activities.policy_store`` reads the folder (policies, the directory, calendars, schedules)
through these.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from workflows.policy import Directory, Policy, Problem, Tier, Windows
from workflows.schedule import Override, Rotation, Schedule

M = TypeVar("M", bound=BaseModel)

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





@dataclass
class Document:
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


def read_document(path: Path) -> Document:
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
                    format_loc(tuple(_path_at_yaml_error(text))),
                    f"not valid YAML ({problem}): {_yaml_hint(err)}",
                )
            ]
        ) from None
    except ValueError as err:  # PyYAML's own ValueError: an escape past the last Unicode character
        raise PolicyError(
            [
                FileProblem(
                    str(path),
                    _line_of_bad_escape(text),
                    "",
                    f"not valid YAML ({err}): a \\U escape must name a character, at most \\U0010FFFF",
                )
            ]
        ) from None
    return Document(path, data, root)


_LONG_ESCAPE = re.compile(r"\\U([0-9A-Fa-f]{8})")


def _line_of_bad_escape(text: str) -> int | None:
    """The line of the first \\U escape past U+10FFFF (PyYAML says nothing of where it was)."""
    for number, line in enumerate(text.splitlines(), 1):
        if any(int(code, 16) > 0x10FFFF for code in _LONG_ESCAPE.findall(line)):
            return number
    return None


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
            awaiting_key = top if top is not None and top[0] == "map" and not top[2] else None
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                value_ends()
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if awaiting_key is not None:
                    awaiting_key[1], awaiting_key[2] = getattr(event, "value", None), True
                else:
                    value_begins()
                    value_ends()
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if awaiting_key is not None:  # a complex key: nothing to name it by
                    awaiting_key[1], awaiting_key[2] = None, True
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


def _duplicate_keys(document: Document) -> list[FileProblem]:
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
                                format_loc((*loc, key.value)),
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


def format_loc(loc: tuple[Any, ...]) -> str:
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


def _explain(error: Mapping[str, Any], kind: str) -> str:
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


def _merge_forms(errors: Sequence[Mapping[str, Any]], data: Any) -> list[dict[str, Any]]:
    """One error per place in the file. A field of several forms fails once per form: keep our
    own validator's words if one form has them (the form that was meant), else say every form."""
    merged: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
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
    result: list[dict[str, Any]] = []
    for loc, group in merged.items():
        own = [error for error in group if error["type"] in ("value_error", "assertion_error")]
        if len(group) == 1 or own:
            result.extend({**error, "loc": loc} for error in (own or group))
            continue
        messages = list(dict.fromkeys(str(error["msg"]) for error in group))
        message = messages[0] + "".join(f" or {m.removeprefix('Input should be ')}" for m in messages[1:])
        result.append({"loc": loc, "type": "one_of_forms", "msg": message})
    return result


def validate(document: Document, model: type[M], kind: str) -> M:
    """The document as ``model`` (a policy, the directory, calendars or a schedule: ``kind``)."""
    file = str(document.path)
    if document.data is None:
        if kind == "directory":
            raise PolicyError([FileProblem(file, 1, "people", f"the file is empty: {_EMPTY_HINT[kind]}")])
        try:
            model.model_validate({})
        except ValidationError as err:
            raise PolicyError(
                [FileProblem(file, 1, format_loc(e["loc"]), f"the file is empty: {_explain(e, kind)}") for e in err.errors()]
            ) from None
        raise PolicyError([FileProblem(file, 1, "", f"the file is empty: {_EMPTY_HINT[kind]}")])
    if not isinstance(document.data, dict):
        raise PolicyError([FileProblem(file, 1, "", f"expected a mapping of fields: {_EMPTY_HINT[kind]}")])
    problems = _duplicate_keys(document)
    try:
        result = model.model_validate(document.data)
    except ValidationError as err:
        problems += [
            FileProblem(file, document.line_of(error["loc"]), format_loc(error["loc"]), _explain(error, kind))
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


def located(document: Document, problems: list[Problem]) -> list[FileProblem]:
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
