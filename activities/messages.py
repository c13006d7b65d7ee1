"""What each notification says: Jinja2 templates in one place (``activities/templates/``), any of
which a folder named by ``ESCALATE_TEMPLATE_DIR`` can override."""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from pathlib import Path

import jinja2

from workflows.durations import format_duration
from workflows.model import REPORTER, Notification

DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates"
FOOTER = "_footer.j2"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "soon"


def _duration(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else ""


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

    def render(self, note: Notification) -> RenderedMessage:
        template = self.env.get_template(f"{note.kind}.j2")
        variables = {
            "n": note,
            "tier": f"tier {note.tier} of {note.tier_count} ({note.tier_name})",
            "ack_command": f"escalate ack {note.incident_key} --by {note.person}",
            "status_command": f"escalate status {note.incident_key}",
            "to_reporter": note.person == REPORTER,
        }
        context = template.new_context(variables)

        def block(name: str) -> str:
            return "".join(template.blocks[name](context)).strip()

        subject = " ".join(block("subject").split())
        body = block("body")
        footer = block("footer") if "footer" in template.blocks else self.env.get_template(FOOTER).render(variables).strip()
        text = f"{body}\n\n{footer}\n"
        paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
        page = f"<html><body><h3>{html.escape(subject)}</h3>{paragraphs}</body></html>"
        return RenderedMessage(subject=subject, text=text, html=page)


@lru_cache(maxsize=1)
def _builtin() -> Templates:
    return Templates()


def render(note: Notification) -> RenderedMessage:
    """Render with the built-in templates only."""
    return _builtin().render(note)
