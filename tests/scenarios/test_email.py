"""The real email channel against a real SMTP server (aiosmtpd on 127.0.0.1), nothing mocked.

First the channel on its own (what a message looks like, auth, permanent and transient failures),
then whole incidents on the time-skipping Temporal server with the worker sending real email.
The SMTP server is ``tests.support.mailbox`` (the ``smtp`` fixture: tests/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.channels import message_id
from activities.messages import render
from starter.api import Escalations
from tests.support.incidents import finish as finish_incident
from tests.support.incidents import wait_for_status
from tests.support.mailbox import PASSWORD, SENDER, USER, Mailbox, SmtpServer, check_password, email_channel, parts, smtp_server
from tests.support.net import LOOPBACK, free_port
from tests.support.notifications import email_note
from tests.support.paths import TEST_POLICIES
from tests.support.temporal import make_settings, unique_key
from tests.support.timeline import events
from worker import create_worker
from workflows.model import MessageKind

KINDS: tuple[MessageKind, ...] = ("page", "reminder", "escalated", "exhausted", "sla_breach")

# AUTH without TLS is what these loopback tests mean to exercise (aiosmtpd warns about it).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def auth_smtp() -> Iterator[SmtpServer]:
    """Requires AUTH before MAIL; plain-text auth allowed since this is loopback without TLS."""
    with smtp_server(Mailbox(), authenticator=check_password, auth_required=True, auth_require_tls=False) as server:
        yield server


async def finish(time_env: WorkflowEnvironment, escalations: Escalations, key: str, name: str) -> None:
    """Resolve the incident, wait for the run to close and keep its history for the replay test."""
    await finish_incident(time_env, escalations, key, f"email_{name}", by="erin", resolution="freed disk space on db-1")


# ── the channel on its own ───────────────────────────────────────────────────────────────────


async def test_email_reaches_the_smtp_server_with_both_parts_and_a_stable_message_id(smtp: SmtpServer) -> None:
    notification = email_note("page")
    rendered = render(notification)
    channel = email_channel(smtp.url)

    delivery = await channel.send(notification, rendered)
    again = await channel.send(notification, rendered)  # an activity retry: same idempotency key

    assert delivery.channel == "email"
    assert delivery.outcome == "delivered"
    assert again.outcome == "delivered"
    first, second = smtp.mailbox.received
    assert first.rcpt_tos == ["erin@example.com"]
    assert first.mail_from == SENDER
    message = first.message
    assert message["From"] == SENDER
    assert message["To"] == "erin@example.com"
    assert message["Subject"] == rendered.subject
    assert "db-disk-full-1" in message["Subject"] and "[P1]" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "You are paged for incident db-disk-full-1" in text
    assert "<html>" in html and "You are paged for incident db-disk-full-1" in html
    assert message["X-Escalate-Incident"] == "db-disk-full-1"
    assert message["X-Escalate-Idempotency-Key"] == notification.idempotency_key
    assert message["Date"]

    expected_id = message_id(notification.idempotency_key)
    assert message["Message-ID"] == expected_id
    assert second.message["Message-ID"] == expected_id, "a retry must carry the same Message-ID"
    assert expected_id == message_id("db-disk-full-1/1/erin/email")
    assert expected_id != message_id("db-disk-full-1/1/frank/email")


@pytest.mark.parametrize("kind", KINDS)
async def test_every_message_says_how_to_acknowledge(smtp: SmtpServer, kind: MessageKind) -> None:
    notification = email_note(kind, key="api-5xx-7", person="carol", reason="the policy is exhausted")
    await email_channel(smtp.url).send(notification, render(notification))

    [received] = smtp.mailbox.to("carol@example.com")
    text, html = parts(received.message)
    assert "escalate ack api-5xx-7" in text, f"{kind} email does not say how to acknowledge:\n{text}"
    assert "escalate ack api-5xx-7" in html, f"{kind} email (HTML) does not say how to acknowledge:\n{html}"
    assert received.message["Message-ID"] == message_id(notification.idempotency_key)


async def test_smtp_auth_from_the_url(auth_smtp: SmtpServer) -> None:
    url = f"smtp://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@{LOOPBACK}:{auth_smtp.port}"
    notification = email_note("page")

    delivery = await email_channel(url).send(notification, render(notification))

    assert delivery.outcome == "delivered"
    [received] = auth_smtp.mailbox.received
    assert received.authenticated is True
    assert received.login == USER.encode()
    assert received.rcpt_tos == ["erin@example.com"]


async def test_wrong_smtp_password_is_a_permanent_failure(auth_smtp: SmtpServer) -> None:
    url = f"smtp://{USER}:wrong@{LOOPBACK}:{auth_smtp.port}"
    notification = email_note("page")

    with pytest.raises(ApplicationError) as caught:
        await email_channel(url).send(notification, render(notification))

    assert caught.value.type == "PermanentDeliveryFailure"
    assert caught.value.non_retryable
    assert "535" in caught.value.message
    assert auth_smtp.mailbox.received == []


async def test_smtp_server_requiring_auth_refuses_a_url_without_credentials(auth_smtp: SmtpServer) -> None:
    notification = email_note("page")

    with pytest.raises(ApplicationError) as caught:
        await email_channel(auth_smtp.url).send(notification, render(notification))

    assert caught.value.type == "PermanentDeliveryFailure"
    assert caught.value.non_retryable
    assert auth_smtp.mailbox.received == []


async def test_refused_recipient_is_a_permanent_failure() -> None:
    with smtp_server(Mailbox(refuse=("erin@example.com",))) as server:
        notification = email_note("page")
        with pytest.raises(ApplicationError) as caught:
            await email_channel(server.url).send(notification, render(notification))

    assert caught.value.type == "PermanentDeliveryFailure"
    assert caught.value.non_retryable
    assert "550" in caught.value.message
    assert "erin@example.com" in caught.value.message
    assert server.mailbox.received == []


async def test_smtp_server_down_is_a_retryable_failure() -> None:
    port = free_port()  # nothing listens here
    notification = email_note("page")

    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        await email_channel(f"smtp://{LOOPBACK}:{port}", timeout=5).send(notification, render(notification))

    assert time.monotonic() - started < 5, "a refused connection must fail at once, not wait for the timeout"
    error = caught.value
    assert not (isinstance(error, ApplicationError) and error.non_retryable), (
        f"a connection refused is transient and must be retried, got {error!r}"
    )
    assert str(port) in str(error), f"the error should say which server was unreachable: {error}"


# ── whole incidents on the time-skipping server ──────────────────────────────────────────────


async def test_incident_pages_tier_1_by_real_email(time_env: WorkflowEnvironment, smtp: SmtpServer) -> None:
    settings = make_settings(policy_dir=TEST_POLICIES, smtp_url=smtp.url, smtp_from=SENDER)
    key = unique_key("email-page")
    async with create_worker(time_env.client, settings):
        escalations = Escalations(time_env.client, settings.task_queue)
        opened = await escalations.start_incident(
            policy="fast", key=key, priority="P1", summary="Disk full on db-1", reporter="monitor@example.com"
        )
        assert opened.created
        assert opened.status.owners == ["erin", "frank"]
        trigger = opened.status.triggered_at
        assert trigger is not None

        status = await wait_for_status(
            escalations,
            key,
            lambda s: {e.who for e in s.timeline if e.kind in ("notified", "notify_failed")} >= {"erin", "frank"},
        )
        await finish(time_env, escalations, key, "tier_1_paged")

    assert status.tier == 1, "the pages arrive well inside the 4s window"
    assert events(status, "notify_failed") == []
    notified = {event.who: event for event in events(status, "notified")}

    # erin: a real page email, recorded as delivered by email (then the resolution, below)
    erin_page, erin_resolved = smtp.mailbox.to("erin@example.com")
    erin_mail = erin_page
    assert erin_mail.mail_from == SENDER
    assert erin_mail.message["From"] == SENDER
    assert erin_mail.message["Subject"] == f"[P1] fast: Disk full on db-1 (incident {key})"
    assert erin_mail.message["Message-ID"] == message_id(f"{key}/1/erin/email")
    text, html = parts(erin_mail.message)
    assert f"escalate ack {key} --by erin" in text and f"escalate ack {key} --by erin" in html
    assert "tier 1 of 3 (L1 first line)" in text
    assert f"Please acknowledge by {(trigger + timedelta(seconds=4)):%Y-%m-%d %H:%M:%S} UTC" in text
    erin = notified["erin"]
    assert (erin.channel, erin.tier) == ("email", 1)
    assert erin.detail.startswith("page via email to erin@example.com: delivered")
    assert trigger <= erin.at < trigger + timedelta(seconds=4)

    # frank is on tier 1 too (team first-line) and has an email address: he must get the page
    # email as well, recorded as delivered by email.
    frank = notified["frank"]
    frank_mail = smtp.mailbox.to("frank@example.com")
    assert (frank.channel, len(frank_mail)) == ("email", 2), (
        f"frank was not paged by email: his timeline event is {frank.channel!r} {frank.detail!r}"
    )
    assert frank_mail[0].message["Message-ID"] == message_id(f"{key}/2/frank/email")
    assert f"escalate ack {key} --by frank" in parts(frank_mail[0].message)[0]
    assert "delivered" in frank.detail

    # the feedback loop: everyone paged hears the outcome, and so does the reporter, who was
    # also told at the start what happens next and by when to expect a response
    for mail in (erin_resolved, frank_mail[1]):
        assert mail.message["Subject"].strip() == f"Resolved: Disk full on db-1 (incident {key})"
        assert "Outcome: freed disk space on db-1" in parts(mail.message)[0]
    update, outcome = smtp.mailbox.to("monitor@example.com")
    assert update.message["Subject"].strip() == f"Update on your report: Disk full on db-1 (reference {key})"
    update_text = parts(update.message)[0]
    assert "L1 first line is on it" in update_text
    assert f"expect a response by {(trigger + timedelta(seconds=4)):%Y-%m-%d %H:%M:%S} UTC" in update_text
    assert "escalate ack" not in update_text, "the reporter is not asked to acknowledge"
    assert "Outcome: freed disk space on db-1" in parts(outcome.message)[0]


async def test_smtp_down_never_delays_the_escalation(time_env: WorkflowEnvironment) -> None:
    down = free_port()  # nothing listens: every email attempt is refused
    settings = make_settings(policy_dir=TEST_POLICIES, smtp_url=f"smtp://{LOOPBACK}:{down}", smtp_from=SENDER)
    key = unique_key("email-down")
    async with create_worker(time_env.client, settings):
        escalations = Escalations(time_env.client, settings.task_queue)
        opened = await escalations.start_incident(policy="fast", key=key, priority="P1", summary="Disk full on db-1")
        trigger = opened.status.triggered_at
        assert trigger is not None

        await time_env.sleep(timedelta(seconds=5))
        at_5s = await escalations.status(key)

        # past every retry of every notification (5 attempts: 1+2+4+8s of backoff), before the SLA
        await time_env.sleep(timedelta(seconds=40))
        at_45s = await escalations.status(key)
        await finish(time_env, escalations, key, "smtp_down")

    # tier 2 on the dot, while tier 1's emails are still being retried
    [to_tier_2] = events(at_5s, "escalated")
    assert to_tier_2.tier == 2
    assert to_tier_2.due_at == trigger + timedelta(seconds=4)
    assert timedelta(0) <= to_tier_2.at - to_tier_2.due_at < timedelta(seconds=1), (
        f"escalated {to_tier_2.at - to_tier_2.due_at} late"
    )
    assert (at_5s.tier, at_5s.owners) == (2, ["alice", "bob"])
    erin_so_far = [e for e in events(at_5s, "notify_failed") if e.who == "erin"]
    assert erin_so_far and all("retrying in" in e.detail for e in erin_so_far), "erin's page is still being retried at 5s"

    # and the later steps keep to the policy's clock too
    to_tier_2_again, to_tier_3 = events(at_45s, "escalated")
    assert to_tier_2_again == to_tier_2
    assert to_tier_3.due_at == trigger + timedelta(seconds=8)
    assert to_tier_3.at - to_tier_3.due_at < timedelta(seconds=1)
    [exhausted] = events(at_45s, "exhausted")
    assert exhausted.due_at == trigger + timedelta(seconds=12)
    assert exhausted.at - exhausted.due_at < timedelta(seconds=1)

    # every email that could not go out is in the timeline, naming the error
    failed = events(at_45s, "notify_failed")
    assert failed, "no notify_failed events"
    for event in failed:
        assert event.channel == "email"
        assert f"via email to {event.who}@example.com, attempt " in event.detail
        reason = event.detail.split(": ", 1)[1]
        assert str(down) in reason or "refused" in reason.lower() or "connect" in reason.lower(), (
            f"the failure does not name the error: {event.detail!r}"
        )
    failed_pages = {(e.who, e.tier) for e in failed if e.detail.startswith("page ")}
    assert ("erin", 1) in failed_pages
    erin_attempts = [e for e in failed if (e.who, e.tier) == ("erin", 1) and e.detail.startswith("page ")]
    assert [e.detail.split(", attempt ")[1].split(":")[0] for e in erin_attempts] == ["1", "2", "3", "4", "5"]
    assert "giving up on this channel" in erin_attempts[-1].detail
    assert erin_attempts[-1].at > to_tier_2.at, "the page to tier 1 was still retrying when tier 2 was paged"
    failed_escalations = {(e.who, e.tier) for e in failed if e.detail.startswith("escalated ")}
    assert {("bob", 2), ("carol", 3)} <= failed_escalations
    assert ("dana", 3) in {(e.who, e.tier) for e in failed if e.detail.startswith("exhausted ")}, (
        "the manager's notice failed too and must say so"
    )

    # alice's email failed for good and her other channel (chat) is not configured on this
    # worker: she was not reached, and the timeline says so rather than claiming a delivery
    alice_email = [e for e in failed if (e.who, e.tier) == ("alice", 2) and e.detail.startswith("escalated ")]
    assert "giving up on this channel" in alice_email[-1].detail
    assert events(at_45s, "notified") == [], "nothing was delivered while SMTP was down"
