"""What each notification says: the Jinja2 message templates, rendered on their own (no servers).

The notifications are built the way the incident workflow builds them (``IncidentWorkflow._message``):
``tried`` holds phrases like "tier 1 L1 support (erin, frank) for 15m", ``reason`` what the
workflow passes for the kind, ``ack_by`` the tier's absolute deadline, ``person`` "reporter" for
messages to whoever reported the incident.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import jinja2
import pytest

from activities import EscalationActivities
from activities.messages import DEFAULT_TEMPLATES, RenderedMessage, Templates, render, sample_notification
from tests.support.notifications import notification as make_notification
from tests.support.paths import TEST_POLICIES
from tests.support.temporal import make_settings
from workflows.model import REPORTER, MessageKind, Notification

KEY = "pay-502-2026-11-25"
TRIGGERED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ACK_BY = TRIGGERED + timedelta(minutes=15)
"""Tier 1's deadline for a P1 of the payments policy: triggered + ``ack_within: 15m``."""
ACK_BY_TEXT = "2026-11-25 12:15:00 UTC"
REPORTER_EMAIL = "shop-owner@example.com"
TRIED_TIER_1 = "tier 1 L1 support (erin, frank) for 15m"
TRIED_TIER_2 = "tier 2 L2 payments engineering (alice, bob) for 15m"
TRIED_TIER_3 = "tier 3 L3 head of payments (carol) for 15m"

TIERS = {1: "L1 support", 2: "L2 payments engineering", 3: "L3 head of payments"}


def notification(kind: MessageKind, person: str, *, tier: int = 1, **changes: Any) -> Notification:
    fields: dict[str, Any] = dict(
        kind=kind,
        address=REPORTER_EMAIL if person == REPORTER else f"{person}@example.com",
        policy="payments",
        summary="Card payments failing with HTTP 502",
        tier=tier,
        tier_name=TIERS[tier],
        tier_count=3,
        ack_by=ACK_BY,
        reporter=REPORTER_EMAIL,
    )
    fields.update(changes)
    return make_notification(key=KEY, person=person, channel="email", round=3, **fields)


# One realistic notification of each kind, as the workflow sends it. "resolved" goes both to the
# owners who were paged and to the reporter.
SAMPLES: dict[str, Notification] = {
    "page": notification("page", "erin"),
    "reminder": notification("reminder", "erin"),
    "escalated": notification("escalated", "alice", tier=2, tried=[TRIED_TIER_1], ack_by=ACK_BY + timedelta(minutes=15)),
    "exhausted": notification(
        "exhausted",
        "dana",
        tier=3,
        ack_by=None,
        tried=[TRIED_TIER_1, TRIED_TIER_2, TRIED_TIER_3],
        reason="every tier was paged and nobody acknowledged",
    ),
    "sla_breach": notification(
        "sla_breach", "dana", tier=2, ack_by=None, acknowledged_by="alice", reason="the resolution SLA was breached"
    ),
    "unreachable": notification("unreachable", "dana", reason="nobody of tier 1 could be reached"),
    "resolved": notification(
        "resolved",
        "alice",
        tier=2,
        ack_by=None,
        acknowledged_by="alice",
        resolved_by="bob",
        resolution="rolled back gateway release 4.2.1; card payments succeed again",
    ),
    "resolved-to-reporter": notification(
        "resolved",
        REPORTER,
        tier=2,
        ack_by=None,
        acknowledged_by="alice",
        resolved_by="bob",
        resolution="rolled back gateway release 4.2.1; card payments succeed again",
    ),
    "customer_update": notification("customer_update", REPORTER),
    "ack_reminder": notification("ack_reminder", "alice", tier=2, acknowledged_by="alice"),
}
TO_RESPONDERS = ["page", "reminder", "escalated", "exhausted", "sla_breach", "unreachable", "ack_reminder"]
"""Messages asking the person to act on an open incident: each says how to acknowledge."""
TO_REPORTER = ["resolved-to-reporter", "customer_update"]


def ack_command(person: str) -> str:
    return f"escalate ack {KEY} --by {person}"


def rendered(sample: str) -> RenderedMessage:
    return render(SAMPLES[sample])


# ── 5. every kind renders; who is asked to acknowledge ───────────────────────────────────────


def test_every_message_kind_has_a_sample_and_a_template() -> None:
    kinds = set(get_args(MessageKind))
    assert kinds == {
        "page", "reminder", "escalated", "exhausted", "sla_breach", "unreachable", "resolved", "customer_update", "ack_reminder"
    }
    assert {note.kind for note in SAMPLES.values()} == kinds
    assert {path.stem for path in DEFAULT_TEMPLATES.glob("[!_]*.j2")} == kinds


@pytest.mark.parametrize("sample", list(SAMPLES))
def test_every_kind_renders_a_complete_message(sample: str) -> None:
    note = SAMPLES[sample]
    message = render(note)

    assert message.subject and "\n" not in message.subject
    assert KEY in message.subject, f"the subject should carry the incident key: {message.subject!r}"
    assert "Card payments failing with HTTP 502" in message.subject
    assert message.text.endswith("\n") and not message.text.endswith("\n\n")
    assert KEY in message.text
    body, _, footer = message.text.rstrip("\n").rpartition("\n\n")
    assert body.strip() and footer.strip(), f"a body and a footer, a blank line apart:\n{message.text}"
    for blank in ("None", "none", "{{", "}}", "{%", "  \n"):
        assert blank not in message.text, f"{blank!r} leaked into the {sample} message:\n{message.text}"
    assert message.html.startswith("<html><body><h3>") and message.html.endswith("</body></html>")
    assert f"<h3>{html.escape(message.subject)}</h3>" in message.html
    for line in message.text.splitlines():
        if line.strip():
            assert f"<p>{html.escape(line)}</p>" in message.html, f"the HTML part lacks the line {line!r}"


@pytest.mark.parametrize("sample", TO_RESPONDERS)
def test_every_message_to_a_responder_says_how_to_acknowledge(sample: str) -> None:
    note = SAMPLES[sample]
    message = render(note)

    assert ack_command(note.person) in message.text, f"{sample} does not say how to acknowledge:\n{message.text}"
    assert ack_command(note.person) in message.html
    assert f"escalate status {KEY}" in message.text


def test_resolved_to_an_owner_says_there_is_nothing_left_to_acknowledge() -> None:
    """The incident is closed: `escalate ack` would be refused, so the message does not ask for it."""
    message = rendered("resolved")

    assert "escalate ack" not in message.text
    assert "Nothing left to acknowledge" in message.text
    assert f"escalate status {KEY}" in message.text


@pytest.mark.parametrize("sample", TO_REPORTER)
def test_messages_to_the_reporter_carry_the_reference_and_do_not_ask_to_acknowledge(sample: str) -> None:
    note = SAMPLES[sample]
    assert note.person == REPORTER
    message = render(note)

    for part in (message.subject, message.text, message.html):
        assert "escalate ack" not in part
        assert "acknowledge" not in part.lower(), f"the reporter is asked to acknowledge:\n{part}"
        assert "--by reporter" not in part
        assert "escalate " not in part, "the reporter is not an operator: no CLI commands"
    assert KEY in message.subject
    assert f"Reference: {KEY}" in message.text and f"Reference: {KEY}" in message.html
    # internal words the reporter has no use for
    assert "policy payments" not in message.text and "tier 1 of 3" not in message.text


# ── 6. what each kind says ───────────────────────────────────────────────────────────────────


def test_page_says_which_tier_and_by_when() -> None:
    message = rendered("page")

    assert message.subject == f"[P1] payments: Card payments failing with HTTP 502 (incident {KEY})"
    assert "tier 1 of 3 (L1 support)" in message.text
    assert f"acknowledge by {ACK_BY_TEXT}" in message.text


def test_a_page_at_the_last_step_says_nobody_else_will_be_paged() -> None:
    last = {"next_step": "nowhere (every round is over)"}
    page = render(notification("page", "carol", tier=3, **last))
    reminder = render(notification("reminder", "carol", tier=3, **last))
    assert "nobody else will be paged" in page.text and "nowhere" not in page.text
    assert "nobody else will be paged" in reminder.text and "nowhere" not in reminder.text
    assert "escalates to" not in page.text + reminder.text


def test_a_page_again_after_an_expired_ack_says_why() -> None:
    page = render(notification("page", "erin", reason="alice's acknowledgement ran out"))
    assert "Paged again: alice's acknowledgement ran out." in page.text
    assert "Paged again" not in rendered("page").text


def test_reminder_is_gentle_and_says_when_it_escalates() -> None:
    message = rendered("reminder")
    text = message.text

    assert message.subject.startswith("Reminder: ")
    assert "gentle reminder" in text.lower()
    assert f"At {ACK_BY_TEXT} it escalates to" in text
    assert "unless it is acknowledged" in text
    assert "!" not in text and "!" not in message.subject
    for harsh in ("URGENT", "IMMEDIATELY", "ASAP", "FAILED", "WARNING", "must"):
        assert harsh not in text and harsh not in message.subject, f"{harsh!r} in a gentle reminder:\n{text}"


def test_escalated_says_who_was_tried_and_for_how_long() -> None:
    note = SAMPLES["escalated"].model_copy(update={"tier": 3, "tier_name": TIERS[3], "tried": [TRIED_TIER_1, TRIED_TIER_2]})
    message = render(note)

    assert message.subject.startswith("Escalated to you: ")
    assert "tier 3 of 3 (L3 head of payments)" in message.text
    assert f"without an acknowledgement: {TRIED_TIER_1}; {TRIED_TIER_2}." in message.text
    assert "(erin, frank) for 15m" in message.text and "(alice, bob) for 15m" in message.text
    assert "Why:" not in message.text, "an automatic escalation has no manual reason"
    assert "acknowledge by 2026-11-25 12:30:00 UTC" in message.text


def test_escalated_by_hand_gives_the_reason() -> None:
    note = SAMPLES["escalated"].model_copy(
        update={"reason": "bob escalated it by hand: needs a gateway config change", "tried": ["tier 1 L1 support (erin, frank) for 6m"]}
    )
    message = render(note)

    assert "Why: bob escalated it by hand: needs a gateway config change" in message.text
    assert "Why: bob escalated it by hand" in message.html
    assert "tier 1 L1 support (erin, frank) for 6m" in message.text


def test_exhausted_tells_the_manager_everyone_tried_and_that_it_stays_open() -> None:
    message = rendered("exhausted")

    assert message.subject.startswith("Nobody acknowledged: ")
    assert f"Tried: {TRIED_TIER_1}; {TRIED_TIER_2}; {TRIED_TIER_3}." in message.text
    assert "Nothing more will be paged" in message.text
    assert "stays open" in message.text


def test_sla_breach_asks_the_manager_why() -> None:
    message = rendered("sla_breach")

    assert message.subject.startswith("SLA breached: ")
    assert "not resolved within its resolution SLA" in message.text
    assert "acknowledged by alice" in message.text
    assert "why" in message.text.lower()
    assert f'escalate sla-reason {KEY} --by dana "SLA missed because' in message.text


def test_unreachable_tells_the_manager_nobody_has_seen_the_page() -> None:
    message = rendered("unreachable")

    assert message.subject.startswith("Nobody could be reached: ")
    assert "every channel of every owner failed" in message.text
    assert "tier 1 of 3 (L1 support)" in message.text


def test_resolved_to_an_owner_gives_the_outcome_and_who_resolved_it() -> None:
    message = rendered("resolved")

    assert message.subject == f"Resolved: Card payments failing with HTTP 502 (incident {KEY})"
    assert "was resolved by bob" in message.text
    assert "Outcome: rolled back gateway release 4.2.1; card payments succeed again" in message.text
    assert "nothing more to do" in message.text


def test_resolved_to_the_reporter_gives_the_outcome() -> None:
    message = rendered("resolved-to-reporter")

    assert "The problem you reported" in message.text and "has been resolved" in message.text
    assert "Outcome: rolled back gateway release 4.2.1; card payments succeed again" in message.text
    assert "Outcome: rolled back gateway release 4.2.1" in message.html


def test_customer_update_says_what_happens_next_and_by_when() -> None:
    message = rendered("customer_update")

    assert message.subject == f"Update on your report: Card payments failing with HTTP 502 (reference {KEY})"
    assert "We have received your report" in message.text and "L1 support is on it" in message.text
    assert "What happens next:" in message.text
    assert f"You can expect a response by {ACK_BY_TEXT}." in message.text


def test_customer_update_after_an_escalation_says_who_has_it_now() -> None:
    ack_by = datetime(2026, 11, 25, 12, 30, 7, 654321, tzinfo=UTC)  # a real deadline has seconds
    note = SAMPLES["customer_update"].model_copy(
        update={"tier": 2, "tier_name": TIERS[2], "tried": [TRIED_TIER_1], "ack_by": ack_by}
    )
    message = render(note)

    assert "has been escalated: it is now with L2 payments engineering" in message.text
    assert "You can expect a response by 2026-11-25 12:30:07 UTC." in message.text
    assert TRIED_TIER_1 not in message.text, "the reporter is not told who failed to answer"


def test_times_are_shown_in_utc_whatever_zone_they_come_in() -> None:
    """A deadline that is aware in another zone is converted, never just labelled "UTC"."""
    berlin = timezone(timedelta(hours=1))
    note = SAMPLES["customer_update"].model_copy(update={"ack_by": datetime(2026, 11, 25, 13, 15, tzinfo=berlin)})

    assert f"You can expect a response by {ACK_BY_TEXT}." in render(note).text


# ── 7. the HTML part is escaped ──────────────────────────────────────────────────────────────

HOSTILE = '<script>alert("pwned")</script> & <b>bold</b>'


ESCAPED = "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"


@pytest.mark.parametrize("sample", list(SAMPLES))
def test_html_part_is_escaped(sample: str) -> None:
    note = SAMPLES[sample].model_copy(
        update={
            "summary": f"Checkout broken {HOSTILE}",
            "resolution": f"fixed {HOSTILE}" if SAMPLES[sample].resolution else None,
            "reason": f"bob escalated it by hand: {HOSTILE}" if sample == "escalated" else SAMPLES[sample].reason,
        }
    )
    message = render(note)

    assert HOSTILE in message.subject, "the subject is a plain-text header: as written"
    assert "<script>" not in message.html and "<b>" not in message.html
    assert f"<h3>{html.escape(message.subject)}</h3>" in message.html
    assert ESCAPED in message.html
    assert message.html.count("<p>") == len([line for line in message.text.splitlines() if line.strip()])
    if HOSTILE in message.text:  # the kinds whose body repeats the summary, resolution or reason
        assert message.text.count(HOSTILE) == message.html.count(ESCAPED) - 1  # (-1: the <h3> subject)


def test_text_part_is_verbatim() -> None:
    hostile = {"summary": f"Checkout broken {HOSTILE}", "resolution": f"fixed {HOSTILE}"}
    update = render(SAMPLES["customer_update"].model_copy(update=hostile))
    outcome = render(SAMPLES["resolved"].model_copy(update=hostile))
    escalated = render(SAMPLES["escalated"].model_copy(update={"reason": f"bob escalated it by hand: {HOSTILE}"}))

    assert f'We have received your report "Checkout broken {HOSTILE}"' in update.text
    assert f"Outcome: fixed {HOSTILE}\n" in outcome.text
    assert f"Why: bob escalated it by hand: {HOSTILE}\n" in escalated.text
    for message in (update, outcome, escalated):
        assert "&lt;" not in message.text and "&amp;" not in message.text


# ── 8. an override folder ────────────────────────────────────────────────────────────────────

CUSTOM_PAGE = """\
{% block subject %}PAGE {{ n.priority }} {{ n.incident_key }}: {{ n.summary }}{% endblock %}
{% block body %}
Hi {{ n.person }}, the {{ n.policy }} pager needs you ({{ tier }}).
Deadline: {{ n.ack_by | when }}.
{% endblock %}
"""


def test_override_folder_changes_only_the_overridden_kind(tmp_path: Path) -> None:
    (tmp_path / "page.j2").write_text(CUSTOM_PAGE)
    templates = Templates(override_dir=tmp_path)

    page = templates.render(SAMPLES["page"])
    assert page.subject == f"PAGE P1 {KEY}: Card payments failing with HTTP 502"
    assert f"Hi erin, the payments pager needs you (tier 1 of 3 (L1 support)).\nDeadline: {ACK_BY_TEXT}." in page.text
    assert "You are paged" not in page.text
    assert ack_command("erin") in page.text, "an override without a footer block keeps the default footer"

    for sample in SAMPLES:
        if sample != "page":
            assert templates.render(SAMPLES[sample]) == rendered(sample), f"{sample} changed though only page.j2 was overridden"


def test_override_of_the_footer_applies_to_every_kind_without_its_own(tmp_path: Path) -> None:
    (tmp_path / "_footer.j2").write_text("Take it: {{ ack_command }} (or reply to the pager)\n")
    templates = Templates(override_dir=tmp_path)

    assert templates.render(SAMPLES["page"]).text.endswith(f"\n\nTake it: {ack_command('erin')} (or reply to the pager)\n")
    assert templates.render(SAMPLES["customer_update"]) == rendered("customer_update"), "has its own footer"


def test_a_broken_override_fails_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "page.j2"
    broken.write_text("{% block subject %}Page {{ n.summary {% endblock %}\n{% block body %}x{% endblock %}\n")
    templates = Templates(override_dir=tmp_path)

    with pytest.raises(jinja2.TemplateError) as caught:
        templates.render(SAMPLES["page"])

    assert str(broken) in str(caught.value), f"the error does not name the file: {caught.value}"
    assert "line 1" in str(caught.value)
    # the other kinds are not affected
    assert templates.render(SAMPLES["reminder"]) == rendered("reminder")


def test_an_override_without_the_required_blocks_fails_naming_the_file(tmp_path: Path) -> None:
    plain = tmp_path / "reminder.j2"
    plain.write_text("Reminder about {{ n.incident_key }}\n")  # no {% block subject %} / body
    templates = Templates(override_dir=tmp_path)

    with pytest.raises(jinja2.TemplateError) as caught:
        templates.render(SAMPLES["reminder"])

    assert str(plain) in str(caught.value) and "subject" in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    ("body", "unknown"),
    [("{{ n.sumary }}", "sumary"), ("{{ incident }}", "incident"), ("{{ n.summary | upper }} by {{ deadline | when }}", "deadline")],
)
def test_an_unknown_variable_fails_rather_than_rendering_blanks(tmp_path: Path, body: str, unknown: str) -> None:
    page = tmp_path / "page.j2"
    page.write_text("{% block subject %}Page{% endblock %}{% block body %}" + body + "{% endblock %}")
    templates = Templates(override_dir=tmp_path)

    with pytest.raises(jinja2.TemplateError) as caught:
        templates.render(SAMPLES["page"])

    assert unknown in str(caught.value)
    assert str(page) in str(caught.value), f"the error does not name the file: {caught.value}"


def test_an_unknown_variable_in_an_overridden_footer_names_the_footer(tmp_path: Path) -> None:
    footer = tmp_path / "_footer.j2"
    footer.write_text("Acknowledge: {{ ack }}\n")
    templates = Templates(override_dir=tmp_path)

    with pytest.raises(jinja2.TemplateError) as caught:
        templates.render(SAMPLES["page"])

    assert str(footer) in str(caught.value) and "'ack' is undefined" in str(caught.value), str(caught.value)
    assert templates.render(SAMPLES["customer_update"]) == rendered("customer_update"), "has its own footer"


# ── 9. through the worker's settings ─────────────────────────────────────────────────────────


def test_template_dir_setting_is_honoured_by_the_activities(tmp_path: Path) -> None:
    (tmp_path / "page.j2").write_text(CUSTOM_PAGE)

    activities = EscalationActivities(make_settings(policy_dir=TEST_POLICIES, template_dir=tmp_path))

    assert activities.templates.render(SAMPLES["page"]).subject.startswith(f"PAGE P1 {KEY}")
    assert activities.templates.render(SAMPLES["reminder"]) == rendered("reminder")


def test_escalate_template_dir_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "page.j2").write_text(CUSTOM_PAGE)
    monkeypatch.setenv("ESCALATE_TEMPLATE_DIR", str(tmp_path))

    settings = make_settings(policy_dir=TEST_POLICIES)
    assert settings.template_dir == tmp_path
    assert EscalationActivities(settings).templates.render(SAMPLES["page"]).subject.startswith(f"PAGE P1 {KEY}")


def test_without_template_dir_the_built_in_templates_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCALATE_TEMPLATE_DIR", raising=False)
    activities = EscalationActivities(make_settings(policy_dir=TEST_POLICIES))

    assert activities.templates.render(SAMPLES["page"]) == rendered("page")


def test_pages_say_where_it_goes_next() -> None:
    to_tier_3 = sample_notification("page")
    assert "if nobody does, it escalates to tier 3 (L3 head of payments)." in render(to_tier_3).text
    last = to_tier_3.model_copy(update={"next_step": "the manager"})
    assert "it escalates to the manager" in render(last).text
    assert "it escalates to the manager, unless" in render(last.model_copy(update={"kind": "reminder"})).text
