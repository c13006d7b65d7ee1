"""What each notification says. Every message says what happens next and how to acknowledge."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from workflows.model import Notification


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "soon"


def render(note: Notification) -> RenderedMessage:
    headline = f"[{note.priority}] {note.policy}: {note.summary} (incident {note.incident_key})"
    ack = f"escalate ack {note.incident_key} --by {note.person}"
    tier = f"tier {note.tier} of {note.tier_count} ({note.tier_name})"
    if note.kind == "page":
        subject = headline
        lines = [
            f"You are paged for incident {note.incident_key} as {tier} of policy {note.policy}.",
            f"Please acknowledge by {_when(note.ack_by)}; if nobody does, it escalates to the next tier.",
        ]
    elif note.kind == "reminder":
        subject = f"Reminder: {headline}"
        lines = [
            f"A gentle reminder: incident {note.incident_key} is still waiting for someone to take it.",
            f"You are {tier}. It escalates at {_when(note.ack_by)} unless it is acknowledged first.",
        ]
    elif note.kind == "escalated":
        subject = f"Escalated to you: {headline}"
        lines = [f"Incident {note.incident_key} has been escalated to you as {tier}."]
        if note.tried:
            lines.append("Tried before you without an acknowledgement: " + "; ".join(note.tried) + ".")
        lines.append(f"Please acknowledge by {_when(note.ack_by)}.")
    elif note.kind == "exhausted":
        subject = f"Nobody acknowledged: {headline}"
        lines = [
            f"Every tier of policy {note.policy} was paged for incident {note.incident_key} and nobody acknowledged.",
            "Tried: " + ("; ".join(note.tried) if note.tried else "every tier") + ".",
            "Nothing more will be paged. The incident stays open: please find an owner.",
        ]
        ack = f"escalate ack {note.incident_key} --by {note.person}"
    else:  # sla_breach
        subject = f"SLA breached: {headline}"
        lines = [
            f"Incident {note.incident_key} was not resolved within its resolution SLA.",
            f"It is at {tier}. Please tell us why the SLA was violated:",
            f'  escalate note {note.incident_key} --by {note.person} "SLA missed because …"',
        ]
    lines += ["", f"To acknowledge: {ack}", f"Status: escalate status {note.incident_key}"]
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "" for line in lines)
    page = f"<html><body><h3>{html.escape(subject)}</h3>{body}</body></html>"
    return RenderedMessage(subject=subject, text=text, html=page)
