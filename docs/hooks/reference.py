"""mkdocs hook: the reference pages are generated from the code at build time, so they cannot go
stale. Nothing generated is written into the repository.

A page asks for a generated part with an HTML comment on a line of its own::

    <!-- generated: http -->            every route, from FastAPI's OpenAPI schema
    <!-- generated: http-schemas -->    the request and response models those routes use
    <!-- generated: cli -->             every command of the Typer app, with its options
    <!-- generated: settings -->        every ESCALATE_* setting of escalate/settings.py
    <!-- generated: timeline-kinds -->  the timeline event kinds (from the OpenAPI schema)

The site also gets ``reference/openapi.json``. The Python API page uses mkdocstrings
(``::: starter.api.Escalations``), which reads the docstrings itself.

Only public entry points are imported: ``starter.web.create_app``, ``starter.cli.app`` and
``escalate.settings.Settings``. An unknown marker, or a setting with no description, is an error
(``mkdocs build --strict`` fails), so a new setting cannot be left out of the docs.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import re
import sys
import textwrap
import typing
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.reference")

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
ROOT = Path(__file__).resolve().parents[2]

# ── hook entry points ────────────────────────────────────────────────────────────────────────


def on_config(config: Any) -> Any:
    # This tree's code, not whatever copy of the package the environment has installed.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        generator = GENERATORS.get(name)
        if generator is None:
            raise PluginError(f"{page.file.src_uri}: unknown generated part {name!r} (known: {', '.join(GENERATORS)})")
        return generator()

    return MARKER.sub(replace, markdown)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    # Published with the site (and linked from the HTTP reference), never written into the tree.
    files.append(File.generated(config, "reference/openapi.json", content=json.dumps(_openapi(), indent=2) + "\n"))
    return files


# ── HTTP: FastAPI's OpenAPI schema ───────────────────────────────────────────────────────────

_schema_cache: dict[str, Any] = {}


def _openapi() -> dict[str, Any]:
    if not _schema_cache:
        from escalate.settings import Settings
        from starter.web import create_app

        # Defaults only, so that the build machine's environment cannot change the reference.
        _schema_cache.update(create_app(Settings.model_construct()).openapi())
    return _schema_cache


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = _openapi().get("components", {}).get("schemas", {})
    return schemas


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _schema_link(name: str) -> str:
    return f"[`{name}`](#schema-{name.lower()})"


def _type(schema: dict[str, Any]) -> str:
    """A JSON schema as a short phrase: ``string``, ``list of TimelineEvent``, ``integer or null``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return _schema_link(_ref_name(schema["$ref"]))
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            parts = [_type(part) for part in schema[combinator]]
            return " or ".join(dict.fromkeys(parts))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type(schema["allOf"][0])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        return f"object of {_type(extra)}" if isinstance(extra, dict) and extra else "object"
    if kind == "string" and schema.get("format"):
        return {"date-time": "date-time (ISO 8601)", "duration": "duration (`2h`, `30m`, `PT2H`)"}.get(
            schema["format"], f"string ({schema['format']})"
        )
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    found: list[str] = []
    for inner in [schema, *schema.get("anyOf", [])]:
        low, high = inner.get("minLength"), inner.get("maxLength")
        if low is not None and high is not None:
            found.append(f"{low} to {high} characters")
        elif high is not None:
            found.append(f"at most {high} characters")
        elif low is not None:
            found.append(f"at least {low} characters" if low != 1 else "not empty")
        if "minimum" in inner:
            found.append(f"≥ {inner['minimum']}")
        if "maximum" in inner:
            found.append(f"≤ {inner['maximum']}")
        if "pattern" in inner:
            found.append(f"matches `{inner['pattern']}`")
    if "default" in schema and schema["default"] not in (None, "", [], {}):
        found.append(f"default `{json.dumps(schema['default'])}`")
    return "; ".join(found)


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _prose(text: str | None) -> str:
    """A docstring as Markdown: reST's double backticks become code spans."""
    return re.sub(r"``(.+?)``", r"`\1`", inspect.cleandoc(text or "")).strip()


def _fields_table(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    if not properties:
        return ["Any JSON object." if schema.get("type") == "object" else f"{_type(schema)}."]
    required = set(schema.get("required", []))
    rows = ["| field | type | required | notes |", "|---|---|---|---|"]
    for name, prop in properties.items():
        notes = "; ".join(part for part in (_cell(prop.get("description")), _constraints(prop)) if part)
        rows.append(f"| `{name}` | {_type(prop)} | {'yes' if name in required else ''} | {_cell(notes)} |")
    return rows


def _response_line(code: str, response: dict[str, Any]) -> str:
    content = response.get("content", {})
    if not content:
        return f"- **{code}**: {response.get('description', '')}"
    media, body = next(iter(content.items()))
    schema = body.get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        # FastAPI's default entry; the app answers every error as a problem document.
        return f"- **{code}**: `application/problem+json`, naming each field at fault (see [Errors](#errors))"
    shown = _type(schema) if schema else "as described above"
    return f"- **{code}** `{media}`: {shown}"


def _operations() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, methods in _openapi().get("paths", {}).items():
        for method, operation in methods.items():
            tag = (operation.get("tags") or ["other"])[0]
            yield tag, method.upper(), path, operation


def generate_http() -> str:
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for tag, method, path, operation in _operations():
        by_tag.setdefault(tag, []).append((method, path, operation))
    out: list[str] = []
    for tag, operations in by_tag.items():
        out += [f"## {tag.capitalize()}", ""]
        for method, path, operation in operations:
            out += [f"### `{method} {path}`", ""]
            out += [f"*{operation.get('summary', '')}*", ""]
            if operation.get("description"):
                out += [_prose(operation["description"]), ""]
            parameters = operation.get("parameters", [])
            if parameters:
                out += ["| parameter | in | type | required | notes |", "|---|---|---|---|---|"]
                for parameter in parameters:
                    schema = parameter.get("schema", {})
                    notes = "; ".join(p for p in (_cell(parameter.get("description")), _constraints(schema)) if p)
                    out.append(
                        f"| `{parameter['name']}` | {parameter['in']} | {_type(schema)} | "
                        f"{'yes' if parameter.get('required') else ''} | {_cell(notes)} |"
                    )
                out.append("")
            body = operation.get("requestBody")
            if body:
                media, content = next(iter(body.get("content", {}).items()))
                out += [f"Body (`{media}`): {_type(content.get('schema', {}))}", ""]
            out += ["Answers:", ""]
            out += [_response_line(code, response) for code, response in operation.get("responses", {}).items()]
            out.append("")
    return "\n".join(out)


def _referenced(schema: Any, found: dict[str, None]) -> None:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = _ref_name(ref)
            if name not in found and name in _schemas():
                found[name] = None
                _referenced(_schemas()[name], found)
        for value in schema.values():
            _referenced(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _referenced(value, found)


def generate_http_schemas() -> str:
    found: dict[str, None] = {}
    for _tag, _method, _path, operation in _operations():
        _referenced(operation.get("requestBody", {}), found)
        for response in operation.get("responses", {}).values():
            _referenced(response, found)
        _referenced(operation.get("parameters", []), found)
    # FastAPI's default validation-error models describe no answer this app gives.
    found.pop("HTTPValidationError", None)
    found.pop("ValidationError", None)
    out: list[str] = []
    for name in found:
        schema = _schemas()[name]
        out += [f"### {name} {{ #schema-{name.lower()} }}", ""]
        if schema.get("description"):
            out += [_prose(schema["description"]), ""]
        out += _fields_table(schema)
        out.append("")
    return "\n".join(out)


def _enum_of(model: str, field: str) -> list[str]:
    try:
        return list(_schemas()[model]["properties"][field]["enum"])
    except KeyError as err:
        raise PluginError(f"the OpenAPI schema has no enum {model}.{field}: update docs/hooks/reference.py") from err


def generate_timeline_kinds() -> str:
    return ", ".join(f"`{value}`" for value in _enum_of("TimelineEvent", "kind"))


# ── CLI: the Typer app ───────────────────────────────────────────────────────────────────────
#
# Walked through the Click interface Typer builds on (help, usage pieces, each parameter's help
# record), as Typer's own ``typer … utils docs`` does, so the page says what ``--help`` says.


def _command_section(command: Any, context: Any, path: list[str]) -> list[str]:
    full = " ".join(path)
    usage = " ".join(command.collect_usage_pieces(context))
    out = [f"## `{full}`", "", _prose(command.help), ""]
    out += ["```", f"{full} {usage}".rstrip(), "```", ""]
    records = [
        (param.param_type_name, record)
        for param in command.get_params(context)
        if (record := param.get_help_record(context)) is not None and "--help" not in record[0]
    ]
    if records:
        out += ["| argument / option | meaning |", "|---|---|"]
        for kind, (names, help_text) in records:
            shown = f"`{names}`" if kind == "option" else f"`{names}` (argument)"
            out.append(f"| {shown} | {_cell(help_text)} |")
        out.append("")
    return out


def _walk(group: Any, context: Any, path: list[str]) -> Iterator[tuple[Any, Any, list[str]]]:
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        sub_context = type(context)(command, parent=context, info_name=name)
        if hasattr(command, "list_commands"):
            yield from _walk(command, sub_context, [*path, name])
        else:
            yield command, sub_context, [*path, name]


def generate_cli() -> str:
    import typer
    import typer.main

    import starter.cli

    root = typer.main.get_command(starter.cli.app)
    if not hasattr(root, "list_commands"):
        raise PluginError("starter.cli.app is not a group of commands: update docs/hooks/reference.py")
    context = typer.Context(root, info_name="escalate")
    out = [_prose(starter.cli.__doc__), ""]
    for command, sub_context, path in _walk(root, context, ["escalate"]):
        out += _command_section(command, sub_context, path)
    return "\n".join(out)


# ── settings: the pydantic-settings object ───────────────────────────────────────────────────


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """The string literal under each annotated attribute of the class body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    found: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[node.target.id] = following.value.value
    return found


def _annotation(annotation: Any) -> str:
    from pydantic import SecretStr

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = args[0]
        return "duration (`30s`, `15m`, `24h`, `PT15M`)" if inner is timedelta else _annotation(inner)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_annotation(arg) for arg in args if arg is not type(None))
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    if annotation is timedelta:
        return "duration"
    plain = {str: "text", int: "integer", float: "number", bool: "true/false"}
    return plain.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(value: Any) -> str:
    from escalate import settings as settings_module

    if value is None:
        return "unset"
    if isinstance(value, timedelta):
        from workflows.durations import format_duration

        return f"`{format_duration(value)}`"
    if isinstance(value, Path):
        root = getattr(settings_module, "REPO_ROOT", ROOT)
        if value.is_relative_to(root):
            return f"`{value.relative_to(root).as_posix()}` (in the repository)"
        home = Path.home()
        if value.is_relative_to(home):
            return f"`~/{value.relative_to(home).as_posix()}` (or under `$XDG_DATA_HOME`)"
        return f"`{value}`"
    if isinstance(value, str) and value == "":
        return '`""`'
    return f"`{value}`"


def generate_settings() -> str:
    from escalate.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", ""))
    docstrings = _attribute_docstrings(Settings)
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = field.description or docstrings.get(name)
        if not meaning:
            log.warning("setting %s has no docstring in escalate/settings.py: say what it does there", name)
            meaning = ""
        default = _default(field.get_default(call_default_factory=True))
        rows.append(f"| `{prefix}{name.upper()}` | {_annotation(field.annotation)} | {default} | {_cell(_prose(meaning))} |")
    return "\n".join(rows)


GENERATORS: dict[str, Callable[[], str]] = {
    "http": generate_http,
    "http-schemas": generate_http_schemas,
    "cli": generate_cli,
    "settings": generate_settings,
    "timeline-kinds": generate_timeline_kinds,
}
