"""Maintenance windows: incidents opened for a policy while its window is on are recorded (status
``held_until``, a ``held`` event) but page nobody; when the window ends, on time or early, those
still open are ``released`` and page their tier 1 at once, their windows counting from then.

Through the Python API on the time-skipping server (minutes and hours pass in milliseconds), then
the HTTP API and the ``escalate maintenance`` command. Every page would reach a real webhook
receiver on 127.0.0.1, so "pages nobody" is checked where a responder would notice it.

The scenarios keep the histories of their incidents (``maintenance_<name>``) and of the policy's
maintenance workflow (tests/histories/maintenance/), for tests/test_replay.py. Not kept: the
windows of the refusals, the HTTP and the CLI tests, which see updates refused by a validator
(the time-skipping server keeps their workflow tasks, which the real server drops).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from escalate.settings import Settings
from starter.api import IncidentRejected, InvalidRequest
from starter.web import create_app
from tests.support.cli import escalate, server_env
from tests.support.histories import save_history, save_maintenance_history
from tests.support.http import asgi_client, assert_problem
from tests.support.incidents import finish as finish_incident
from tests.support.incidents import start_new
from tests.support.paths import ESCALATE
from tests.support.policies import tiers_of, webhooks, write_folder
from tests.support.receiver import Receiver
from tests.support.temporal import TrackedEscalations, make_settings, running, unique_key
from tests.support.timeline import events
from tests.support.waiting import wait_for
from workflows.model import IncidentStatus, MaintenanceWindow, TimelineEvent, maintenance_id, workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


# ── policies, receivers, helpers ─────────────────────────────────────────────────────────────


def write_policies(root: Path, receiver: Receiver) -> Path:
    """``hooks`` (olga, then pete; 10-minute windows, a reminder 3 minutes before) and ``other``
    (vic), every person reachable by a webhook on the receiver."""
    policies = [
        {
            "policy": name,
            "manager": "mia",
            "windows": {"P1": {"ack_within": "10m", "remind_before": "3m", "resolve_within": "2h"}},
            "tiers": tiers_of(*tiers),
        }
        for name, tiers in (("hooks", [["olga"], ["pete"]]), ("other", [["vic"]]))
    ]
    return write_folder(root / "policies", webhooks(receiver, "olga", "pete", "vic", "mia", under="/hooks"), *policies)


@dataclass
class Stage:
    env: WorkflowEnvironment
    escalations: TrackedEscalations
    receiver: Receiver
    settings: Settings

    async def open(self, prefix: str, policy: str = "hooks") -> tuple[str, IncidentStatus]:
        key = unique_key(prefix)
        return key, await start_new(self.escalations, policy, key, summary="Checkout errors")

    def pages(self, who: str) -> list[dict[str, Any]]:
        """What a person's webhook received: the kind and the incident of each message."""
        return [
            {"kind": r.kind, "key": r.json()["incident"]["key"]} for r in self.receiver.requests(f"/hooks/{who}")
        ]

    async def end_window_if_on(self, policy: str) -> None:
        if await self.escalations.maintenance(policy) is not None:
            await self.escalations.end_maintenance(policy, by="test-teardown")


@pytest_asyncio.fixture(loop_scope="session")
async def stage(time_env: WorkflowEnvironment, receiver: Receiver, tmp_path: Path) -> AsyncIterator[Stage]:
    settings = make_settings(policy_dir=write_policies(tmp_path, receiver))
    async with running(time_env, settings) as escalations:
        here = Stage(time_env, escalations, receiver, settings)
        try:
            yield here
        finally:
            # A window left on would hold its workflow open on a queue without a worker.
            for policy in ("hooks", "other"):
                await here.end_window_if_on(policy)
            await wait_for("maintenance workflows to close", lambda: all_closed(here), timeout=10)


async def all_closed(stage: Stage) -> bool:
    for policy in ("hooks", "other", "nope"):
        handle = stage.env.client.get_workflow_handle(maintenance_id(policy))
        try:
            description = await handle.describe()
        except Exception:  # never started
            continue
        if description.status == WorkflowExecutionStatus.RUNNING:
            if (await stage.escalations.maintenance(policy)) is None and description.task_queue == stage.settings.task_queue:
                await handle.terminate("test finished: a window that never began")
            return False
    return True


def pages_in(status: IncidentStatus) -> list[TimelineEvent]:
    return [event for event in events(status, "notified") if event.detail.split(" via ")[0] in ("page", "reminder", "escalated")]


def close_to(moment: datetime, expected: datetime) -> bool:
    return timedelta(0) <= moment - expected < timedelta(seconds=1)


async def released(stage: Stage, key: str) -> IncidentStatus:
    async def probe() -> IncidentStatus | None:
        status = await stage.escalations.status(key)
        return status if events(status, "released") and pages_in(status) else None

    return await wait_for(f"{key} to be released and paged", probe)


async def finish(stage: Stage, key: str, name: str) -> IncidentStatus:
    return await finish_incident(stage.env, stage.escalations, key, name, by="olga", resolution="rolled back")


# ── the Python API ───────────────────────────────────────────────────────────────────────────


async def test_a_window_holds_an_incident_then_releases_it_to_page_tier_1_at_its_end(stage: Stage) -> None:
    window = await stage.escalations.start_maintenance("hooks", duration="1h", by="anna", reason="database upgrade")
    assert (window.policy, window.by, window.reason, window.ended_by, window.held) == (
        "hooks", "anna", "database upgrade", None, []
    )
    assert window.until - window.since == HOUR
    assert await stage.escalations.maintenance("hooks") == window
    assert await stage.escalations.maintenance("other") is None

    key, opened = await stage.open("held")
    assert opened.held_until == window.until
    assert (opened.status, opened.tier, opened.next_escalation_at, opened.resolve_by) == ("triggered", 1, None, None)
    [triggered, held] = opened.timeline
    assert triggered.kind == "triggered"
    assert (held.kind, held.who, held.tier) == ("held", "anna", 1)
    assert "database upgrade" in held.detail and "nobody paged until it ends" in held.detail
    assert close_to(held.at, window.since)

    other_key, other = await stage.open("not-held", policy="other")
    assert other.held_until is None
    assert events(other, "held") == []

    holding = await wait_for("the held key", lambda: _held(stage, "hooks", key))
    assert holding.held == [key], "only the incident of its own policy"

    await stage.env.sleep(50 * MINUTE)
    at_50m = await stage.escalations.status(key)
    assert at_50m.held_until == window.until
    assert pages_in(at_50m) == [] and events(at_50m, "reminded") == [] and events(at_50m, "escalated") == []
    assert stage.pages("olga") == [] and stage.pages("pete") == [], "nobody is paged while it is held"
    other_at_50m = await stage.escalations.status(other_key)
    assert [e.who for e in pages_in(other_at_50m)][:2] == ["vic", "vic"], "the other policy pages as usual"
    assert {"kind": "page", "key": other_key} in stage.pages("vic")

    await stage.env.sleep(11 * MINUTE)  # 1h01: the window is over
    status = await released(stage, key)
    [release] = events(status, "released")
    assert close_to(release.at, window.until), f"released at {release.at}, the window ended at {window.until}"
    assert release.detail == "the maintenance window is over: paging starts now"
    [page] = pages_in(status)
    assert (page.who, page.tier) == ("olga", 1) and page.detail.startswith("page via webhook")
    assert close_to(page.at, window.until), "tier 1 is paged at once"
    assert status.held_until is None
    # its windows count from the release, not from the trigger an hour earlier
    assert status.next_escalation_at == release.at + 10 * MINUTE
    assert status.next_reminder_at == release.at + 7 * MINUTE
    assert status.resolve_by == release.at + 2 * HOUR
    assert await wait_for("the window to close", lambda: _closed(stage, "hooks"))
    await save_maintenance_history(stage.env.client, "hooks", "held_then_released")

    await stage.env.sleep(10 * MINUTE)  # 1h11
    later = await stage.escalations.status(key)
    [reminded] = events(later, "reminded")
    assert reminded.due_at == release.at + 7 * MINUTE
    [escalated] = events(later, "escalated")
    assert (escalated.tier, escalated.due_at) == (2, release.at + 10 * MINUTE)
    assert [p["kind"] for p in stage.pages("olga") if p["key"] == key] == ["page", "reminder"]
    assert [p["kind"] for p in stage.pages("pete") if p["key"] == key] == ["escalated"]

    await finish(stage, key, "maintenance_held_then_released")
    await finish(stage, other_key, "maintenance_other_policy_not_held")


async def _held(stage: Stage, policy: str, key: str) -> MaintenanceWindow | None:
    window = await stage.escalations.maintenance(policy)
    return window if window is not None and key in window.held else None


async def _closed(stage: Stage, policy: str) -> bool:
    return await stage.escalations.maintenance(policy) is None


async def test_ending_a_window_early_releases_its_incidents_at_once(stage: Stage) -> None:
    window = await stage.escalations.start_maintenance("hooks", duration="2h", by="anna", reason="network change")
    key, opened = await stage.open("early")
    assert opened.held_until == window.until
    await wait_for("the held key", lambda: _held(stage, "hooks", key))

    await stage.env.sleep(10 * MINUTE)
    ended = await stage.escalations.end_maintenance("hooks", by="ben")
    assert ended.ended_by == "ben"
    assert close_to(ended.until, window.since + 10 * MINUTE)
    status = await released(stage, key)
    [release] = events(status, "released")
    assert close_to(release.at, ended.until), "released when the window was ended, not when it would have"
    [page] = pages_in(status)
    assert page.who == "olga" and close_to(page.at, ended.until)
    assert status.next_escalation_at == release.at + 10 * MINUTE
    assert await wait_for("the window to close", lambda: _closed(stage, "hooks"))
    await save_maintenance_history(stage.env.client, "hooks", "ended_early")

    with pytest.raises(IncidentRejected, match="no maintenance window is on for policy 'hooks'"):
        await stage.escalations.end_maintenance("hooks", by="ben")

    # a new window for the same policy after the last one ended
    again = await stage.escalations.start_maintenance("hooks", duration="30m", by="anna", reason="second try")
    assert again.since >= ended.until and again.ended_by is None
    await stage.escalations.end_maintenance("hooks", by="anna")

    await stage.env.sleep(10 * MINUTE)
    later = await stage.escalations.status(key)
    [escalated] = events(later, "escalated")
    assert escalated.due_at == release.at + 10 * MINUTE
    await finish(stage, key, "maintenance_ended_early")


async def test_an_incident_acknowledged_or_resolved_during_the_window_never_pages(stage: Stage) -> None:
    await stage.escalations.start_maintenance("hooks", duration="1h", by="anna", reason="database upgrade")
    acked_key, _ = await stage.open("held-acked")
    resolved_key, _ = await stage.open("held-resolved")
    await stage.env.sleep(10 * MINUTE)
    acked = await stage.escalations.acknowledge(acked_key, by="olga", note="saw it in the dashboard")
    assert acked.status == "acknowledged"
    resolved = await stage.escalations.resolve(resolved_key, by="olga", resolution="part of the upgrade")
    assert resolved.status == "resolved"

    await stage.env.sleep(HOUR)  # past the window's end and the windows that would follow it
    acked = await stage.escalations.status(acked_key)
    assert (acked.status, acked.acknowledged_by, acked.tier) == ("acknowledged", "olga", 1)
    assert pages_in(acked) == [] and events(acked, "escalated") == [] and events(acked, "reminded") == []
    assert acked.held_until is None
    final = await stage.env.client.get_workflow_handle(workflow_id(resolved_key), result_type=IncidentStatus).result()
    assert final.status == "resolved"
    assert events(final, "released") == [] and pages_in(final) == []
    assert stage.pages("olga") == [] and stage.pages("pete") == [], "neither ever paged anyone"
    await save_history(stage.env.client, resolved_key, "maintenance_resolved_while_held")
    assert await wait_for("the window to close", lambda: _closed(stage, "hooks"))
    await save_maintenance_history(stage.env.client, "hooks", "acked_and_resolved_while_held")
    await finish(stage, acked_key, "maintenance_acked_while_held")
    assert [p["kind"] for p in stage.pages("olga")] == [], "the resolution paged nobody either (nobody was paged)"


async def test_a_second_start_extends_the_window_and_never_shortens_it(stage: Stage) -> None:
    first = await stage.escalations.start_maintenance("hooks", duration="30m", by="anna", reason="database upgrade")
    key, opened = await stage.open("extended")
    assert opened.held_until == first.until
    await wait_for("the held key", lambda: _held(stage, "hooks", key))

    await stage.env.sleep(10 * MINUTE)
    longer = await stage.escalations.start_maintenance("hooks", duration="1h", by="ben", reason="upgrade overran")
    assert longer.since == first.since, "the same window, extended"
    assert close_to(longer.until, first.since + 70 * MINUTE)
    assert (longer.by, longer.reason, longer.held) == ("ben", "upgrade overran", [])
    shorter = await stage.escalations.start_maintenance("hooks", duration="5m", by="carl", reason="nearly done")
    assert shorter.until == longer.until, "a shorter start keeps the later end"
    assert (await stage.escalations.maintenance("hooks")).held == [key]  # type: ignore[union-attr]

    async def moved() -> IncidentStatus | None:
        status = await stage.escalations.status(key)
        return status if status.held_until == longer.until else None

    held = await wait_for("the held incident to learn of the new end", moved)
    first_hold, extension = events(held, "held")
    assert extension.detail == (
        f"the maintenance window was extended until {longer.until:%Y-%m-%d %H:%M:%S} UTC: still nobody paged"
    )
    late_key, late = await stage.open("extended-late")
    assert late.held_until == longer.until

    await stage.env.sleep(25 * MINUTE)  # 35m: past the first end, before the extended one
    at_35m = await stage.escalations.status(key)
    assert events(at_35m, "released") == [] and pages_in(at_35m) == [], "held until the extended end"
    assert stage.pages("olga") == []

    await stage.env.sleep(36 * MINUTE)  # 71m
    for incident in (key, late_key):
        status = await released(stage, incident)
        [release] = events(status, "released")
        assert close_to(release.at, longer.until)
    assert await wait_for("the window to close", lambda: _closed(stage, "hooks"))
    await save_maintenance_history(stage.env.client, "hooks", "extended_while_holding")
    await finish(stage, key, "maintenance_extended")
    await finish(stage, late_key, "maintenance_extended_late_incident")


async def test_refusals_say_what_is_wrong(stage: Stage) -> None:
    with pytest.raises(IncidentRejected) as unknown:
        await stage.escalations.start_maintenance("nope", duration="1h", by="anna", reason="typo")
    assert "nope" in str(unknown.value) and "hooks" in str(unknown.value)
    with pytest.raises(InvalidRequest, match="--for"):
        await stage.escalations.start_maintenance("hooks", duration="soon", by="anna", reason="upgrade")
    with pytest.raises(IncidentRejected, match=r"a maintenance window of 8d: give between 1s and 7d, e.g. --for 2h"):
        await stage.escalations.start_maintenance("hooks", duration="8d", by="anna", reason="upgrade")
    with pytest.raises(IncidentRejected, match="no maintenance window is on for"):
        await stage.escalations.end_maintenance("hooks", by="anna")
    assert await stage.escalations.maintenance("hooks") is None
    seven_days = await stage.escalations.start_maintenance("hooks", duration="7d", by="anna", reason="freeze")
    assert seven_days.until - seven_days.since == timedelta(days=7), "7 days is the longest, and allowed"
    await stage.escalations.end_maintenance("hooks", by="anna")


async def test_a_refused_start_leaves_no_workflow_behind(stage: Stage) -> None:
    with pytest.raises(IncidentRejected):
        await stage.escalations.start_maintenance("nope", duration="1h", by="anna", reason="typo")
    handle = stage.env.client.get_workflow_handle(maintenance_id("nope"))
    await stage.env.sleep(timedelta(minutes=2))
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED, "it waited for a window that never came"
    await save_maintenance_history(stage.env.client, "nope", "refused_start")
    assert await stage.escalations.maintenance("nope") is None
    with pytest.raises(IncidentRejected, match="no maintenance window is on for policy 'nope'"):
        await stage.escalations.end_maintenance("nope", by="anna")


# ── HTTP ─────────────────────────────────────────────────────────────────────────────────────


async def test_http_starts_shows_and_ends_a_window(stage: Stage) -> None:
    async with asgi_client(create_app(stage.settings, stage.escalations)) as api:
        assert (await api.get("/v1/policies/hooks/maintenance")).json() is None

        started = await api.post(
            "/v1/policies/hooks/maintenance", json={"for": "45m", "by": "anna", "reason": "kernel patching"}
        )
        assert started.status_code == 200, started.text
        window = started.json()
        assert (window["policy"], window["by"], window["reason"], window["ended_by"]) == ("hooks", "anna", "kernel patching", None)
        since, until = datetime.fromisoformat(window["since"]), datetime.fromisoformat(window["until"])
        assert until - since == 45 * MINUTE and until.utcoffset() == timedelta(0)

        key, _ = await stage.open("http-held")
        incident = (await api.get(f"/v1/incidents/{key}")).json()
        assert datetime.fromisoformat(incident["held_until"]) == until
        assert [e["kind"] for e in incident["timeline"]] == ["triggered", "held"]

        async def shown_holding() -> dict[str, Any] | None:
            body = (await api.get("/v1/policies/hooks/maintenance")).json()
            return body if body and body["held"] == [key] else None

        shown = await wait_for("GET to show the held incident", shown_holding)
        assert shown["until"] == window["until"] and shown["reason"] == "kernel patching"

        unknown = assert_problem(
            await api.post("/v1/policies/nope/maintenance", json={"for": "1h", "by": "anna", "reason": "x"}), 422, says=("nope",)
        )
        assert [error["field"] for error in unknown["errors"]] == ["policy"]
        bad = assert_problem(await api.post("/v1/policies/hooks/maintenance", json={"for": "soon", "by": "anna", "reason": "x"}), 422)
        assert "for" in [error["field"] for error in bad["errors"]]
        too_long = assert_problem(
            await api.post("/v1/policies/hooks/maintenance", json={"for": "8d", "by": "anna", "reason": "x"}),
            422,
            says=("a maintenance window of 8d: give between 1s and 7d",),
        )
        assert [error["field"] for error in too_long["errors"]] == ["for"]
        missing = assert_problem(await api.post("/v1/policies/hooks/maintenance", json={"for": "1h", "reason": "x"}), 422)
        assert "by" in [error["field"] for error in missing["errors"]]

        ended = await api.delete("/v1/policies/hooks/maintenance", params={"by": "ben"})
        assert ended.status_code == 200, ended.text
        assert ended.json()["ended_by"] == "ben"
        await released(stage, key)
        await wait_for("GET to show no window", lambda: _closed(stage, "hooks"))
        assert (await api.get("/v1/policies/hooks/maintenance")).json() is None
        assert_problem(await api.delete("/v1/policies/hooks/maintenance", params={"by": "ben"}), 409, says=("no maintenance window is on",))
    await finish(stage, key, "maintenance_http")


# ── the command line ─────────────────────────────────────────────────────────────────────────


@pytest.mark.slow  # runs the console script
@pytest.mark.skipif(not ESCALATE.exists(), reason="needs the escalate console script")
async def test_cli_starts_shows_and_ends_a_window(stage: Stage, tmp_path: Path) -> None:
    env = server_env(stage.env, stage.settings, tmp_path)

    code, out, err = (await escalate(env, "maintenance", "hooks")).outcome
    assert (code, out, err) == (0, "no maintenance window is on for hooks\n", "")

    code, out, err = (await escalate(env, "maintenance", "hooks", "--for", "2h", "--by", "anna", "--reason", "storage migration")).outcome
    assert code == 0, err
    window = await stage.escalations.maintenance("hooks")
    assert window is not None and window.until - window.since == 2 * HOUR
    until = window.until.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert out == f"maintenance of hooks until {until} (by anna: storage migration)\n"

    key, opened = await stage.open("cli-held")
    assert opened.held_until == window.until
    await wait_for("the held key", lambda: _held(stage, "hooks", key))
    code, out, err = (await escalate(env, "maintenance", "hooks")).outcome
    assert (code, out) == (0, f"maintenance of hooks until {until} (by anna: storage migration); holding {key}\n"), err
    code, out, err = (await escalate(env, "maintenance", "hooks", "--json")).outcome
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["policy"], shown["by"], shown["held"]) == ("hooks", "anna", [key])
    code, out, err = (await escalate(env, "status", key)).outcome
    assert code == 0, err
    assert f"  held      by a maintenance window until {until}: nobody is paged" in out.splitlines()

    unknown, too_long, not_a_duration, no_reason = (
        run.outcome
        for run in await asyncio.gather(
            escalate(env, "maintenance", "nope", "--for", "1h", "--by", "anna", "--reason", "typo"),
            escalate(env, "maintenance", "hooks", "--for", "8d", "--by", "anna", "--reason", "freeze"),
            escalate(env, "maintenance", "hooks", "--for", "soon", "--by", "anna", "--reason", "x"),
            escalate(env, "maintenance", "hooks", "--for", "1h", "--by", "anna"),
        )
    )
    code, out, err = unknown
    assert (code, out) == (1, "")
    assert err.startswith("escalate: ") and "'nope'" in err and "hooks" in err, err
    code, out, err = too_long
    assert (code, out, err) == (1, "", "escalate: a maintenance window of 8d: give between 1s and 7d, e.g. --for 2h\n")
    code, out, err = not_a_duration
    assert code == 2 and err.startswith("escalate: --for: ") and "soon" in err, "a duration that is no duration is a usage error"
    after = await stage.escalations.maintenance("hooks")
    assert after is not None and (after.until, after.by, after.reason) == (window.until, "anna", "storage migration"), (
        "refused starts change nothing"
    )
    assert no_reason == (2, "", "escalate: --reason: say what the maintenance is\n")

    code, out, err = (await escalate(env, "maintenance", "hooks", "--end", "--by", "ben")).outcome
    assert code == 0, err
    assert out.startswith("maintenance of hooks ended by ben at ")
    status = await released(stage, key)
    assert [e.who for e in pages_in(status)] == ["olga"]
    await wait_for("the window to close", lambda: _closed(stage, "hooks"))
    code, out, err = (await escalate(env, "maintenance", "hooks", "--end", "--by", "ben")).outcome
    assert (code, err) == (1, "escalate: no maintenance window is on for policy 'hooks'\n")
    await finish(stage, key, "maintenance_cli")
