"""What each notification says: Jinja2 templates in one place (``activities/templates/``), any of
which a folder named by ``ESCALATE_TEMPLATE_DIR`` can override."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import get_args

import jinja2

from workflows.durations import format_duration, format_time
from workflows.model import REPORTER, MessageKind, Notification

DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates"
FOOTER = "_footer.j2"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    body: str = ""
    """The text without its footer (for cards and push notifications, which have buttons)."""
    ack_link: str = ""


def _when(moment: datetime | None) -> str:
    """The ``when`` filter: the one time format, or "soon" where a sentence has no time to name
    ("Please acknowledge by soon" reads better than "by -")."""
    return format_time(moment) if moment is not None else "soon"


def _duration(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else ""


class TemplateProblem(jinja2.TemplateError):
    """A message template that cannot be used (syntax, unknown variable, missing block): the
    message names the file, which may be in the override folder."""


@contextmanager
def _naming(template: jinja2.Template) -> Iterator[None]:
    try:
        yield
    except jinja2.TemplateError as err:
        raise TemplateProblem(f"message template {template.filename}: {err.message or err}") from None


class Templates:
    def __init__(self, override_dir: Path | None = None) -> None:
        folders = [str(override_dir)] if override_dir else []
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*folders, str(DEFAULT_TEMPLATES)]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # the text part; the HTML part is escaped below
            keep_trailing_newline=False,
            trim_blocks=True,
        )
        self.env.filters["when"] = _when
        self.env.filters["duration"] = _duration

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateProblem(f"message template {err.filename or name}, line {err.lineno}: {err.message}") from None

    def render(self, note: Notification, *, ack_link: str = "", resolve_link: str = "") -> RenderedMessage:
        template = self._template(f"{note.kind}.j2")
        variables = {
            "ack_link": ack_link,
            "resolve_link": resolve_link,
            "n": note,
            "tier": f"tier {note.tier} of {note.tier_count} ({note.tier_name})",
            "ack_command": f"escalate ack {note.incident_key} --by {note.person}",
            "status_command": f"escalate status {note.incident_key}",
            "to_reporter": note.person == REPORTER,
        }
        context = template.new_context(variables)

        def block(name: str) -> str:
            if name not in template.blocks:
                raise TemplateProblem(
                    f"message template {template.filename}: no {{% block {name} %}} (each template defines "
                    "the blocks subject and body; see activities/templates/README.md)"
                )
            with _naming(template):
                return "".join(template.blocks[name](context)).strip()

        subject = " ".join(block("subject").split())
        body = block("body")
        if "footer" in template.blocks:
            footer = block("footer")
        else:
            footer_template = self._template(FOOTER)
            with _naming(footer_template):
                footer = footer_template.render(variables).strip()
        text = f"{body}\n\n{footer}\n"
        paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
        page = f"<html><body><h3>{html.escape(subject)}</h3>{paragraphs}</body></html>"
        return RenderedMessage(subject=subject, text=text, html=page, body=body, ack_link=ack_link)

    def check(self) -> None:
        """Render every kind of message once, so a broken override fails when the worker
        starts rather than when someone must be paged."""
        for kind in get_args(MessageKind):
            self.render(sample_notification(kind))


def sample_notification(kind: MessageKind) -> Notification:
    """A realistic notification of each kind, for checking templates."""
    now = datetime.now(UTC)
    return Notification(
        idempotency_key="sample/1/alice/email",
        kind=kind,
        incident_key="sample",
        policy="payments",
        priority="P1",
        summary="Card authorisations failing",
        person=REPORTER if kind == "customer_update" else "alice",
        channel="email",
        address="alice@example.com",
        tier=2,
        tier_name="L2 payments engineering",
        tier_count=3,
        ack_by=now + timedelta(minutes=15),
        tried=["tier 1 L1 support (erin, frank) for 15m"],
        reason="",
        next_step="tier 3 (L3 head of payments)",
        reporter="customer@example.com",
        acknowledged_by="alice",
        resolved_by="alice",
        resolution="Gateway failover",
    )


@lru_cache(maxsize=1)
def _builtin() -> Templates:
    return Templates()


def render(note: Notification) -> RenderedMessage:
    """Render with the built-in templates only."""
    return _builtin().render(note)
