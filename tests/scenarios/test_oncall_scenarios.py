"""On-call schedules in incidents, on the time-skipping Temporal server, and who is on call
through ``escalate oncall`` and ``GET /v1/oncall``.

A ``schedule:NAME`` owner is resolved when its tier is paged, not when the incident starts: a
repeat round after the hand-off pages the new person. Tiers with nobody to page (a gap in the
schedule, or outside the tier's ``active:`` hours) are skipped at once, with a ``skipped`` event.

The test server's clock only moves forward and is shared by every test, so each scenario looks
at the server's time, picks a day two days on, writes its schedule around that day (start
dates, hand-offs, overrides in London wall-clock time) and moves the server to the moment it
wants. The CLI and HTTP checks use the real clock and write their schedule around it. Each
scenario keeps its history under tests/histories/ as ``oncall_<name>`` (replayed by
tests/test_replay.py).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from starter.api import Escalations
from starter.web import create_app
from tests.support.cli import Run, cli_env, escalate
from tests.support.clock import LONDON, local, london, move_to
from tests.support.histories import save_history
from tests.support.incidents import start_new
from tests.support.paths import TEST_POLICIES
from tests.support.temporal import make_settings, running, unique_key
from tests.support.timeline import assert_on_time, events, told
from workflows.model import IncidentStatus

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)

# Tier 1 is whoever is on call in schedules/primary.yaml, tier 2 is carol; one repeat round.
ONCALL_POLICY = """\
policy: oncall
manager: dana
windows:
  P1: {ack_within: 10m, remind_before: 3m, resolve_within: 4h}
  P2: {ack_within: 20m, remind_before: 5m, resolve_within: 1d}
tiers:
  - name: Primary on-call
    owners: [schedule:primary]
  - name: Backup
    owners: [carol]
repeat: 1
"""

# Tier 1 is the office desk, paged only in office hours; tier 2 is carol at any time.
DESK_POLICY = """\
policy: desk
manager: dana
windows:
  P1: {ack_within: 10m, remind_before: 3m, resolve_within: 4h}
tiers:
  - name: Office desk
    owners: [erin]
    active: office
  - name: Night cover
    owners: [carol]
repeat: 1
"""

CALENDARS = """\
office:
  timezone: Europe/London
  hours: {mon-sun: "09:00-17:30"}
"""


def rotation(start: date, participants: str = "[alice, bob]", shift: str = "1d", handoff: str = "09:00", overrides: str = "") -> str:
    return (
        "schedule: primary\ntimezone: Europe/London\nlayers:\n"
        f"  - name: rotation\n    participants: {participants}\n    shift: {shift}\n"
        f'    handoff: "{handoff}"\n    start: {start.isoformat()}\n'
        + (f"overrides:\n{overrides}" if overrides else "")
    )


def policy_folder(tmp_path: Path, primary: str) -> Path:
    """The tests' directory, an office calendar, the two policies and schedules/primary.yaml."""
    folder = tmp_path / "policies"
    (folder / "schedules").mkdir(parents=True)
    shutil.copy(TEST_POLICIES / "directory.yaml", folder / "directory.yaml")
    (folder / "calendars.yaml").write_text(CALENDARS)
    (folder / "oncall.yaml").write_text(ONCALL_POLICY)
    (folder / "desk.yaml").write_text(DESK_POLICY)
    (folder / "schedules" / "primary.yaml").write_text(primary)
    return folder


# ── times ─────────────────────────────────────────────────────────────────────────────────


async def a_day_ahead(env: WorkflowEnvironment) -> date:
    """A London day whose whole morning is still ahead of the server's clock."""
    return (await env.get_current_time()).astimezone(LONDON).date() + 2 * DAY


# ── reading the timeline ──────────────────────────────────────────────────────────────────


def everyone_told(status: IncidentStatus) -> set[str]:
    return {event.who or "" for event in events(status, "notified")}


async def trigger(escalations: Escalations, policy: str, key: str, priority: str = "P1") -> IncidentStatus:
    return await start_new(escalations, policy, key, priority, summary="API error rate 12%")


# ── (1) resolved when paged: a repeat after the hand-off pages the next person ────────────


async def test_a_repeat_round_after_the_handoff_pages_the_person_now_on_call(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    day = await a_day_ahead(time_env)
    # alice's turn began yesterday at 09:00 and ends today at 09:00, when bob's begins.
    folder = policy_folder(tmp_path, rotation(start=day - DAY))
    async with running(time_env, make_settings(policy_dir=folder)) as escalations:
        await move_to(time_env, london(day, 8, 55))
        key = unique_key("oncall-handoff")
        opened = await trigger(escalations, "oncall", key)
        start = opened.triggered_at
        assert start is not None
        assert (opened.tier, opened.tier_name, opened.owners) == (1, "Primary on-call", ["alice"])

        # 09:02 reminder (after the hand-off), 09:05 tier 2, 09:15 round 2 at tier 1.
        await move_to(time_env, start + 21 * MINUTE)
        status = await escalations.status(key)
        assert told(status, "page") == ["alice"]
        reminder = events(status, "reminded")[0]
        assert_on_time(reminder, start + 7 * MINUTE)
        assert (reminder.tier, reminder.at > london(day, 9)) == (1, True), "the reminder is due after the hand-off"
        assert told(status, "reminder", tier=1) == ["alice"], "a reminder goes to whoever was paged, not the new person"
        to_backup, round_two = events(status, "escalated")
        assert_on_time(to_backup, start + 10 * MINUTE)
        assert told(status, "escalated", tier=2) == ["carol"]
        assert_on_time(round_two, start + 20 * MINUTE)
        assert (round_two.tier, round_two.detail.endswith("now tier 1 (Primary on-call), round 2")) == (1, True), round_two.detail
        assert told(status, "escalated", tier=1) == ["bob"], "tier 1 is resolved again when it is paged: bob since 09:00"
        assert (status.tier, status.round, status.owners) == (1, 1, ["bob"])
        assert "alice" not in told(status, "escalated") and "bob" not in told(status, "page") + told(status, "reminder")
        assert everyone_told(status) == {"alice", "bob", "carol"}

        acked = await escalations.acknowledge(key, by="bob", note="looking")
        assert (acked.status, acked.acknowledged_by) == ("acknowledged", "bob")
        await save_history(time_env.client, key, "oncall_handoff_between_rounds")


async def test_a_weekly_handoff_on_the_day_the_clocks_change_stays_at_0900_london_time(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The next Sunday London's clocks change: a weekly rotation started three Sundays before
    (on the other offset) hands over at 09:00 local, not at 09:00 of the old offset in UTC."""
    day = await a_day_ahead(time_env)
    while london(day, 12).astimezone(LONDON).utcoffset() == london(day - DAY, 12).astimezone(LONDON).utcoffset():
        day += DAY
    assert day.weekday() == 6 and day.month in (3, 10), day
    spring = day.month == 3
    # alice, bob, alice, then bob from 09:00 on the day of the change.
    folder = policy_folder(tmp_path, rotation(start=day - 3 * WEEK, shift="1w"))
    handoff = london(day, 9)
    assert handoff.hour == (8 if spring else 9), local(handoff)
    assert handoff - london(day - WEEK, 9) == WEEK + (-HOUR if spring else HOUR)
    async with running(time_env, make_settings(policy_dir=folder)) as escalations:
        await move_to(time_env, london(day, 8, 50))
        key = unique_key("oncall-dst")
        opened = await trigger(escalations, "oncall", key)
        start = opened.triggered_at
        assert start is not None
        # In the autumn 08:50 local is already past 08:00 UTC (09:00 of the summer offset).
        assert opened.owners == ["alice"], f"at {local(start)} alice is still on call"

        await move_to(time_env, start + 21 * MINUTE)
        status = await escalations.status(key)
        _, round_two = events(status, "escalated")
        assert_on_time(round_two, start + 20 * MINUTE)
        assert round_two.at.astimezone(LONDON).strftime("%H:%M") == "09:10"
        # In the spring 09:10 local is still before 09:00 UTC (09:00 of the winter offset).
        assert told(status, "escalated", tier=1) == ["bob"], f"at {local(round_two.at)} bob is on call"
        assert told(status, "page") == ["alice"]
        await save_history(time_env.client, key, "oncall_weekly_handoff_on_dst_day")


# ── (2) an override ───────────────────────────────────────────────────────────────────────


async def test_an_override_in_force_is_paged_and_after_it_ends_the_rotation_is(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    day = await a_day_ahead(time_env)
    # alice's turn (yesterday 09:00 to today 09:00); frank covers her from 07:00 to 08:00.
    cover = f"  - who: frank\n    covers: alice\n    from: {day.isoformat()}T07:00\n    until: {day.isoformat()}T08:00\n"
    folder = policy_folder(tmp_path, rotation(start=day - DAY, overrides=cover))
    async with running(time_env, make_settings(policy_dir=folder)) as escalations:
        await move_to(time_env, london(day, 7, 30))
        key = unique_key("oncall-override")
        opened = await trigger(escalations, "oncall", key, priority="P2")  # 20-minute windows
        start = opened.triggered_at
        assert start is not None
        assert opened.owners == ["frank"], "the override, not alice"

        # 07:50 tier 2 (carol); 08:10 round 2 at tier 1, when the override has ended.
        await move_to(time_env, start + 41 * MINUTE)
        status = await escalations.status(key)
        assert told(status, "page") == ["frank"]
        assert told(status, "reminder", tier=1) == ["frank"]
        _, round_two = events(status, "escalated")
        assert_on_time(round_two, start + 40 * MINUTE)
        assert round_two.at > london(day, 8)
        assert told(status, "escalated", tier=1) == ["alice"], "after until: the rotation's person again"
        assert "bob" not in everyone_told(status)
        await save_history(time_env.client, key, "oncall_override")


# ── (3) a gap in the schedule ─────────────────────────────────────────────────────────────


async def test_a_tier_with_nobody_on_call_is_skipped_at_once(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    day = await a_day_ahead(time_env)
    # The rotation only starts tomorrow: nobody is on call today.
    folder = policy_folder(tmp_path, rotation(start=day + DAY))
    async with running(time_env, make_settings(policy_dir=folder)) as escalations:
        await move_to(time_env, london(day, 12))
        key = unique_key("oncall-gap")
        opened = await trigger(escalations, "oncall", key)
        start = opened.triggered_at
        assert start is not None
        # No ten minutes waited out at an empty tier: tier 2 is paged at once.
        assert (opened.tier, opened.tier_name, opened.owners) == (2, "Backup", ["carol"])
        [skipped] = events(opened, "skipped")
        assert skipped.tier == 1
        assert skipped.detail == "tier 1 (Primary on-call) skipped: nobody on call in primary"
        assert_on_time(skipped, start)
        [to_backup] = events(opened, "escalated")
        assert_on_time(to_backup, start)
        assert to_backup.tier == 2
        assert to_backup.detail == "tier 1 (Primary on-call) was skipped; now tier 2 (Backup)", "not 'no ack within'"
        assert opened.next_escalation_at == start + 10 * MINUTE, "tier 2 gets its whole window"

        await move_to(time_env, start + 11 * MINUTE)
        status = await escalations.status(key)
        assert told(status, "escalated", tier=2) == ["carol", "carol"], "round 1 and round 2"
        first, second = events(status, "skipped")
        assert first == skipped
        assert_on_time(second, start + 10 * MINUTE)
        assert (second.tier, second.detail) == (1, skipped.detail)
        assert everyone_told(status) == {"carol"}, "nobody of the empty tier was paged, nor reminded"
        assert (status.tier, status.round) == (2, 1)
        await save_history(time_env.client, key, "oncall_gap_skipped")


# ── (4) a tier outside its active hours ───────────────────────────────────────────────────


async def test_a_tier_outside_its_active_hours_is_skipped_at_once(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    day = await a_day_ahead(time_env)
    folder = policy_folder(tmp_path, rotation(start=day - DAY))
    async with running(time_env, make_settings(policy_dir=folder)) as escalations:
        # The office desk is open until 17:30: paged at 17:15, skipped on the repeat at 17:35.
        await move_to(time_env, london(day, 17, 15))
        key = unique_key("oncall-hours")
        opened = await trigger(escalations, "desk", key)
        start = opened.triggered_at
        assert start is not None
        assert (opened.tier, opened.owners) == (1, ["erin"])
        assert events(opened, "skipped") == []

        await move_to(time_env, start + 21 * MINUTE)
        status = await escalations.status(key)
        [skipped] = events(status, "skipped")
        assert_on_time(skipped, start + 20 * MINUTE)
        assert skipped.at > london(day, 17, 30)
        assert (skipped.tier, skipped.detail) == (1, "tier 1 (Office desk) skipped: outside its hours (active calendar)")
        to_backup, round_two, round_two_backup = events(status, "escalated")
        assert_on_time(round_two_backup, start + 20 * MINUTE)
        assert (round_two.tier, round_two_backup.tier) == (1, 2)
        assert told(status, "page") == ["erin"]
        assert told(status, "escalated") == ["carol", "carol"]
        assert "erin" not in told(status, "escalated"), "erin is not paged out of hours"
        assert (status.tier, status.round, status.owners) == (2, 1, ["carol"])
        await save_history(time_env.client, key, "oncall_tier_outside_active_hours")


# ── (5) who is on call: escalate oncall and GET /v1/oncall ────────────────────────────────


def real_time_schedule(tmp_path: Path) -> tuple[Path, list[datetime]]:
    """A daily rotation (carol, alice, bob) whose current turn began at its last hand-off,
    twelve hours' distance from now, and erin covering for two hours from the hand-off two days
    on: the folder, and the hand-offs from the current turn's (UTC)."""
    now = datetime.now(UTC).astimezone(LONDON)
    handoff = time((now.hour + 12) % 24, 0)
    began = now.date() if handoff <= now.time() else now.date() - DAY
    handoffs = [datetime.combine(began + n * DAY, handoff, LONDON) for n in range(4)]
    cover_from = handoffs[2].replace(tzinfo=None)
    cover = f"  - who: erin\n    from: {cover_from.isoformat()}\n    until: {(cover_from + 2 * HOUR).isoformat()}\n"
    primary = rotation(start=began, participants="[carol, alice, bob]", handoff=f"{handoff:%H:%M}", overrides=cover)
    return policy_folder(tmp_path, primary), [moment.astimezone(UTC) for moment in handoffs]


async def oncall(folder: Path, *args: str) -> Run:
    """``escalate oncall ARGS`` as a user runs it, with the test's policy folder."""
    return await escalate(cli_env(folder, ESCALATE_POLICY_DIR=str(folder)), "oncall", *args)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.slow  # runs the console script
async def test_escalate_oncall_shows_who_is_on_call_now_and_at_a_time(tmp_path: Path) -> None:
    folder, handoffs = real_time_schedule(tmp_path)
    # --at with an offset of its own: one minute before the second hand-off, in Tokyo time.
    minute_before = (handoffs[2] - MINUTE).astimezone(ZoneInfo("Asia/Tokyo")).isoformat()
    now, tomorrow, covered, gap, unknown, bad_time = await asyncio.gather(
        oncall(folder),
        oncall(folder, "primary", "--at", minute_before, "--json"),
        oncall(folder, "--at", iso(handoffs[2]), "--json"),
        oncall(folder, "primary", "--at", iso(handoffs[0] - HOUR)),
        oncall(folder, "primray"),
        oncall(folder, "--at", "next tuesday"),
    )
    assert now.returncode == 0, now.stderr
    assert now.stdout.split() == ["primary", "carol", "(rotation)", "until", *f"{handoffs[1]:%Y-%m-%d %H:%M:%S} UTC".split()]

    assert tomorrow.returncode == 0, tomorrow.stderr
    assert json.loads(tomorrow.stdout) == [
        {
            "schedule": "primary", "at": iso(handoffs[2] - MINUTE), "who": "alice", "layer": "rotation",
            "override": False, "until": iso(handoffs[2]),
        }
    ]
    [cover] = json.loads(covered.stdout)
    assert (cover["who"], cover["layer"], cover["override"]) == ("erin", "override", True), "erin's override, not bob"
    assert cover["until"] == iso(handoffs[2] + 2 * HOUR)
    assert gap.returncode == 0, gap.stderr
    assert gap.stdout.split()[:6] == ["primary", "NOBODY", "(a", "gap", "in", "the"], gap.stdout
    assert f"until {handoffs[0]:%Y-%m-%d %H:%M:%S} UTC" in gap.stdout, "until the rotation starts"

    assert unknown.returncode == 1
    assert "unknown schedule 'primray'" in unknown.stderr and "primary" in unknown.stderr
    assert bad_time.returncode == 2
    assert "--at" in bad_time.stderr and "ISO 8601" in bad_time.stderr


async def test_get_oncall_shows_who_is_on_call_now_and_at_a_time(tmp_path: Path) -> None:
    folder, handoffs = real_time_schedule(tmp_path)
    app = create_app(make_settings(policy_dir=folder))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://escalate.test", trust_env=False) as client:
        now = await client.get("/v1/oncall")
        assert now.status_code == 200, now.text
        [answer] = now.json()
        assert (answer["schedule"], answer["who"], answer["layer"], answer["until"]) == ("primary", "carol", "rotation", iso(handoffs[1]))

        later = await client.get("/v1/oncall", params={"schedule": "primary", "at": iso(handoffs[1] + MINUTE)})
        assert later.status_code == 200, later.text
        assert [(a["who"], a["at"], a["until"]) for a in later.json()] == [("alice", iso(handoffs[1] + MINUTE), iso(handoffs[2]))]
        covered = await client.get("/v1/oncall", params={"at": iso(handoffs[2] + HOUR)})
        assert [(a["who"], a["override"]) for a in covered.json()] == [("erin", True)]
        after = await client.get("/v1/oncall", params={"at": iso(handoffs[2] + 2 * HOUR)})
        assert [(a["who"], a["override"]) for a in after.json()] == [("bob", False)], "bob's turn once the override is over"
        assert [a["who"] for a in (await client.get("/v1/oncall", params={"at": iso(handoffs[3])})).json()] == ["carol"]
        before = await client.get("/v1/oncall", params={"at": iso(handoffs[0] - MINUTE)})
        assert [(a["who"], a["layer"]) for a in before.json()] == [(None, None)], "before the rotation starts"

        unknown = await client.get("/v1/oncall", params={"schedule": "secondary"})
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")
        assert "unknown schedule 'secondary'" in unknown.json()["detail"]
        bad = await client.get("/v1/oncall", params={"at": "soon"})
        assert bad.status_code == 422
        assert "ISO 8601" in bad.json()["detail"]
