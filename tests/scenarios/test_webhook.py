"""The real webhook channel against real HTTP receivers on 127.0.0.1, nothing mocked.

A receiver here is a stdlib ``ThreadingHTTPServer`` in a thread that answers each path from a
script (503, 503, 200…; a Retry-After; no answer at all) and keeps every request it got, raw
body and headers included. First the channel on its own (signature, payload, failure types),
then whole incidents on the time-skipping Temporal server with the worker posting real webhooks:
retries with one idempotency key, Retry-After, timeouts, fallover to the next channel, and the
manager told when nobody of a tier can be reached.

The receiver is ``tests.support.receiver``; the ``hooks`` policy and its incidents are
``tests.support.delivery``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from email.utils import formatdate
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.channels import WebhookChannel
from activities.messages import render
from tests.support.delivery import attempt_numbers, finish, open_incident, write_policy_dir
from tests.support.incidents import wait_for_status
from tests.support.mailbox import SENDER, Mailbox, smtp_server
from tests.support.net import LOOPBACK, free_port
from tests.support.notifications import webhook_note
from tests.support.receiver import SECRET, TOLERANCE_SECONDS, Receiver, Reply, verify_escalate_signature
from tests.support.temporal import make_settings, running
from tests.support.timeline import events

pytestmark = pytest.mark.asyncio(loop_scope="session")


# ── the channel on its own ───────────────────────────────────────────────────────────────────


async def test_a_receiver_verifies_the_signature_as_the_readme_says(receiver: Receiver) -> None:
    url = receiver.route("/hooks/olga", Reply(200))
    notification = webhook_note(url)
    rendered = render(notification)

    delivery = await WebhookChannel(SECRET, timeout=5).send(notification, rendered)

    assert (delivery.channel, delivery.outcome, delivery.detail) == ("webhook", "delivered", "HTTP 200")
    [request] = receiver.requests("/hooks/olga")
    assert request.method == "POST"
    assert request.headers.get_content_type() == "application/json"
    header = request.headers["Escalate-Signature"]
    assert header is not None, "a webhook must be signed when ESCALATE_WEBHOOK_SECRET is set"
    assert verify_escalate_signature(SECRET, header, request.body)

    # what the signature protects against
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(time.time() - timestamp) < 60, "t= is the unix time of sending"
    tampered = request.body.replace(b"Checkout latency over 2s", b"Checkout latency over 9s")
    assert tampered != request.body
    assert not verify_escalate_signature(SECRET, header, tampered)
    assert not verify_escalate_signature("whsec_someone_else", header, request.body)
    assert not verify_escalate_signature(SECRET, header.replace(f"t={timestamp}", f"t={timestamp + 1}"), request.body)
    assert not verify_escalate_signature(SECRET, header, request.body, now=timestamp + TOLERANCE_SECONDS + 1)
    assert not verify_escalate_signature(SECRET, header, request.body, now=timestamp - TOLERANCE_SECONDS - 1)
    assert verify_escalate_signature(SECRET, header, request.body, now=timestamp + TOLERANCE_SECONDS)
    assert not verify_escalate_signature(SECRET, "v1=" + header.split("v1=")[1], request.body)
    assert not verify_escalate_signature(SECRET, "", request.body)

    # the body a receiver acts on
    body = request.json()
    assert body["type"] == "escalate.notification"
    assert body["kind"] == "page"
    assert body["idempotency_key"] == notification.idempotency_key
    assert request.headers["Idempotency-Key"] == body["idempotency_key"]
    assert body["person"] == "olga"
    assert body["subject"] == rendered.subject
    assert body["text"] == rendered.text
    assert body["acknowledge"] == "escalate ack checkout-latency-1 --by olga"
    assert body["incident"] == {
        "key": "checkout-latency-1",
        "policy": "hooks",
        "priority": "P1",
        "summary": "Checkout latency over 2s",
        "tier": 1,
        "tier_name": "On-call",
        "ack_by": "2026-11-25T12:10:00+00:00",
    }
    sent_at = datetime.fromisoformat(body["sent_at"])
    assert sent_at.tzinfo is not None
    assert abs(sent_at.timestamp() - time.time()) < 60


async def test_without_a_secret_the_webhook_goes_unsigned(receiver: Receiver) -> None:
    url = receiver.route("/hooks/olga")
    notification = webhook_note(url)

    await WebhookChannel(None, timeout=5).send(notification, render(notification))

    [request] = receiver.requests("/hooks/olga")
    assert request.headers["Escalate-Signature"] is None
    assert request.headers["Idempotency-Key"] == notification.idempotency_key


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (Reply(503, "overloaded"), False, None),
        (Reply(500, "boom"), False, None),
        (Reply(408), False, None),
        (Reply(429, "slow down", {"Retry-After": "7"}), False, 7.0),
        (Reply(503, "maintenance", {"Retry-After": "30"}), False, 30.0),
        (Reply(404, "no such hook"), True, None),
        (Reply(410, "gone"), True, None),
        (Reply(401, "bad signature"), True, None),
        (Reply(302, "", {"Location": "http://127.0.0.1:9/elsewhere"}), True, None),
    ],
    ids=lambda value: str(value.status) if isinstance(value, Reply) else None,
)
async def test_failures_are_transient_or_permanent_by_status(
    receiver: Receiver, reply: Reply, permanent: bool, retry_after: float | None
) -> None:
    url = receiver.route("/hooks/olga", reply)
    notification = webhook_note(url)

    with pytest.raises(ApplicationError) as caught:
        await WebhookChannel(SECRET, timeout=5).send(notification, render(notification))

    error = caught.value
    assert f"HTTP {reply.status}" in error.message
    if permanent:
        assert (error.type, error.non_retryable) == ("PermanentDeliveryFailure", True)
    else:
        assert (error.type, error.non_retryable) == ("DeliveryFailed", False)
    assert list(error.details) == ([retry_after] if retry_after is not None else [])
    assert len(receiver.requests("/hooks/olga")) == 1, "the channel makes one attempt; the workflow retries"


async def test_retry_after_as_an_http_date(receiver: Receiver) -> None:
    url = receiver.route("/hooks/olga", Reply(503, "maintenance", {"Retry-After": formatdate(time.time() + 120, usegmt=True)}))
    notification = webhook_note(url)

    with pytest.raises(ApplicationError) as caught:
        await WebhookChannel(SECRET, timeout=5).send(notification, render(notification))

    assert caught.value.type == "DeliveryFailed"
    [asked] = caught.value.details
    assert 110 <= asked <= 121


async def test_a_receiver_that_never_answers_times_out_as_a_transient_failure(receiver: Receiver) -> None:
    url = receiver.route("/hooks/olga", Reply(200, delay=10))
    notification = webhook_note(url)

    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        await WebhookChannel(SECRET, timeout=0.5).send(notification, render(notification))

    assert time.monotonic() - started < 3
    assert (caught.value.type, caught.value.non_retryable) == ("DeliveryFailed", False)
    assert caught.value.message == f"no answer from {url} within 0.5s"


async def test_nobody_listening_is_a_transient_failure() -> None:
    url = f"http://{LOOPBACK}:{free_port()}/hooks/olga"
    notification = webhook_note(url)

    with pytest.raises(ApplicationError) as caught:
        await WebhookChannel(SECRET, timeout=5).send(notification, render(notification))

    assert (caught.value.type, caught.value.non_retryable) == ("DeliveryFailed", False)
    assert caught.value.message.startswith(f"cannot reach {url}")


# ── whole incidents on the time-skipping server ──────────────────────────────────────────────


async def test_incident_pages_by_a_signed_webhook(time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path) -> None:
    olga = receiver.route("/hooks/olga")
    mia = receiver.route("/hooks/mia")
    folder = write_policy_dir(tmp_path, {"olga": {"webhook": olga}, "mia": {"webhook": mia}}, tiers=[["olga"]])
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "webhook-page")
        status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="olga")))
        await finish(time_env, escalations, key, "webhook_signed_page")

    [notified] = events(status, "notified", who="olga")
    assert (notified.channel, notified.tier) == ("webhook", 1)
    assert notified.detail == f"page via webhook to {olga}: delivered (HTTP 200)"
    assert events(status, "notify_failed") == []

    [page] = receiver.requests("/hooks/olga", kind="page")
    assert verify_escalate_signature(SECRET, page.headers["Escalate-Signature"], page.body)
    body = page.json()
    assert body["idempotency_key"] == f"{key}/1/olga/webhook"
    assert page.headers["Idempotency-Key"] == body["idempotency_key"]
    assert body["incident"]["key"] == key
    assert body["incident"]["tier"] == 1
    assert body["incident"]["tier_name"] == "On-call"
    assert body["incident"]["ack_by"] == (trigger + timedelta(minutes=10)).isoformat()
    assert body["acknowledge"] == f"escalate ack {key} --by olga"
    assert f"escalate ack {key} --by olga" in body["text"]

    # the outcome reaches her the same way, signed, under its own idempotency key
    [resolved] = receiver.requests("/hooks/olga", kind="resolved")
    assert verify_escalate_signature(SECRET, resolved.headers["Escalate-Signature"], resolved.body)
    assert resolved.headers["Idempotency-Key"] != page.headers["Idempotency-Key"]
    assert receiver.requests("/hooks/mia") == [], "nothing went wrong: the manager is not bothered"


async def test_503_twice_then_200_is_delivered_once_under_one_idempotency_key(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    olga = receiver.route("/hooks/olga", Reply(503, "overloaded"), Reply(503, "overloaded"), Reply(200))
    folder = write_policy_dir(tmp_path, {"olga": {"webhook": olga}, "mia": {"webhook": receiver.url("/hooks/mia")}}, tiers=[["olga"]])
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "webhook-503")
        await wait_for_status(escalations, key, lambda s: bool(events(s, "notify_failed", who="olga")))
        await time_env.sleep(timedelta(seconds=5))  # past both backoffs (1s, 2s)
        status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="olga")), within=5)
        await finish(time_env, escalations, key, "webhook_503_twice_then_200")

    first, second = events(status, "notify_failed", who="olga")
    [delivered] = events(status, "notified", who="olga")
    assert first.detail == f"page via webhook to {olga}, attempt 1: the webhook answered HTTP 503: overloaded; retrying in 1s"
    assert second.detail == f"page via webhook to {olga}, attempt 2: the webhook answered HTTP 503: overloaded; retrying in 2s"
    assert delivered.detail == f"page via webhook to {olga}: delivered (HTTP 200)"
    assert first.at < second.at < delivered.at
    assert second.at - first.at >= timedelta(seconds=1)
    assert delivered.at - second.at >= timedelta(seconds=2)
    assert status.tier == 1 and status.status == "triggered"

    pages = receiver.requests("/hooks/olga", kind="page")
    assert len(pages) == 3, "delivered once: no request after the 200"
    assert {page.headers["Idempotency-Key"] for page in pages} == {f"{key}/1/olga/webhook"}
    assert {page.json()["idempotency_key"] for page in pages} == {f"{key}/1/olga/webhook"}
    for page in pages:
        assert verify_escalate_signature(SECRET, page.headers["Escalate-Signature"], page.body), "every attempt is signed afresh"


async def test_404_stops_at_once_and_falls_over_to_email(time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path) -> None:
    olga = receiver.route("/hooks/olga", Reply(404, "no such hook"))
    people = {
        "olga": {"webhook": olga, "email": "olga@example.com"},
        "mia": {"webhook": receiver.url("/hooks/mia")},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["olga"]])
    with smtp_server(Mailbox()) as smtp:
        settings = make_settings(policy_dir=folder, webhook_secret=SECRET, smtp_url=smtp.url, smtp_from=SENDER)
        async with running(time_env, settings) as escalations:
            key, trigger = await open_incident(escalations, "webhook-404")
            status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="olga")))
            await time_env.sleep(timedelta(seconds=30))  # longer than every backoff: no retry comes
            later = await escalations.status(key)
            await finish(time_env, escalations, key, "webhook_404_falls_over_to_email")

    [failed] = events(later, "notify_failed", who="olga")
    assert failed.channel == "webhook"
    assert failed.detail == (
        f"page via webhook to {olga}, attempt 1: the webhook answered HTTP 404: no such hook; giving up on this channel"
    )
    [notified] = events(status, "notified", who="olga")
    assert notified.channel == "email"
    assert notified.detail.startswith("page via email to olga@example.com: delivered")
    assert notified.at >= failed.at
    assert events(later, "notified", who="olga") == [notified]
    assert len(receiver.requests("/hooks/olga", kind="page")) == 1, "a 404 is never retried"

    page_mail = smtp.mailbox.to("olga@example.com")[0]
    assert page_mail.message["X-Escalate-Idempotency-Key"] == f"{key}/1/olga/email"
    plain = page_mail.message.get_body(preferencelist=("plain",))
    assert plain is not None and f"escalate ack {key} --by olga" in plain.get_content()
    assert events(later, "unreachable") == [], "olga was reached by email"


@pytest.mark.parametrize("status_code", [429, 503])
async def test_retry_after_is_honoured(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, status_code: int
) -> None:
    olga = receiver.route("/hooks/olga", Reply(status_code, "slow down", {"Retry-After": "7"}), Reply(200))
    folder = write_policy_dir(tmp_path, {"olga": {"webhook": olga}, "mia": {"webhook": receiver.url("/hooks/mia")}}, tiers=[["olga"]])
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, f"webhook-{status_code}")
        first = await wait_for_status(escalations, key, lambda s: bool(events(s, "notify_failed", who="olga")))
        await time_env.sleep(timedelta(seconds=5))  # the plain backoff (1s) is long over, 7s is not
        at_5s = await escalations.status(key)
        requests_at_5s = len(receiver.requests("/hooks/olga", kind="page"))
        await time_env.sleep(timedelta(seconds=4))
        status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="olga")))
        await finish(time_env, escalations, key, f"webhook_retry_after_{status_code}")

    [failed] = events(first, "notify_failed", who="olga")
    assert failed.detail == (
        f"page via webhook to {olga}, attempt 1: the webhook answered HTTP {status_code}: slow down; retrying in 7s"
    )
    assert requests_at_5s == 1, "the receiver asked for 7s: no attempt before that"
    assert events(at_5s, "notified") == []
    [notified] = events(status, "notified", who="olga")
    assert notified.at - failed.at >= timedelta(seconds=7), "retried sooner than the receiver asked"
    pages = receiver.requests("/hooks/olga", kind="page")
    assert len(pages) == 2
    assert pages[0].headers["Idempotency-Key"] == pages[1].headers["Idempotency-Key"] == f"{key}/1/olga/webhook"


async def test_a_receiver_that_never_answers_is_retried_as_a_timeout(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    olga = receiver.route("/hooks/olga", Reply(200, delay=30), Reply(200))
    folder = write_policy_dir(tmp_path, {"olga": {"webhook": olga}, "mia": {"webhook": receiver.url("/hooks/mia")}}, tiers=[["olga"]])
    monkeypatch.setenv("ESCALATE_WEBHOOK_TIMEOUT_SECONDS", "1")
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    assert settings.webhook_timeout_seconds == 1
    async with running(time_env, settings) as escalations:
        started = time.monotonic()
        key, trigger = await open_incident(escalations, "webhook-timeout")
        first = await wait_for_status(escalations, key, lambda s: bool(events(s, "notify_failed", who="olga")), within=5)
        gave_up_after = time.monotonic() - started
        await time_env.sleep(timedelta(seconds=2))  # the 1s backoff
        status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="olga")), within=5)
        await finish(time_env, escalations, key, "webhook_timeout_retried")

    [failed] = events(first, "notify_failed", who="olga")
    assert failed.detail == f"page via webhook to {olga}, attempt 1: no answer from {olga} within 1s; retrying in 1s"
    assert gave_up_after < 4, f"the timeout is 1s, but the first attempt took {gave_up_after:.1f}s to fail"
    [notified] = events(status, "notified", who="olga")
    assert notified.detail == f"page via webhook to {olga}: delivered (HTTP 200)"
    pages = receiver.requests("/hooks/olga", kind="page")
    assert len(pages) == 2
    assert pages[0].headers["Idempotency-Key"] == pages[1].headers["Idempotency-Key"]


async def test_manager_is_told_when_nobody_of_a_tier_can_be_reached(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    gone = receiver.route("/hooks/gone", Reply(404, "no such hook"))
    gone_chat = receiver.route("/slack/gone", Reply(404, "no_service"))
    broken = receiver.route("/hooks/broken", Reply(500, "internal error"))
    mia = receiver.route("/hooks/mia")
    people = {
        "olga": {"webhook": gone, "chat": gone_chat},
        "pete": {"webhook": broken},
        "mia": {"webhook": mia},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["team:on-call"]], teams={"on-call": ["olga", "pete"]})
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "webhook-unreachable")
        await time_env.sleep(timedelta(seconds=20))  # pete's 5 attempts: 1+2+4+8s of backoff
        status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="mia")))
        await finish(time_env, escalations, key, "webhook_tier_unreachable")

    # olga: both channels answered "never", one attempt each, in the directory's order
    olga_failed = events(status, "notify_failed", who="olga")
    assert [(e.channel, e.detail.endswith("giving up on this channel")) for e in olga_failed] == [
        ("webhook", True),
        ("chat", True),
    ]
    assert "Slack (their webhook) answered HTTP 404: no_service" in olga_failed[1].detail
    # pete: five attempts on his one channel, then given up
    pete_failed = events(status, "notify_failed", who="pete")
    assert attempt_numbers(pete_failed) == ["1", "2", "3", "4", "5"]
    assert all("the webhook answered HTTP 500: internal error" in e.detail for e in pete_failed)
    assert "giving up on this channel" in pete_failed[-1].detail
    assert len(receiver.requests("/hooks/broken", kind="page")) == 5
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests("/hooks/broken", kind="page")}) == 1

    [unreachable] = events(status, "unreachable")
    assert (unreachable.tier, unreachable.who) == (1, "mia")
    assert "nobody of tier 1 (On-call) could be reached on any channel" in unreachable.detail
    assert "olga" in unreachable.detail and "pete" in unreachable.detail
    assert "manager mia told" in unreachable.detail
    assert unreachable.at >= pete_failed[-1].at
    assert events(status, "notified", who="olga") == events(status, "notified", who="pete") == []

    [told] = events(status, "notified", who="mia")
    assert told.channel == "webhook"
    assert told.detail == f"unreachable via webhook to {mia}: delivered (HTTP 200)"
    [notice] = receiver.requests("/hooks/mia", kind="unreachable")
    assert verify_escalate_signature(SECRET, notice.headers["Escalate-Signature"], notice.body)
    body = notice.json()
    assert body["person"] == "mia"
    assert body["incident"]["key"] == key
    assert body["subject"].startswith("Nobody could be reached:")
    assert "every channel of every owner failed" in body["text"]
    assert status.status == "triggered" and status.tier == 1, "the escalation itself carries on as planned"


async def test_one_owner_reached_is_enough_no_manager_notice(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    people = {
        "olga": {"webhook": receiver.route("/hooks/gone", Reply(404, "no such hook"))},
        "pete": {"webhook": receiver.route("/hooks/pete")},
        "mia": {"webhook": receiver.route("/hooks/mia")},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["olga", "pete"]])
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "webhook-one-reached")
        status = await wait_for_status(
            escalations, key, lambda s: bool(events(s, "notified", who="pete") and events(s, "notify_failed", who="olga"))
        )
        await time_env.sleep(timedelta(seconds=20))
        later = await escalations.status(key)
        await finish(time_env, escalations, key, "webhook_one_owner_reached")

    assert events(status, "notified", who="pete")
    assert events(later, "unreachable") == []
    assert receiver.requests("/hooks/mia") == []


async def test_smtp_down_for_the_whole_window_escalates_on_time_and_tells_the_manager_by_webhook(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    down = free_port()  # nothing listens: every email is refused
    mia = receiver.route("/hooks/mia")
    people = {
        "olga": {"email": "olga@example.com"},
        "pete": {"email": "pete@example.com"},
        "mia": {"email": "mia@example.com", "webhook": mia},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["olga"], ["pete"]], ack_within="20s")
    settings = make_settings(
        policy_dir=folder, webhook_secret=SECRET, smtp_url=f"smtp://{LOOPBACK}:{down}", smtp_from=SENDER
    )
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "webhook-smtp-down")
        await time_env.sleep(timedelta(seconds=21))
        at_21s = await escalations.status(key)
        await time_env.sleep(timedelta(seconds=45))  # past the top tier and every retry
        status = await wait_for_status(escalations, key, lambda s: len(events(s, "notified", who="mia")) >= 3)
        await finish(time_env, escalations, key, "webhook_smtp_down_manager_told")

    # tier 2 on the dot, although tier 1's emails were still failing
    [to_tier_2] = events(at_21s, "escalated")
    assert to_tier_2.tier == 2
    assert to_tier_2.due_at == trigger + timedelta(seconds=20)
    assert timedelta(0) <= to_tier_2.at - to_tier_2.due_at < timedelta(seconds=1), f"late by {to_tier_2.at - to_tier_2.due_at}"
    assert (at_21s.tier, at_21s.owners) == (2, ["pete"])
    [exhausted] = events(status, "exhausted")
    assert exhausted.due_at == trigger + timedelta(seconds=40)
    assert timedelta(0) <= exhausted.at - exhausted.due_at < timedelta(seconds=1)

    # nobody of either tier could be reached; the manager heard of each, and of the exhaustion
    assert [(e.tier, e.who) for e in events(status, "unreachable")] == [(1, "mia"), (2, "mia")]
    olga_failed = events(status, "notify_failed", who="olga")
    assert attempt_numbers(olga_failed) == ["1", "2", "3", "4", "5"]
    assert all(e.channel == "email" for e in olga_failed)
    told = events(status, "notified", who="mia")
    assert sorted(e.detail.split(" via ")[0] for e in told) == ["exhausted", "unreachable", "unreachable"]
    assert all(e.channel == "webhook" and e.detail.endswith(": delivered (HTTP 200)") for e in told)
    # the manager's own email failed first (five attempts each), then her webhook worked
    mia_email = [e for e in events(status, "notify_failed", who="mia") if e.channel == "email"]
    assert len(mia_email) == 15
    assert sorted(r.kind or "" for r in receiver.requests("/hooks/mia") if r.kind != "resolved") == [
        "exhausted",
        "unreachable",
        "unreachable",
    ]
    for request in receiver.requests("/hooks/mia"):
        assert verify_escalate_signature(SECRET, request.headers["Escalate-Signature"], request.body)
