"""Microsoft Teams and ntfy push against real HTTP receivers on 127.0.0.1, nothing mocked.

What each service accepts, checked against its documentation:
- Teams incoming webhooks (and the Workflows "when a Teams webhook request is received"
  trigger) take ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <AdaptiveCard>}]}``;
  of a card's actions only ``Action.OpenUrl``/``ShowCard``/``ToggleVisibility`` work there. The
  old Office 365 connector webhooks answer 200 even when Teams refused the message, with
  "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429
  …" in the body: that is no delivery.
- ntfy publishes a POST to ``<server>/<topic>``: the body is the message; ``Title``,
  ``Priority`` (1-5), ``Tags`` and ``Actions`` (the simple format ``view, <label>, <url>,
  clear=true``) are headers, RFC 2047 encoded when not ASCII; an access token goes as
  ``Authorization: Bearer tk_…``.

First each channel on its own, then one incident on the time-skipping server whose pages go
through both: delivered, refused for good (the next channel is tried), retried after a 503 and a
timeout, every attempt in the timeline.
"""

from __future__ import annotations

import email.header
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.channels import PushChannel, TeamsChannel
from activities.messages import RenderedMessage, Templates
from escalate.links import link_url, make_token, read_token
from tests.support.delivery import attempt_numbers, finish, open_incident, write_policy_dir
from tests.support.incidents import wait_for_status
from tests.support.net import LOOPBACK, free_port
from tests.support.notifications import webhook_note
from tests.support.receiver import Received, Receiver, Reply
from tests.support.temporal import make_settings, running
from tests.support.timeline import events
from workflows.model import Notification

pytestmark = pytest.mark.asyncio(loop_scope="session")

API_URL = "http://127.0.0.1:8000"
LINK_SECRET = "link-secret-for-push-tests"
NTFY_TOKEN = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2"
CARD = "application/vnd.microsoft.card.adaptive"
TEAMS_THROTTLED = (
    "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 "
    "with ContextId tcid=0,server=msgapi-production-eus-azsc7-2-35,cv=a1b2c3.0.."
)
TEAMS_BAD_CARD = TEAMS_THROTTLED.replace("HTTP error 429", "HTTP error 400")
NTFY_OK = {"id": "sPs6fyEXiPfT", "time": 1764072000, "event": "message", "topic": "escalate-olga"}


def ack_link(key: str, person: str) -> str:
    return link_url(API_URL, make_token(LINK_SECRET, key, "ack", person, timedelta(hours=24)))


def rendered(notification: Notification, *, link: str = "") -> RenderedMessage:
    return Templates().render(notification, ack_link=link)


def teams_note(address: str, **changes: Any) -> Notification:
    return webhook_note(address, channel="teams", **changes)


def push_note(address: str, **changes: Any) -> Notification:
    return webhook_note(address, channel="push", **changes)


def card_of(request: Received) -> dict[str, Any]:
    """The Adaptive Card of a Teams message, once the envelope is checked."""
    body = request.json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == CARD
    assert "contentUrl" in attachment and attachment["contentUrl"] is None
    card: dict[str, Any] = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert tuple(int(part) for part in card["version"].split(".")) <= (1, 5), "Teams renders cards up to 1.5"
    for action in card["actions"]:
        assert action["type"] == "Action.OpenUrl", "the only kind of button a webhook card may carry here"
    return card


def texts(card: dict[str, Any]) -> list[str]:
    assert all(block["type"] == "TextBlock" and block["wrap"] is True for block in card["body"])
    return [block["text"] for block in card["body"]]


def buttons(card: dict[str, Any]) -> dict[str, str]:
    return {action["title"]: action["url"] for action in card["actions"]}


def ntfy_actions(header: str) -> list[list[str]]:
    """The Actions header as ntfy's simple-format parser splits it: actions by ``;``, their
    parts by ``,`` (so neither may appear inside a value)."""
    return [[part.strip() for part in action.split(",")] for action in header.split(";") if action.strip()]


def decoded(header: str) -> str:
    """A header value as ntfy reads it (RFC 2047 encoded words decoded)."""
    return str(email.header.make_header(email.header.decode_header(header)))


# ── Teams on its own ─────────────────────────────────────────────────────────────────────────


async def test_teams_message_is_an_adaptive_card_with_the_page_and_an_acknowledge_button(receiver: Receiver) -> None:
    url = receiver.route("/teams/webhookb2/olga", Reply(200, "1"))
    notification = teams_note(url)
    link = ack_link("checkout-latency-1", "olga")
    message = rendered(notification, link=link)

    delivery = await TeamsChannel(timeout=5, api_url=API_URL).send(notification, message)

    assert (delivery.channel, delivery.outcome, delivery.detail) == ("teams", "delivered", "HTTP 200")
    [request] = receiver.requests("/teams/webhookb2/olga")
    assert request.method == "POST"
    assert request.headers.get_content_type() == "application/json"
    card = card_of(request)
    title, body, how = texts(card)
    assert title == "[P1] hooks: Checkout latency over 2s (incident checkout-latency-1)"
    assert card["body"][0]["weight"] == "Bolder"
    assert body == message.body
    assert "as tier 1 of 2 (On-call) of policy hooks" in body
    assert "Please acknowledge by 2026-11-25 12:10:00 UTC" in body
    assert how == "To acknowledge: escalate ack checkout-latency-1 --by olga"
    assert buttons(card) == {
        "Acknowledge": link,
        "Open the incident": f"{API_URL}/v1/incidents/checkout-latency-1/review?format=html",
    }
    # the button is the signed one-click link for this person and incident
    token = link.rsplit("/", 1)[1]
    signed = read_token(LINK_SECRET, token)
    assert (signed.key, signed.action, signed.by) == ("checkout-latency-1", "ack", "olga")


async def test_teams_card_without_links_still_says_how_to_acknowledge(receiver: Receiver) -> None:
    url = receiver.route("/teams/webhookb2/olga", Reply(202, ""))  # the Workflows trigger: 202, no body
    notification = teams_note(url, tier=2, tier_name="Backup", kind="escalated", reason="nobody acknowledged")

    delivery = await TeamsChannel(timeout=5, api_url=API_URL + "/").send(notification, rendered(notification))

    assert (delivery.outcome, delivery.detail) == ("delivered", "HTTP 202")
    card = card_of(receiver.requests("/teams/webhookb2/olga")[0])
    assert buttons(card) == {"Open the incident": f"{API_URL}/v1/incidents/checkout-latency-1/review?format=html"}
    assert texts(card)[-1] == "To acknowledge: escalate ack checkout-latency-1 --by olga"
    assert "tier 2 of 2 (Backup)" in texts(card)[1]


@pytest.mark.parametrize(
    ("reply", "permanent", "says"),
    [
        (Reply(200, TEAMS_THROTTLED), False, "HTTP error 429"),
        (Reply(200, "Webhook message delivery failed with error: Error contacting Microsoft Teams endpoint"), False, "Error contacting"),
        (Reply(200, TEAMS_THROTTLED.replace("HTTP error 429", "HTTP error 502")), False, "HTTP error 502"),
        (Reply(200, TEAMS_BAD_CARD), True, "HTTP error 400"),
        (Reply(200, TEAMS_THROTTLED.replace("HTTP error 429", "HTTP error 413")), True, "HTTP error 413"),
    ],
    ids=["throttled", "unreachable", "teams-502", "bad-card", "too-large"],
)
async def test_teams_refusal_inside_a_200_is_not_a_delivery(
    receiver: Receiver, reply: Reply, permanent: bool, says: str
) -> None:
    url = receiver.route("/teams/webhookb2/olga", reply)
    notification = teams_note(url)

    with pytest.raises(ApplicationError) as caught:
        await TeamsChannel(timeout=5, api_url=API_URL).send(notification, rendered(notification))

    error = caught.value
    assert error.message.startswith("the Teams webhook answered HTTP 200 but did not deliver: Webhook message delivery failed")
    assert says in error.message
    expected = ("PermanentDeliveryFailure", True) if permanent else ("DeliveryFailed", False)
    assert (error.type, error.non_retryable) == expected


# ── ntfy on its own ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("priority", "ntfy_priority", "tag"),
    [("P1", "5", "rotating_light"), ("P2", "4", "rotating_light"), ("P3", "3", "warning"), ("P4", "2", "warning"), ("P5", "1", "warning")],
)
async def test_ntfy_publish_carries_title_priority_tags_and_the_acknowledge_action(
    receiver: Receiver, priority: str, ntfy_priority: str, tag: str
) -> None:
    url = receiver.route("/escalate-olga", Reply(200, NTFY_OK))
    notification = push_note(url, priority=priority)
    link = ack_link("checkout-latency-1", "olga")
    message = rendered(notification, link=link)

    delivery = await PushChannel(timeout=5, api_url=API_URL, token=NTFY_TOKEN).send(notification, message)

    assert (delivery.channel, delivery.outcome, delivery.detail) == ("push", "delivered", "HTTP 200")
    [request] = receiver.requests("/escalate-olga")
    assert (request.method, request.path) == ("POST", "/escalate-olga"), "POST <server>/<topic>"
    assert request.body.decode() == message.body, "the message is the body, without the text footer"
    assert "You are paged for incident checkout-latency-1" in request.body.decode()
    assert request.headers["Title"] == f"[{priority}] hooks: Checkout latency over 2s (incident checkout-latency-1)"
    assert request.headers["Priority"] == ntfy_priority
    assert request.headers["Tags"] == tag
    assert ntfy_actions(request.headers["Actions"]) == [["view", "Acknowledge", link, "clear=true"]]
    assert request.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
    assert request.headers["X-Escalate-Idempotency-Key"] == notification.idempotency_key


async def test_ntfy_without_a_token_sends_no_authorization_and_without_links_opens_the_incident(receiver: Receiver) -> None:
    url = receiver.route("/escalate-olga", Reply(200, NTFY_OK))
    notification = push_note(url, summary="Café payments: 3× timeouts")

    await PushChannel(timeout=5, api_url=API_URL, token=None).send(notification, rendered(notification))

    [request] = receiver.requests("/escalate-olga")
    assert request.headers["Authorization"] is None
    assert ntfy_actions(request.headers["Actions"]) == [
        ["view", "Open the incident", f"{API_URL}/v1/incidents/checkout-latency-1", "clear=true"]
    ]
    title = request.headers["Title"]
    assert title.isascii(), "HTTP headers are ASCII: ntfy decodes RFC 2047 encoded words"
    assert title.startswith("=?UTF-8?B?")
    assert decoded(title) == "[P1] hooks: Café payments: 3× timeouts (incident checkout-latency-1)"


async def test_ntfy_the_outcome_of_a_p1_wakes_nobody_but_a_manager_notice_does(receiver: Receiver) -> None:
    url = receiver.route("/escalate-olga", Reply(200, NTFY_OK))
    for kind in ("resolved", "exhausted"):
        notification = push_note(url, kind=kind, priority="P1")
        await PushChannel(timeout=5, api_url=API_URL, token=None).send(notification, rendered(notification))
    resolved, exhausted = receiver.requests("/escalate-olga")
    assert (resolved.headers["Priority"], resolved.headers["Tags"]) == ("2", "information_source")
    assert (exhausted.headers["Priority"], exhausted.headers["Tags"]) == ("5", "rotating_light")


# ── failures, the same for both ──────────────────────────────────────────────────────────────

CHANNELS: dict[str, tuple[Callable[[str], Notification], Callable[[float], TeamsChannel | PushChannel], str]] = {
    "teams": (lambda url: teams_note(url), lambda timeout: TeamsChannel(timeout=timeout, api_url=API_URL), "the Teams webhook"),
    "push": (
        lambda url: push_note(url), lambda timeout: PushChannel(timeout=timeout, api_url=API_URL, token=NTFY_TOKEN), "the push server"
    ),
}


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (Reply(503, "overloaded"), False, None),
        (Reply(500, "boom"), False, None),
        (Reply(429, "slow down", {"Retry-After": "9"}), False, 9.0),
        (Reply(400, "invalid request"), True, None),
        (Reply(403, '{"code":40301,"http":403,"error":"forbidden"}'), True, None),
        (Reply(404, "no such webhook"), True, None),
        (Reply(301, "", {"Location": "http://127.0.0.1:9/moved"}), True, None),
    ],
    ids=lambda value: str(value.status) if isinstance(value, Reply) else None,
)
async def test_http_failures_are_retried_or_final_by_status(
    receiver: Receiver, channel: str, reply: Reply, permanent: bool, retry_after: float | None
) -> None:
    make_note, make_channel, what = CHANNELS[channel]
    url = receiver.route("/target", reply)
    notification = make_note(url)

    with pytest.raises(ApplicationError) as caught:
        await make_channel(5).send(notification, rendered(notification))

    error = caught.value
    assert error.message.startswith(f"{what} answered HTTP {reply.status}")
    expected = ("PermanentDeliveryFailure", True) if permanent else ("DeliveryFailed", False)
    assert (error.type, error.non_retryable) == expected
    assert list(error.details) == ([retry_after] if retry_after is not None else [])
    assert len(receiver.requests("/target")) == 1, "one attempt per activity: the workflow retries"


@pytest.mark.parametrize("channel", sorted(CHANNELS))
async def test_no_answer_in_time_or_nobody_listening_is_retried(receiver: Receiver, channel: str) -> None:
    make_note, make_channel, _ = CHANNELS[channel]
    silent = receiver.route("/silent", Reply(200, delay=10))
    notification = make_note(silent)
    started = time.monotonic()
    with pytest.raises(ApplicationError) as slow:
        await make_channel(0.5).send(notification, rendered(notification))
    assert time.monotonic() - started < 3
    assert (slow.value.type, slow.value.non_retryable, slow.value.message) == (
        "DeliveryFailed", False, f"no answer from {silent} within 0.5s"
    )

    closed = f"http://{LOOPBACK}:{free_port()}/topic"
    notification = make_note(closed)
    with pytest.raises(ApplicationError) as refused:
        await make_channel(5).send(notification, rendered(notification))
    assert (refused.value.type, refused.value.non_retryable) == ("DeliveryFailed", False)
    assert refused.value.message.startswith(f"cannot reach {closed}")


# ── one incident through both channels ───────────────────────────────────────────────────────


async def test_an_incident_pages_by_teams_and_push_retrying_and_falling_over(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path
) -> None:
    """Tier 1 is olga, pete and rita. Olga's push topic refuses the token for good (403: no
    retry, her next channel), her Teams webhook fails five times (503, no answer, throttled
    inside a 200, 503, 503: given up) and her webhook takes it; pete's Teams takes the page at once; rita's push answers 503, then
    200. Every attempt is a timeline event."""
    olga_push = receiver.route("/ntfy/olga", Reply(403, '{"code":40301,"http":403,"error":"forbidden"}'))
    olga_teams = receiver.route(
        "/teams/olga", Reply(503, "busy"), Reply(200, "1", delay=5), Reply(200, TEAMS_THROTTLED), Reply(503, "busy")
    )
    olga_hook = receiver.route("/hooks/olga")
    pete_teams = receiver.route("/teams/pete", Reply(200, "1"))
    rita_push = receiver.route("/ntfy/rita", Reply(503, "storage full"), Reply(200, NTFY_OK))
    people = {
        "olga": {"push": olga_push, "teams": olga_teams, "webhook": olga_hook},
        "pete": {"teams": pete_teams},
        "rita": {"push": rita_push},
        "mia": {"webhook": receiver.url("/hooks/mia")},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["olga", "pete", "rita"]])
    settings = make_settings(
        policy_dir=folder,
        webhook_timeout_seconds=1,
        ntfy_token=NTFY_TOKEN,
        link_secret=LINK_SECRET,
        api_url=API_URL,
    )
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "push-teams")
        await wait_for_status(escalations, key, lambda s: len(events(s, "notify_failed", who="olga")) >= 3, within=8)
        await time_env.sleep(timedelta(seconds=20))  # past olga's Teams backoffs (1+2+4+8s)
        status = await wait_for_status(
            escalations, key, lambda s: all(events(s, "notified", who=who) for who in ("olga", "pete", "rita")), within=8
        )
        await finish(time_env, escalations, key, "push_teams_retry_and_fall_over")

    # pete: Teams took the page at once
    [pete] = events(status, "notified", who="pete")
    assert (pete.channel, pete.detail) == ("teams", f"page via teams to {pete_teams}: delivered (HTTP 200)")
    assert pete.at - trigger < timedelta(seconds=2)
    assert events(status, "notify_failed", who="pete") == []
    [pete_page, *_] = receiver.requests("/teams/pete")
    card = card_of(pete_page)
    assert texts(card)[0] == f"[P1] hooks: Checkout latency over 2s (incident {key})"
    acknowledge = buttons(card)["Acknowledge"]
    signed = read_token(LINK_SECRET, acknowledge.rsplit("/", 1)[1])
    assert (signed.key, signed.action, signed.by) == (key, "ack", "pete")
    assert acknowledge.startswith(f"{API_URL}/v1/links/")

    # rita: 503, retried a second later under the same idempotency key, then delivered
    [rita_failed] = events(status, "notify_failed", who="rita")
    assert rita_failed.detail == (
        f"page via push to {rita_push}, attempt 1: the push server answered HTTP 503: storage full; retrying in 1s"
    )
    [rita] = events(status, "notified", who="rita")
    assert (rita.channel, rita.detail) == ("push", f"page via push to {rita_push}: delivered (HTTP 200)")
    assert rita.at - rita_failed.at >= timedelta(seconds=1)
    rita_pages = receiver.requests("/ntfy/rita")[:2]
    assert len(rita_pages) == 2
    for request in rita_pages:
        assert request.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
        assert request.headers["Priority"] == "5" and request.headers["Tags"] == "rotating_light"
        assert request.headers["Title"] == f"[P1] hooks: Checkout latency over 2s (incident {key})"
        [[kind, label, url, clear]] = ntfy_actions(request.headers["Actions"])
        assert (kind, label, clear) == ("view", "Acknowledge", "clear=true")
        assert read_token(LINK_SECRET, url.rsplit("/", 1)[1]).by == "rita"
    assert rita_pages[0].headers["X-Escalate-Idempotency-Key"] == rita_pages[1].headers["X-Escalate-Idempotency-Key"]

    # olga: push refused for good (one attempt), Teams given up after five, the webhook took it
    olga_failed = events(status, "notify_failed", who="olga")
    assert [event.channel for event in olga_failed] == ["push", "teams", "teams", "teams", "teams", "teams"]
    push_refused, *teams_failed = olga_failed
    assert push_refused.detail == (
        f'page via push to {olga_push}, attempt 1: the push server answered HTTP 403: '
        '{"code":40301,"http":403,"error":"forbidden"}; giving up on this channel'
    )
    assert attempt_numbers(teams_failed) == ["1", "2", "3", "4", "5"]
    assert "the Teams webhook answered HTTP 503: busy; retrying in 1s" in teams_failed[0].detail
    assert teams_failed[1].detail.endswith(f"attempt 2: no answer from {olga_teams} within 1s; retrying in 2s")
    assert "attempt 3: the Teams webhook answered HTTP 200 but did not deliver: Webhook message delivery failed" in teams_failed[2].detail
    assert teams_failed[2].detail.endswith("; retrying in 4s"), "a throttled Teams is tried again"
    assert teams_failed[-1].detail.endswith("the Teams webhook answered HTTP 503: busy; giving up on this channel")
    for earlier, later, backoff in zip(teams_failed[:-1], teams_failed[1:], (1, 2, 4, 8), strict=True):
        assert later.at - earlier.at >= timedelta(seconds=backoff)
    [olga] = events(status, "notified", who="olga")
    assert (olga.channel, olga.detail) == ("webhook", f"page via webhook to {olga_hook}: delivered (HTTP 200)")
    assert olga.at >= teams_failed[-1].at
    olga_push_page = receiver.requests("/ntfy/olga")[0]
    assert olga_push_page.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
    page_attempts = [r for r in receiver.requests("/teams/olga") if "You are paged" in texts(card_of(r))[1]]
    assert len(page_attempts) == 5, "each attempt in the timeline is one request, no more"

    assert events(status, "unreachable") == [], "everyone was reached on some channel"
    assert receiver.requests("/hooks/mia") == []
    assert (status.status, status.tier) == ("triggered", 1)
