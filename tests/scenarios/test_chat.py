"""The real Slack chat channel (slack_sdk) against real HTTP servers on 127.0.0.1, nothing mocked.

Three ways a chat address is reached: a person's own incoming-webhook URL; a handle through the
Web API's ``chat.postMessage`` with a bot token (``ESCALATE_SLACK_TOKEN``, the API's address from
``ESCALATE_SLACK_API_URL``, here a local fake of it); a handle mentioned in the channel of a
shared incoming webhook (``ESCALATE_SLACK_WEBHOOK_URL``). Without any of those a handle is
skipped as not configured and the person's next channel is used.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.channels import SlackChannel
from activities.messages import render
from tests.support.delivery import finish, open_incident, write_policy_dir
from tests.support.incidents import wait_for_status
from tests.support.net import LOOPBACK, free_port
from tests.support.notifications import webhook_note
from tests.support.receiver import SECRET, Received, Receiver, Reply
from tests.support.temporal import make_settings, running
from tests.support.timeline import events
from workflows.model import Notification

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "xoxb-1111-2222-test-token"
POST_MESSAGE = "/api/chat.postMessage"
SLACK_VARIABLES = ("ESCALATE_SLACK_TOKEN", "ESCALATE_SLACK_WEBHOOK_URL", "ESCALATE_SLACK_API_URL")


def posted(channel: str = "C0PAGING", ts: str = "1764072000.000100") -> Reply:
    """What chat.postMessage answers on success."""
    return Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": {"type": "message", "ts": ts}})


def slack_error(error: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"ok": False, "error": error}, headers or {})


def slack_api(request: Received) -> Reply:
    """A fake of the Web API's chat.postMessage: @ghost is no channel the bot can post to."""
    if request.headers["Authorization"] != f"Bearer {TOKEN}":
        return slack_error("invalid_auth")
    if request.json().get("channel") == "@ghost":
        return slack_error("channel_not_found")
    return posted()


def chat_note(address: str, **changes: Any) -> Notification:
    return webhook_note(address, channel="chat", **changes)


def pages(requests: list[Received]) -> list[Received]:
    """The page messages among a Slack endpoint's requests (not the resolution that follows)."""
    return [request for request in requests if "[P1] hooks:" in request.json()["text"]]


@pytest.fixture
def no_slack_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Only what the test sets: no Slack settings from the environment of the run."""
    for name in SLACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


# ── the channel on its own ───────────────────────────────────────────────────────────────────


async def test_a_chat_url_gets_an_incoming_webhook_post(receiver: Receiver) -> None:
    url = receiver.route("/slack/T000/B000/olga")
    notification = chat_note(url)
    rendered = render(notification)

    delivery = await SlackChannel(None, None, receiver.url("/api/"), timeout=5).send(notification, rendered)

    assert (delivery.channel, delivery.outcome, delivery.detail) == ("chat", "delivered", "Slack webhook (their webhook)")
    [request] = receiver.requests("/slack/T000/B000/olga")
    assert request.method == "POST"
    assert request.headers.get_content_type() == "application/json"
    body = request.json()
    assert body["text"] == rendered.subject, "the text is what notifications and screen readers show"
    section, context = body["blocks"]
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].startswith(f"*{rendered.subject}*\n")
    assert "You are paged for incident checkout-latency-1" in section["text"]["text"]
    assert context["type"] == "context"
    assert "escalate ack checkout-latency-1 --by olga" in context["elements"][0]["text"]
    assert receiver.requests(POST_MESSAGE) == []


async def test_a_chat_url_wins_over_the_token_and_the_token_over_the_shared_webhook(receiver: Receiver) -> None:
    own = receiver.route("/slack/own")
    shared = receiver.route("/slack/shared")
    receiver.route(POST_MESSAGE, slack_api)
    channel = SlackChannel(TOKEN, shared, receiver.url("/api/"), timeout=5)

    by_url = chat_note(own)
    by_handle = chat_note("@olga")
    first = await channel.send(by_url, render(by_url))
    second = await channel.send(by_handle, render(by_handle))

    assert first.detail == "Slack webhook (their webhook)"
    assert second.detail == "Slack message to @olga"
    assert len(receiver.requests("/slack/own")) == 1
    assert len(receiver.requests(POST_MESSAGE)) == 1
    assert receiver.requests("/slack/shared") == []


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (Reply(404, "no_service"), True, None),
        (Reply(403, "invalid_token"), True, None),
        (Reply(410, "channel_is_archived"), True, None),
        (Reply(500, "rollup_error"), False, None),
        (Reply(429, "rate limited", {"Retry-After": "4"}), False, 4.0),
        (Reply(503, "maintenance", {"Retry-After": "9"}), False, 9.0),
        (Reply(503, "maintenance", {"retry-after": "9"}), False, 9.0),
    ],
    ids=["404", "403", "410", "500", "429-retry-after", "503-retry-after", "503-lowercase-retry-after"],
)
async def test_incoming_webhook_failures(receiver: Receiver, reply: Reply, permanent: bool, retry_after: float | None) -> None:
    url = receiver.route("/slack/olga", reply)
    notification = chat_note(url)

    with pytest.raises(ApplicationError) as caught:
        await SlackChannel(None, None, receiver.url("/api/"), timeout=5).send(notification, render(notification))

    error = caught.value
    assert f"answered HTTP {reply.status}" in error.message
    expected = ("PermanentDeliveryFailure", True) if permanent else ("DeliveryFailed", False)
    assert (error.type, error.non_retryable) == expected
    assert list(error.details) == ([retry_after] if retry_after is not None else []), (
        f"Retry-After {reply.headers} not passed on"
    )


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (slack_error("channel_not_found"), True, None),
        (slack_error("not_in_channel"), True, None),
        (slack_error("invalid_auth"), True, None),
        (slack_error("ratelimited", 429, {"Retry-After": "3"}), False, 3.0),
        (slack_error("ratelimited"), False, None),
        (slack_error("internal_error"), False, None),
        (Reply(500, "upstream error"), False, None),
        (slack_error("service_unavailable", 503, {"Retry-After": "6"}), False, 6.0),
        (slack_error("service_unavailable", 503, {"retry-after": "6"}), False, 6.0),
    ],
    ids=["channel_not_found", "not_in_channel", "invalid_auth", "429-ratelimited", "200-ratelimited",
         "internal_error", "500", "503-retry-after", "503-lowercase-retry-after"],
)
async def test_post_message_failures(receiver: Receiver, reply: Reply, permanent: bool, retry_after: float | None) -> None:
    receiver.route(POST_MESSAGE, reply)
    notification = chat_note("@olga")

    with pytest.raises(ApplicationError) as caught:
        await SlackChannel(TOKEN, None, receiver.url("/api/"), timeout=5).send(notification, render(notification))

    error = caught.value
    assert error.message.startswith("Slack chat.postMessage to @olga failed: ")
    expected = ("PermanentDeliveryFailure", True) if permanent else ("DeliveryFailed", False)
    assert (error.type, error.non_retryable) == expected
    assert list(error.details) == ([retry_after] if retry_after is not None else [])
    assert len(receiver.requests(POST_MESSAGE)) == 1


@pytest.mark.parametrize("how", ["their webhook", "web api"])
async def test_slack_that_never_answers_is_a_transient_failure(receiver: Receiver, how: str) -> None:
    url = receiver.route("/slack/olga", Reply(200, delay=10))
    receiver.route(POST_MESSAGE, Reply(200, delay=10))
    notification = chat_note(url if how == "their webhook" else "@olga")

    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        await SlackChannel(TOKEN, None, receiver.url("/api/"), timeout=1).send(notification, render(notification))

    assert time.monotonic() - started < 4, "the timeout is 1s"
    assert (caught.value.type, caught.value.non_retryable) == ("DeliveryFailed", False)


async def test_slack_with_nobody_listening_is_a_transient_failure() -> None:
    url = f"http://{LOOPBACK}:{free_port()}/slack/olga"
    notification = chat_note(url)

    with pytest.raises(ApplicationError) as caught:
        await SlackChannel(None, None, url, timeout=5).send(notification, render(notification))

    assert (caught.value.type, caught.value.non_retryable) == ("DeliveryFailed", False)
    assert caught.value.message.startswith("cannot reach Slack (their webhook)")


async def test_no_slack_settings_means_not_configured_for_a_handle(receiver: Receiver) -> None:
    notification = chat_note("@olga")

    delivery = await SlackChannel(None, None, receiver.url("/api/"), timeout=5).send(notification, render(notification))

    assert (delivery.channel, delivery.outcome) == ("chat", "not_configured")
    assert "ESCALATE_SLACK_TOKEN" in delivery.detail and "ESCALATE_SLACK_WEBHOOK_URL" in delivery.detail
    assert receiver.requests() == []


# ── whole incidents on the time-skipping server ──────────────────────────────────────────────


async def test_incident_pages_a_persons_own_slack_webhook(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, no_slack_env: pytest.MonkeyPatch
) -> None:
    url = receiver.route("/slack/T000/B000/olga")
    folder = write_policy_dir(tmp_path, {"olga": {"chat": url}, "mia": {"webhook": receiver.url("/hooks/mia")}}, tiers=[["olga"]])
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "chat-url")
        status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="olga")))
        await finish(time_env, escalations, key, "chat_own_webhook_url")

    [notified] = events(status, "notified", who="olga")
    assert notified.channel == "chat"
    assert notified.detail == f"page via chat to {url}: delivered (Slack webhook (their webhook))"
    assert events(status, "notify_failed") == []
    [page] = pages(receiver.requests("/slack/T000/B000/olga"))
    body = page.json()
    assert body["text"] == f"[P1] hooks: Checkout latency over 2s (incident {key})"
    assert f"escalate ack {key} --by olga" in body["blocks"][1]["elements"][0]["text"]


async def test_incident_posts_to_handles_through_the_web_api(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, no_slack_env: pytest.MonkeyPatch
) -> None:
    receiver.route(POST_MESSAGE, slack_api)
    olga_hook = receiver.route("/hooks/olga")
    ghost_hook = receiver.route("/hooks/ghost")
    people = {
        "olga": {"chat": "@olga", "webhook": olga_hook},
        "ghost": {"chat": "@ghost", "webhook": ghost_hook},
        "mia": {"webhook": receiver.url("/hooks/mia")},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["olga", "ghost"]])
    no_slack_env.setenv("ESCALATE_SLACK_TOKEN", TOKEN)
    no_slack_env.setenv("ESCALATE_SLACK_API_URL", receiver.url("/api/"))
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "chat-api")
        status = await wait_for_status(
            escalations, key, lambda s: bool(events(s, "notified", who="olga") and events(s, "notified", who="ghost"))
        )
        await time_env.sleep(timedelta(seconds=20))  # no retry of a permanent failure comes
        later = await escalations.status(key)
        await finish(time_env, escalations, key, "chat_web_api")

    # olga: chat.postMessage to her handle, with the bot token
    [olga] = events(status, "notified", who="olga")
    assert olga.channel == "chat"
    assert olga.detail == "page via chat to @olga: delivered (Slack message to @olga)"
    calls = pages(receiver.requests(POST_MESSAGE))
    [to_olga] = [call for call in calls if call.json()["channel"] == "@olga"]
    assert to_olga.headers["Authorization"] == f"Bearer {TOKEN}"
    assert to_olga.headers.get_content_type() == "application/json"
    body = to_olga.json()
    assert body["text"] == f"[P1] hooks: Checkout latency over 2s (incident {key})"
    assert body["blocks"][0]["text"]["text"].startswith(f"*{body['text']}*")
    assert f"escalate ack {key} --by olga" in body["blocks"][1]["elements"][0]["text"]
    assert receiver.requests("/hooks/olga", kind="page") == [], "reached by chat: her webhook is not used"

    # ghost: channel_not_found is for good; one call, then his webhook
    [ghost_call] = [call for call in calls if call.json()["channel"] == "@ghost"]
    assert ghost_call.headers["Authorization"] == f"Bearer {TOKEN}"
    [failed] = events(later, "notify_failed", who="ghost")
    assert failed.channel == "chat"
    assert failed.detail == (
        "page via chat to @ghost, attempt 1: Slack chat.postMessage to @ghost failed: channel_not_found; "
        "giving up on this channel"
    )
    [ghost] = events(status, "notified", who="ghost")
    assert ghost.channel == "webhook"
    assert ghost.detail == f"page via webhook to {ghost_hook}: delivered (HTTP 200)"
    assert len(receiver.requests("/hooks/ghost", kind="page")) == 1
    assert events(later, "notified", who="ghost") == [ghost]
    assert events(later, "unreachable") == []


@pytest.mark.parametrize(
    ("limited", "asked"),
    [
        (slack_error("ratelimited", 429, {"Retry-After": "3"}), 3),
        (slack_error("ratelimited"), 1),
    ],
    ids=["429-retry-after", "ok-false-ratelimited"],
)
async def test_rate_limited_post_message_is_retried(
    time_env: WorkflowEnvironment,
    receiver: Receiver,
    tmp_path: Path,
    no_slack_env: pytest.MonkeyPatch,
    limited: Reply,
    asked: int,
) -> None:
    receiver.route(POST_MESSAGE, limited, posted())
    folder = write_policy_dir(tmp_path, {"olga": {"chat": "@olga"}, "mia": {"webhook": receiver.url("/hooks/mia")}}, tiers=[["olga"]])
    no_slack_env.setenv("ESCALATE_SLACK_TOKEN", TOKEN)
    no_slack_env.setenv("ESCALATE_SLACK_API_URL", receiver.url("/api/"))
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "chat-ratelimited")
        await wait_for_status(escalations, key, lambda s: bool(events(s, "notify_failed", who="olga")))
        await time_env.sleep(timedelta(seconds=asked + 1))
        status = await wait_for_status(escalations, key, lambda s: bool(events(s, "notified", who="olga")), within=5)
        await finish(time_env, escalations, key, f"chat_rate_limited_{'retry_after' if asked > 1 else 'ok_false'}")

    [failed] = events(status, "notify_failed", who="olga")
    assert failed.detail == (
        f"page via chat to @olga, attempt 1: Slack chat.postMessage to @olga failed: ratelimited; retrying in {asked}s"
    )
    [notified] = events(status, "notified", who="olga")
    assert notified.detail == "page via chat to @olga: delivered (Slack message to @olga)"
    assert notified.at - failed.at >= timedelta(seconds=asked)
    assert [call.json()["channel"] for call in pages(receiver.requests(POST_MESSAGE))] == ["@olga", "@olga"]


async def test_with_only_a_shared_webhook_handles_are_mentioned_in_its_channel(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, no_slack_env: pytest.MonkeyPatch
) -> None:
    shared = receiver.route("/slack/T000/B000/paging")
    people = {
        "olga": {"chat": "@olga"},
        "uma": {"chat": "U024BE7LH"},  # a Slack user id: mentioned as <@U024BE7LH>
        "mia": {"webhook": receiver.url("/hooks/mia")},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["olga", "uma"]])
    no_slack_env.setenv("ESCALATE_SLACK_WEBHOOK_URL", shared)
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    assert settings.slack_token is None and settings.slack_webhook_url == shared
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "chat-shared")
        status = await wait_for_status(
            escalations, key, lambda s: bool(events(s, "notified", who="olga") and events(s, "notified", who="uma"))
        )
        await finish(time_env, escalations, key, "chat_shared_webhook_mentions")

    subject = f"[P1] hooks: Checkout latency over 2s (incident {key})"
    texts = sorted(request.json()["text"] for request in pages(receiver.requests("/slack/T000/B000/paging")))
    assert texts == sorted([f"@olga {subject}", f"<@U024BE7LH> {subject}"])
    for who, address in (("olga", "@olga"), ("uma", "U024BE7LH")):
        [notified] = events(status, "notified", who=who)
        assert notified.channel == "chat"
        assert notified.detail == f"page via chat to {address}: delivered (Slack webhook (the shared webhook))"
    assert events(status, "notify_failed") == []
    assert receiver.requests(POST_MESSAGE) == []


async def test_without_slack_settings_a_handle_is_skipped_for_the_next_channel(
    time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path, no_slack_env: pytest.MonkeyPatch
) -> None:
    olga_hook = receiver.route("/hooks/olga")
    people = {
        "olga": {"chat": "@olga", "webhook": olga_hook},
        "frank": {"chat": "@frank"},  # nothing else: the message goes to the worker log
        "mia": {"webhook": receiver.url("/hooks/mia")},
    }
    folder = write_policy_dir(tmp_path, people, tiers=[["olga", "frank"]])
    settings = make_settings(policy_dir=folder, webhook_secret=SECRET)
    assert settings.slack_token is None and settings.slack_webhook_url is None
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "chat-not-configured")
        status = await wait_for_status(
            escalations, key, lambda s: bool(events(s, "notified", who="olga") and events(s, "notified", who="frank"))
        )
        await finish(time_env, escalations, key, "chat_not_configured_skipped")

    assert events(status, "notify_failed") == [], "a channel this worker cannot send on is no failure"
    [olga] = events(status, "notified", who="olga")
    assert olga.channel == "webhook"
    assert olga.detail == f"page via webhook to {olga_hook}: delivered (HTTP 200; not configured on this worker: chat)"
    assert len(receiver.requests("/hooks/olga", kind="page")) == 1
    [frank] = events(status, "notified", who="frank")
    assert frank.channel == "log"
    assert frank.detail == "page via log to @frank: logged (not configured on this worker: chat)"
    assert events(status, "unreachable") == []
    assert receiver.requests("/hooks/mia") == []
    assert receiver.requests(POST_MESSAGE) == []
