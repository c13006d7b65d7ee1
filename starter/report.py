"""The debrief, rendered: Markdown for tickets and chat, HTML (with the timeline drawn as an
inline SVG, tiers as lanes) for reading and printing, JSON for tools."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Literal

from starter.review import PolicyReport, Review, TierStint
from workflows.durations import format_duration, format_time
from workflows.model import TimelineEvent
from workflows.policy import Windows

Format = Literal["md", "html", "json"]


def render(review: Review, fmt: Format) -> str:
    if fmt == "json":
        return review.model_dump_json(indent=2) + "\n"
    if fmt == "html":
        return to_html(review)
    return to_markdown(review)


# ── words ────────────────────────────────────────────────────────────────────────────────────



def _span(value: timedelta | None) -> str:
    if value is None:
        return "-"
    if value < timedelta(seconds=10) and value.microseconds:
        return f"{value.total_seconds():.1f}s"
    return format_duration(value)


def _sla_line(review: Review) -> str:
    sla = review.sla
    if sla.resolve_by is None:
        return "no resolution SLA"
    if sla.breached:
        why = f" Reason given: {sla.reason}" if sla.reason else " No reason given yet."
        return f"BREACHED: due {format_time(sla.resolve_by)}, breached at {format_time(sla.breached_at)}.{why}"
    if sla.met:
        return f"met: resolved before {format_time(sla.resolve_by)}"
    return f"open, due {format_time(sla.resolve_by)}"


def _verdict(review: Review) -> str:
    return ("Verified: " if review.replay.verified else "NOT VERIFIED: ") + review.replay.message


def _stint_row(stint: TierStint) -> list[str]:
    return [
        f"{stint.policy} {stint.tier} ({stint.tier_name})",
        format_time(stint.started_at),
        _span(stint.held_for) if stint.ended_at else "still holding",
        stint.ended_by,
        ", ".join(stint.paged) or "-",
        ", ".join(stint.unreached) or "-",
        stint.answered_by or "-",
    ]


STINT_HEADER = ["tier", "paged at", "held for", "ended by", "paged", "not reached", "answered by"]
TIMELINE_HEADER = ["at", "event", "tier", "who", "channel", "detail"]


def _timeline_row(review: Review, index: int) -> list[str]:
    event = review.timeline[index]
    late = ""
    if event.due_at is not None and event.at - event.due_at >= timedelta(seconds=1):
        late = f" (due {format_time(event.due_at)}, {_span(event.at - event.due_at)} late)"
    return [
        format_time(event.at),
        event.kind,
        str(event.tier or ""),
        event.who or "",
        event.channel or "",
        event.detail + late,
    ]


def _facts(review: Review) -> list[tuple[str, str]]:
    earlier = f" (after {', '.join(p.name for p in review.policies[:-1])})" if len(review.policies) > 1 else ""
    seen = f", seen {review.occurrences} times" if review.occurrences > 1 else ""
    acked = f"{format_time(review.acknowledged_at)} by {review.acknowledged_by}" if review.acknowledged_by else "never"
    resolved = f"{format_time(review.resolved_at)} by {review.resolved_by}: {review.resolution}" if review.resolved_by else "not yet"
    return [
        ("Incident", f"{review.key}: [{review.priority}] {review.summary}"),
        ("Policy", review.policy + earlier),
        ("Status", review.status),
        ("Triggered", format_time(review.triggered_at) + seen),
        ("Acknowledged", acked),
        ("Time to acknowledge", _span(review.time_to_acknowledge)),
        ("Resolved", resolved),
        ("Time to resolve", _span(review.time_to_resolve)),
        ("Escalations", str(review.escalations)),
        ("Tiers paged", "; ".join(review.tiers_paged) or "-"),
        ("Resolution SLA", _sla_line(review)),
        ("Reporter", review.reporter or "-"),
    ]


def _window_words(priority: str, window: Windows) -> str:
    remind = window.reminder_offset()
    return (
        f"{priority}: ack within {format_duration(window.ack_within)}"
        + (f", remind at +{format_duration(remind)}" if remind else "")
        + (f", resolve within {format_duration(window.resolve_within)}" if window.resolve_within else "")
    )


def _policy_lines(review: Review) -> list[str]:
    lines = []
    for snapshot in review.policies:
        policy = snapshot.policy
        windows = "; ".join(_window_words(priority, w) for priority, w in sorted(policy.windows.items()))
        tiers = "; ".join(f"{i}. {tier.name}: {', '.join(snapshot.people_of(i))}" for i, tier in enumerate(policy.tiers, 1))
        lines.append(
            f"{policy.policy} ({policy.description or 'no description'}), manager {policy.manager}, "
            f"repeat {policy.repeat}. Windows: {windows}. Tiers: {tiers}."
        )
    return lines


# ── Markdown ─────────────────────────────────────────────────────────────────────────────────


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows),
    ]


def to_markdown(review: Review) -> str:
    lines = [f"# After-action review: {review.key}", "", f"> {_verdict(review)}", ""]
    lines += _md_table(["", ""], [[name, value] for name, value in _facts(review)])
    lines += ["", "## Who held it", ""]
    lines += _md_table(STINT_HEADER, [_stint_row(stint) for stint in review.stints])
    lines += ["", "## Policy in force", ""]
    lines += [f"- {line}" for line in _policy_lines(review)]
    lines += ["", "## Timeline", ""]
    lines += _md_table(TIMELINE_HEADER, [_timeline_row(review, i) for i in range(len(review.timeline))])
    lines += ["", f"_Source: {review.source}._", ""]
    return "\n".join(lines)


# ── HTML with an SVG timeline ────────────────────────────────────────────────────────────────

_STINT_COLOURS = {
    "acknowledged": "#2e7d32",
    "escalated": "#ef6c00",
    "skipped": "#bdbdbd",
    "exhausted": "#c62828",
    "reassigned": "#6a1b9a",
    "snoozed": "#9e9e9e",
    "resolved": "#1565c0",
    "open": "#f9a825",
}
_TICKS = [
    timedelta(seconds=s)
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
]


@dataclass
class _Chart:
    """Where things go on the timeline drawing: tiers as lanes down, time across."""

    review: Review
    width: int
    start: datetime
    end: datetime
    lanes: list[tuple[str, int, str]]
    """(policy, tier, tier name) of each lane, top down."""
    label_width: int = 220
    lane_height: int = 34
    top: int = 24

    @classmethod
    def of(cls, review: Review, width: int) -> _Chart:
        start = review.triggered_at or (review.timeline[0].at if review.timeline else datetime.now())
        ends = [stint.ended_at for stint in review.stints if stint.ended_at] + [event.at for event in review.timeline]
        end = max(ends + [start + timedelta(seconds=1)])
        lanes: list[tuple[str, int, str]] = []
        for snapshot in review.policies:
            for tier in range(1, snapshot.tier_count + 1):
                lanes.append((snapshot.name, tier, snapshot.tier_name(tier)))
        for stint in review.stints:
            if (stint.policy, stint.tier, stint.tier_name) not in lanes:
                lanes.append((stint.policy, stint.tier, stint.tier_name))
        return cls(review, width, start, end, lanes)

    @property
    def span(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def height(self) -> int:
        return self.top + self.lane_height * max(len(self.lanes), 1) + 40

    @property
    def axis_y(self) -> int:
        return self.top + self.lane_height * len(self.lanes)

    def x(self, moment: datetime) -> float:
        plot = self.width - self.label_width - 30
        return self.label_width + plot * max(0.0, min(1.0, (moment - self.start).total_seconds() / self.span))

    def lane_of(self, policy: str, tier: int | None) -> int | None:
        for index, (lane_policy, lane_tier, _) in enumerate(self.lanes):
            if lane_policy == policy and lane_tier == tier:
                return index
        return None

    def middle(self, lane: int) -> float:
        return self.top + lane * self.lane_height + self.lane_height / 2

    def label_anchor(self, x: float) -> str:
        """Near the right edge a label runs leftwards, so that it stays on the page."""
        return ' text-anchor="end"' if x > self.width - 110 else ""


def _svg_lanes(chart: _Chart) -> list[str]:
    parts = []
    for index, (policy, tier, name) in enumerate(chart.lanes):
        y = chart.top + index * chart.lane_height
        fill = "#f5f5f5" if index % 2 == 0 else "#ffffff"
        parts.append(f'<rect x="0" y="{y}" width="{chart.width}" height="{chart.lane_height}" fill="{fill}"/>')
        label = f"{policy} · {tier}. {name}" if len(chart.review.policies) > 1 else f"{tier}. {name}"
        parts.append(f'<text x="6" y="{y + chart.lane_height / 2 + 4}" class="lane">{escape(label)}</text>')
    return parts


def _svg_axis(chart: _Chart) -> list[str]:
    parts = []
    step = next((tick for tick in _TICKS if chart.span / tick.total_seconds() <= 8), _TICKS[-1])
    tick = timedelta(0)
    while tick.total_seconds() <= chart.span + 1e-6:
        tx = chart.x(chart.start + tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{chart.top}" x2="{tx:.1f}" y2="{chart.axis_y}" class="grid"/>')
        parts.append(f'<text x="{tx:.1f}" y="{chart.axis_y + 14}" class="tick">+{escape(format_duration(tick))}</text>')
        tick += step
    parts.append(f'<text x="{chart.label_width}" y="{chart.axis_y + 30}" class="tick">from {escape(format_time(chart.start))}</text>')
    return parts


def _svg_stints(chart: _Chart) -> list[str]:
    """Each tier's spell holding the incident, as a bar coloured by how it ended."""
    parts = []
    for stint in chart.review.stints:
        lane = chart.lane_of(stint.policy, stint.tier)
        if lane is None:
            continue
        y = chart.top + lane * chart.lane_height + 8
        x1, x2 = chart.x(stint.started_at), chart.x(stint.ended_at or chart.end)
        colour = _STINT_COLOURS[stint.ended_by]
        title = f"{stint.tier_name}: {_span(stint.held_for) if stint.ended_at else 'holding'}, {stint.ended_by}"
        parts.append(
            f'<rect x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 2):.1f}" height="{chart.lane_height - 16}" rx="3" '
            f'fill="{colour}" fill-opacity="0.35" stroke="{colour}"><title>{escape(title)}</title></rect>'
        )
    return parts


def _with_policy(review: Review) -> list[tuple[str, TimelineEvent]]:
    """Each event with the policy that held the incident when it happened."""
    policy = review.policies[0].name if review.policies else review.policy
    held = []
    for event in review.timeline:
        if event.kind in ("triggered", "reassigned") and event.policy:
            policy = event.policy
        held.append((policy, event))
    return held


def _svg_ownership(chart: _Chart) -> list[str]:
    """Owned by the acker from the ack until it changes hands or is resolved."""
    parts = []
    timeline = chart.review.timeline
    for index, (policy, event) in enumerate(_with_policy(chart.review)):
        if event.kind != "acknowledged" or (lane := chart.lane_of(policy, event.tier)) is None:
            continue
        until = next(
            (later.at for later in timeline[index + 1 :] if later.kind in ("resolved", "escalated", "reassigned", "snoozed")),
            chart.end,
        )
        cy = chart.middle(lane)
        parts.append(
            f'<line x1="{chart.x(event.at):.1f}" y1="{cy:.1f}" x2="{chart.x(until):.1f}" y2="{cy:.1f}" class="owned">'
            f"<title>{escape(f'owned by {event.who} for {_span(until - event.at)}')}</title></line>"
        )
    return parts


_MARKS = {"acknowledged": "✓ ack", "escalated": "▲", "exhausted": "✗ exhausted", "unreachable": "! unreachable"}


def _svg_lane_mark(chart: _Chart, event: TimelineEvent, lane: int, title: str) -> str | None:
    """A page (a dot, red when it failed), a reminder, or a turn of the story, in its tier's lane."""
    cx, cy = chart.x(event.at), chart.middle(lane)
    if event.kind in ("notified", "notify_failed"):
        colour = "#c62828" if event.kind == "notify_failed" else "#37474f"
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}"><title>{title}</title></circle>'
    if event.kind == "reminded":
        return f'<path d="M{cx - 5:.1f},{cy - 9:.1f} h10 l-5,8 z" fill="#f9a825"><title>{title}</title></path>'
    if event.kind in _MARKS:
        anchor = chart.label_anchor(cx)
        return (
            f'<text x="{cx + (-3 if anchor else 3):.1f}" y="{cy - 9:.1f}" class="mark {event.kind}"{anchor}>'
            f"{escape(_MARKS[event.kind])}<title>{title}</title></text>"
        )
    return None


def _svg_events(chart: _Chart) -> list[str]:
    """Marks in the tiers' lanes, and SLA breach and resolution as lines across all of them."""
    parts = []
    for policy, event in _with_policy(chart.review):
        lane = chart.lane_of(policy, event.tier)
        cx = chart.x(event.at)
        title = escape(f"{format_time(event.at)} {event.kind} {event.who or ''}: {event.detail}")
        if lane is not None and (mark := _svg_lane_mark(chart, event, lane, title)) is not None:
            parts.append(mark)
        if event.kind in ("sla_breached", "resolved"):
            css = "breach" if event.kind == "sla_breached" else "resolved"
            label = "SLA breached" if event.kind == "sla_breached" else "resolved"
            parts.append(
                f'<line x1="{cx:.1f}" y1="{chart.top}" x2="{cx:.1f}" y2="{chart.axis_y}" class="{css}"><title>{title}</title></line>'
            )
            anchor = chart.label_anchor(cx)
            parts.append(
                f'<text x="{cx + (-3 if anchor else 3):.1f}" y="{chart.top - 6}" class="{css}-label"{anchor}>{label}</text>'
            )
    return parts


def timeline_svg(review: Review, width: int = 960) -> str:
    """Tiers as lanes, time across: each tier's spell as a bar, pages as dots (red when they
    failed), reminders, acknowledgement, SLA breach and resolution as marks."""
    chart = _Chart.of(review, width)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {width} {chart.height}" '
        f'width="{width}" height="{chart.height}" role="img" aria-label="Timeline of incident {escape(review.key)}">',
        *_svg_lanes(chart),
        *_svg_axis(chart),
        *_svg_stints(chart),
        *_svg_ownership(chart),
        *_svg_events(chart),
        "</svg>",
    ]
    return "".join(parts)


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1000px; color: #212121; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.verdict { padding: .6em .9em; border-radius: 4px; }
.verdict.ok { background: #e8f5e9; border: 1px solid #2e7d32; }
.verdict.bad { background: #ffebee; border: 2px solid #c62828; font-weight: bold; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #fafafa; } td.detail { font-size: 12px; }
svg.timeline { width: 100%; height: auto; border: 1px solid #ddd; }
svg .lane { font-size: 12px; fill: #212121; } svg .tick { font-size: 10px; fill: #616161; }
svg .grid { stroke: #e0e0e0; } svg .owned { stroke: #2e7d32; stroke-width: 3; stroke-dasharray: 6 3; }
svg .mark { font-size: 11px; font-weight: bold; }
svg .acknowledged { fill: #2e7d32; } svg .escalated { fill: #ef6c00; } svg .exhausted, svg .unreachable { fill: #c62828; }
svg .breach { stroke: #c62828; stroke-dasharray: 4 3; stroke-width: 1.5; } svg .breach-label { font-size: 10px; fill: #c62828; }
svg .resolved { stroke: #1565c0; stroke-width: 2; } svg .resolved-label { font-size: 10px; fill: #1565c0; }
.legend span { display: inline-block; margin-right: 1em; font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { margin: 0; max-width: none; font-size: 11px; }
  tr, svg { page-break-inside: avoid; } h2 { page-break-after: avoid; }
  .verdict, svg * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _html_page(title: str, body: str) -> str:
    """A self-contained page (no network): XHTML-compatible, so it parses as XML too."""
    return (
        '<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def _html_table(header: list[str], rows: list[list[str]], detail_column: int | None = None) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="detail">{escape(value)}</td>' if index == detail_column else f"<td>{escape(value)}</td>"
            for index, value in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(review: Review) -> str:
    verdict_class = "ok" if review.replay.verified else "bad"
    facts = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in _facts(review))
    legend = "".join(
        '<span><svg xmlns="http://www.w3.org/2000/svg" width="12" height="12">'
        f'<rect width="12" height="12" fill="{colour}" fill-opacity="0.5"/></svg> {escape(name)}</span>'
        for name, colour in _STINT_COLOURS.items()
    )
    policies = "".join(f"<li>{escape(line)}</li>" for line in _policy_lines(review))
    return _html_page(
        f"After-action review: {review.key}",
        f"<h1>After-action review: {escape(review.key)}</h1>"
        f"<p>[{escape(review.priority)}] {escape(review.summary)}</p>"
        f'<p class="verdict {verdict_class}">{escape(_verdict(review))}</p>'
        f"<table>{facts}</table>"
        f"<h2>Timeline</h2>{timeline_svg(review)}"
        f'<p class="legend">Tier held until: {legend} <span>- - - owned by whoever acknowledged</span></p>'
        f"<h2>Who held it</h2>{_html_table(STINT_HEADER, [_stint_row(stint) for stint in review.stints])}"
        f"<h2>Policy in force</h2><ul>{policies}</ul>"
        f"<h2>Every event</h2>"
        f"{_html_table(TIMELINE_HEADER, [_timeline_row(review, i) for i in range(len(review.timeline))], detail_column=5)}"
        f"<p><small>Source: {escape(review.source)}.</small></p>",
    )


# ── across incidents ─────────────────────────────────────────────────────────────────────────


def render_policy_report(report: PolicyReport, fmt: Format) -> str:
    if fmt == "json":
        return report.model_dump_json(indent=2) + "\n"
    rows = _policy_report_rows(report)
    title = f"Incidents of {report.policy or 'every policy'} since {format_time(report.since)}"
    if fmt == "html":
        return _html_page(title, f"<h1>{escape(title)}</h1>{_html_table(['', ''], rows)}")
    return "\n".join([f"# {title}", "", *_md_table(["", ""], rows), ""])


def _policy_report_rows(report: PolicyReport) -> list[list[str]]:
    rate = f"{report.sla_breach_rate:.0%}" if report.sla_breach_rate is not None else "-"
    return [
        ["incidents", str(report.incidents)],
        ["resolved", str(report.resolved)],
        ["acknowledged", str(report.acknowledged)],
        ["time to acknowledge (mean / median)", f"{_span(report.mean_time_to_acknowledge)} / {_span(report.median_time_to_acknowledge)}"],
        ["time to resolve (mean / median)", f"{_span(report.mean_time_to_resolve)} / {_span(report.median_time_to_resolve)}"],
        ["escalations by tier reached", ", ".join(f"tier {t.tier}: {t.escalated_to}" for t in report.escalations_by_tier) or "none"],
        ["SLA breaches", f"{report.sla_breaches} ({rate})"],
        ["busiest responders", ", ".join(f"{who} ({count})" for who, count in report.busiest_responders) or "-"],
    ]
