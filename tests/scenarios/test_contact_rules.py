"""Per-person contact rules (directory.yaml ``rules:``): while the tier is unacknowledged a person
is reached on each step's channel at its time after the page, and an acknowledgement ends the
steps still to come. Real receivers: a webhook and an ntfy topic on 127.0.0.1, aiosmtpd for email;
the time-skipping server for the minutes between the steps. Then what ``escalate policy check``
says of rules that cannot work.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from activities.policy_store import check_paths
from tests.support.cli import policy_check
from tests.support.delivery import finish, open_incident, write_policy_dir
from tests.support.mailbox import SENDER, SmtpServer
from tests.support.receiver import Receiver, Reply
from tests.support.temporal import make_settings, running
from tests.support.timeline import events
from workflows.model import IncidentStatus, TimelineEvent

on_the_test_server = pytest.mark.asyncio(loop_scope="session")

MINUTE = timedelta(minutes=1)
RULES = [{"after": "0m", "via": "webhook"}, {"after": "5m", "via": "email"}, {"after": "10m", "via": "push"}]


def people(receiver: Receiver, rules: list[dict[str, str]] = RULES) -> dict[str, dict[str, Any]]:
    """Olga has three channels and steps through them; pete (tier 2) and mia (the manager) have a
    webhook each, so that a page of theirs would show."""
    return {
        "olga": {
            "webhook": receiver.route("/hooks/olga"),
            "email": "olga@example.com",
            "push": receiver.route("/ntfy/olga", Reply(200, {"id": "x1", "event": "message", "topic": "olga"})),
            "rules": rules,
        },
        "pete": {"webhook": receiver.route("/hooks/pete")},
        "mia": {"webhook": receiver.route("/hooks/mia")},
    }


def steps(status: IncidentStatus) -> list[TimelineEvent]:
    """Olga's page deliveries, in the order they happened."""
    return [event for event in events(status, "notified", who="olga") if event.detail.startswith("page via ")]


def assert_at(event: TimelineEvent, due: datetime) -> None:
    assert timedelta(0) <= event.at - due < timedelta(seconds=1), f"{event.detail} at {event.at}, due {due}"


# ── the steps, in time ───────────────────────────────────────────────────────────────────────


@on_the_test_server
async def test_each_step_reaches_its_channel_at_its_time_after_the_page(
    time_env: WorkflowEnvironment, receiver: Receiver, smtp: SmtpServer, tmp_path: Path
) -> None:
    folder = write_policy_dir(tmp_path, people(receiver), tiers=[["olga"], ["pete"]], ack_within="30m")
    settings = make_settings(policy_dir=folder, smtp_url=smtp.url, smtp_from=SENDER)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "rules-steps")
        await time_env.sleep(4 * MINUTE)
        at_4m = await escalations.status(key)
        await time_env.sleep(2 * MINUTE)
        at_6m = await escalations.status(key)
        mails_at_6m = len(smtp.mailbox.to("olga@example.com"))
        await time_env.sleep(5 * MINUTE)
        at_11m = await escalations.status(key)
        await time_env.sleep(15 * MINUTE)  # 26m: every step is done, the tier's window is not
        at_26m = await escalations.status(key)
        await finish(time_env, escalations, key, "contact_rules_step_through_channels")

    [webhook] = steps(at_4m)
    assert (webhook.channel, webhook.tier) == ("webhook", 1)
    assert_at(webhook, trigger)
    assert webhook.detail == f"page via webhook to {receiver.url('/hooks/olga')}: delivered (HTTP 200)"

    assert [event.channel for event in steps(at_6m)] == ["webhook", "email"]
    email = steps(at_6m)[1]
    assert_at(email, trigger + 5 * MINUTE)
    assert email.detail.startswith("page via email to olga@example.com: delivered")
    assert mails_at_6m == 1

    assert [event.channel for event in steps(at_11m)] == ["webhook", "email", "push"]
    push = steps(at_11m)[2]
    assert_at(push, trigger + 10 * MINUTE)
    assert push.detail == f"page via push to {receiver.url('/ntfy/olga')}: delivered (HTTP 200)"

    assert steps(at_26m) == steps(at_11m), "three steps, each once"
    assert events(at_26m, "notify_failed") == []
    assert (at_26m.status, at_26m.tier) == ("triggered", 1), "the steps do not move the tier on"

    # what each receiver got: one page per step, each under its own idempotency key
    [hook] = receiver.requests("/hooks/olga", kind="page")
    [mail] = [m for m in smtp.mailbox.to("olga@example.com") if m.message["Subject"].startswith("[P1]")]
    [ntfy] = [r for r in receiver.requests("/ntfy/olga") if r.headers["Title"].startswith("[P1]")]
    keys = [
        hook.headers["Idempotency-Key"],
        mail.message["X-Escalate-Idempotency-Key"],
        ntfy.headers["X-Escalate-Idempotency-Key"],
    ]
    prefix = keys[0].removesuffix("/step1/webhook")
    assert prefix.startswith(f"{key}/") and prefix.endswith("/olga")
    assert keys == [f"{prefix}/step1/webhook", f"{prefix}/step2/email", f"{prefix}/step3/push"]
    assert ntfy.body.decode().startswith(f"You are paged for incident {key} as tier 1 of 2 (On-call)")
    assert receiver.requests("/hooks/pete") == [] and receiver.requests("/hooks/mia") == []


@on_the_test_server
async def test_an_ack_at_7_minutes_ends_the_steps_still_to_come(
    time_env: WorkflowEnvironment, receiver: Receiver, smtp: SmtpServer, tmp_path: Path
) -> None:
    folder = write_policy_dir(tmp_path, people(receiver), tiers=[["olga"], ["pete"]], ack_within="30m")
    settings = make_settings(policy_dir=folder, smtp_url=smtp.url, smtp_from=SENDER)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "rules-ack")
        await time_env.sleep(7 * MINUTE)
        acked = await escalations.acknowledge(key, by="olga", note="on it")
        await time_env.sleep(40 * MINUTE)  # past the push step, the tier's window and the SLA
        status = await escalations.status(key)
        await finish(time_env, escalations, key, "contact_rules_stop_at_the_ack")

    [ack] = events(acked, "acknowledged")
    assert ack.at - trigger >= 7 * MINUTE and ack.at - trigger < 8 * MINUTE
    assert [event.channel for event in steps(status)] == ["webhook", "email"]
    webhook, email = steps(status)
    assert_at(webhook, trigger)
    assert_at(email, trigger + 5 * MINUTE)

    after_ack = [event for event in status.timeline if event.at > ack.at and event.kind != "sla_breached"]
    assert after_ack == [], f"nothing pages after the ack: {after_ack}"
    assert [r for r in receiver.requests("/ntfy/olga") if r.headers["Title"].startswith("[P1]")] == [], (
        "the push step (due at 10m) was never sent"
    )
    assert receiver.requests("/hooks/pete") == [], "tier 2 is never paged"
    assert (status.status, status.acknowledged_by, status.tier) == ("acknowledged", "olga", 1)


@on_the_test_server
async def test_a_timeout_escalation_leaves_the_steps_of_the_tier_before_running(
    time_env: WorkflowEnvironment, receiver: Receiver, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Olga's tier has 8 minutes: at 8m pete (tier 2) is paged as well, and olga, still not
    acknowledged, gets her push step at 10m all the same: only an ack (or a change of hands: a
    manual escalation, a reassignment) ends the steps still to come. This pins today's
    behaviour, which differs from peers that unassign the tier they escalate from."""
    folder = write_policy_dir(tmp_path, people(receiver), tiers=[["olga"], ["pete"]], ack_within="8m")
    settings = make_settings(policy_dir=folder, smtp_url=smtp.url, smtp_from=SENDER)
    async with running(time_env, settings) as escalations:
        key, trigger = await open_incident(escalations, "rules-escalated")
        await time_env.sleep(12 * MINUTE)
        status = await escalations.status(key)
        await finish(time_env, escalations, key, "contact_rules_across_an_escalation")

    [escalated] = events(status, "escalated")
    assert escalated.tier == 2
    assert_at(escalated, trigger + 8 * MINUTE)
    [pete] = events(status, "notified", who="pete")
    assert pete.detail.startswith("escalated via webhook")
    assert_at(pete, trigger + 8 * MINUTE)
    assert [(event.channel, event.tier) for event in steps(status)] == [("webhook", 1), ("email", 1), ("push", 1)]
    assert_at(steps(status)[2], trigger + 10 * MINUTE)


# ── rules that cannot work ───────────────────────────────────────────────────────────────────


def write_directory(folder: Path, olga: dict[str, Any]) -> Path:
    folder.mkdir()
    directory = {"people": {"olga": olga, "mia": {"email": "mia@example.com"}}}
    (folder / "directory.yaml").write_text(yaml.safe_dump(directory, sort_keys=False))
    (folder / "hooks.yaml").write_text(
        "policy: hooks\nmanager: mia\nwindows:\n  P1: {ack_within: 30m, resolve_within: 1h}\n"
        "tiers:\n  - name: On-call\n    owners: [olga]\n"
    )
    return folder


def problems_of(folder: Path) -> list[str]:
    return [f"{problem.path}: {problem.message}" for problem in check_paths([folder]).problems]


@pytest.mark.slow  # runs the console script
def test_a_rule_via_a_channel_the_person_lacks_fails_the_check(tmp_path: Path) -> None:
    folder = write_directory(
        tmp_path / "policies",
        {"webhook": "http://127.0.0.1:9/hooks/olga", "email": "olga@example.com", "rules": RULES},
    )

    assert problems_of(folder) == [
        "people.olga: rules[2] goes via 'push', but this person has no push address: "
        "use one of webhook, email, or add a push: address"
    ]
    result = policy_check(folder)
    assert result.returncode == 1
    assert f"{folder / 'directory.yaml'}:" in result.stderr
    assert "people.olga: rules[2] goes via 'push', but this person has no push address" in result.stderr


def test_a_rule_via_an_unknown_channel_names_the_channels_there_are(tmp_path: Path) -> None:
    folder = write_directory(
        tmp_path / "policies", {"email": "olga@example.com", "rules": [{"after": "0m", "via": "sms"}]}
    )

    [problem] = problems_of(folder)
    assert problem.startswith("people.olga: rules[0] goes via 'sms', but this person has no sms address: use one of email")


def test_rules_out_of_order_are_refused(tmp_path: Path) -> None:
    folder = write_directory(
        tmp_path / "policies",
        {
            "webhook": "http://127.0.0.1:9/hooks/olga",
            "email": "olga@example.com",
            "rules": [{"after": "5m", "via": "email"}, {"after": "0m", "via": "webhook"}],
        },
    )

    assert problems_of(folder) == [
        "people.olga: rules must be in the order they happen: each after: no earlier than the one before"
    ]


def test_rules_at_the_same_moment_and_in_order_pass(tmp_path: Path) -> None:
    folder = write_directory(
        tmp_path / "policies",
        {
            "webhook": "http://127.0.0.1:9/hooks/olga",
            "email": "olga@example.com",
            "rules": [{"after": "0m", "via": "webhook"}, {"after": "0m", "via": "email"}, {"after": "1h", "via": "email"}],
        },
    )

    assert problems_of(folder) == []
