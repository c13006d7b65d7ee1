"""Service-desk cases in business hours, on the time-skipping Temporal server.

The test server's clock only moves forward and the tests may run in any order, so each test
looks at the server's current time and moves it to a moment of its own choosing (the next
Friday 15:00 in London whose following weeks have no holiday and no clock change, the next
Christmas, the next daylight-saving change). Expected times are counted by hand in local
wall-clock time; the pure calendar functions are tested on their own in tests/unit/test_calendar.py.
Each scenario keeps its history under tests/histories/ as ``desk_<name>`` (replayed by
tests/test_replay.py).
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.messages import render
from activities.policy_store import PolicyStore
from escalate.settings import EXAMPLE_POLICIES
from starter.api import Escalations, IncidentRejected
from starter.review import review_incident
from tests.support.clock import LONDON, local, london, move_to
from tests.support.histories import save_history
from tests.support.incidents import start_new
from tests.support.mailbox import Mailbox, mail_to, parts, smtp_server
from tests.support.temporal import closed, make_settings, resolve_and_close, running, unique_key
from tests.support.timeline import assert_on_time, events, told
from workflows.calendar import Calendar, add_business_time, open_time_between
from workflows.model import REPORTER, IncidentStatus, Notification

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SENDER = "desk@escalate.test"
REPORTER_EMAIL = "customer@example.com"
UK_SUPPORT: Calendar = PolicyStore(EXAMPLE_POLICIES).calendars()["uk-support"]  # mon-fri 09:00-17:30


# ── reading the timeline ──────────────────────────────────────────────────────────────────


# ── London wall-clock time ────────────────────────────────────────────────────────────────


def same_time_on(moment: datetime, day: date) -> datetime:
    """``moment``'s London wall-clock time (to the microsecond) on another day."""
    return datetime.combine(day, moment.astimezone(LONDON).time(), LONDON).astimezone(UTC)


def ukd(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def business_days_after(calendar: Calendar, start: date, days: int) -> date:
    """Counted by hand, one calendar day at a time (the calendars here are open mon-fri)."""
    day, counted = start, 0
    while counted < days:
        day += DAY
        if day.weekday() < 5 and day not in calendar.holidays:
            counted += 1
    return day


def quiet(calendar: Calendar, first: date, days: int) -> bool:
    """No holiday and no clock change from ``first`` for ``days`` days."""
    span = [first + n * DAY for n in range(days + 1)]
    offsets = {london(day, 12).astimezone(LONDON).utcoffset() for day in span}
    return len(offsets) == 1 and not any(day in calendar.holidays for day in span)


def next_quiet_friday(now: datetime, calendar: Calendar, *, quiet_for: int) -> date:
    """The next Friday whose 15:00 is still ahead and whose next ``quiet_for`` days are plain."""
    day = ukd(now)
    while not (day.weekday() == 4 and london(day, 15) > now + MINUTE and quiet(calendar, day, quiet_for)):
        day += DAY
    return day


def policy_folder(tmp_path: Path, calendars_yaml: str) -> Path:
    """The example policies, with calendars.yaml of the test's own."""
    folder = tmp_path / "policies"
    shutil.copytree(EXAMPLE_POLICIES, folder)
    (folder / "calendars.yaml").write_text(calendars_yaml)
    return folder


async def open_case(escalations: Escalations, key: str, priority: str = "medium", **fields: str) -> IncidentStatus:
    return await start_new(escalations, "customer-support", key, priority, summary="Customer cannot export invoices", **fields)


# ── (1) a medium case opened on Friday afternoon ──────────────────────────────────────────


async def test_a_medium_case_from_friday_afternoon_is_reminded_thursday_and_escalates_next_friday_not_wednesday(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    friday = next_quiet_friday(await time_env.get_current_time(), UK_SUPPORT, quiet_for=8)
    await move_to(time_env, london(friday, 15))
    key = unique_key("desk-friday")
    opened = await open_case(escalations, key)
    trigger = opened.triggered_at
    assert trigger is not None
    assert (ukd(trigger).weekday(), trigger.astimezone(LONDON).hour) == (4, 15), local(trigger)
    assert (opened.priority, opened.tier_name, opened.owners) == ("P3", "L1 service desk", ["grace", "heidi"])

    thursday, next_friday = friday + 6 * DAY, friday + 7 * DAY
    assert opened.next_reminder_at == same_time_on(trigger, thursday)
    assert opened.next_escalation_at == same_time_on(trigger, next_friday) == trigger + 7 * DAY
    # resolve within 30 business days, counted by hand (holidays included)
    assert opened.resolve_by == same_time_on(trigger, business_days_after(UK_SUPPORT, friday, 30))

    # Wednesday afternoon is five calendar days on: in business time it is only three
    await move_to(time_env, london(friday + 5 * DAY, 16))
    wednesday = await escalations.status(key)
    assert (wednesday.status, wednesday.tier) == ("triggered", 1), "five calendar days are not five business days"
    assert events(wednesday, "escalated") == [] and events(wednesday, "reminded") == []

    await move_to(time_env, same_time_on(trigger, thursday) + MINUTE)
    status = await escalations.status(key)
    [reminder] = events(status, "reminded")
    assert_on_time(reminder, same_time_on(trigger, thursday))  # 4 business days: Mon, Tue, Wed, Thu
    assert told(status, what="reminder") == ["grace", "heidi"]
    assert status.tier == 1

    await move_to(time_env, same_time_on(trigger, next_friday) + MINUTE)
    status = await escalations.status(key)
    [to_l2] = events(status, "escalated")
    assert_on_time(to_l2, trigger + 7 * DAY)
    assert (status.tier, status.tier_name, status.owners) == (2, "L2 product specialists", ["alice", "bob"])
    assert told(status, what="escalated") == ["alice", "bob"]
    assert "no ack at tier 1 (L1 service desk) within 5d" in to_l2.detail
    # tier 2's five business days count from tier 1's deadline
    assert status.next_escalation_at == same_time_on(trigger, business_days_after(UK_SUPPORT, next_friday, 5))
    await save_history(time_env.client, key, "desk_friday_afternoon")


# ── (2) across the Christmas holidays ─────────────────────────────────────────────────────


def christmas_holidays(year: int) -> list[date]:
    """25 and 26 December and 1 January, each moved to the next weekday when on a weekend."""
    days: list[date] = []
    for day in (date(year, 12, 25), date(year, 12, 26), date(year + 1, 1, 1)):
        while day.weekday() >= 5 or day in days:
            day += DAY
        days.append(day)
    return days


async def test_a_case_across_christmas_skips_the_holidays(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    now = await time_env.get_current_time()
    year = ukd(now).year if london(date(ukd(now).year, 12, 22), 15) > now + MINUTE else ukd(now).year + 1
    opened_on = date(year, 12, 22)  # the last weekday on or before 22 December
    while opened_on.weekday() >= 5:
        opened_on -= DAY
    holidays = christmas_holidays(year)
    folder = policy_folder(
        tmp_path,
        "uk-support:\n  timezone: Europe/London\n  hours: {mon-fri: \"09:00-17:30\"}\n"
        f"  holidays: [{', '.join(day.isoformat() for day in holidays)}]\n",
    )
    calendar = PolicyStore(folder).calendars()["uk-support"]
    assert calendar.holidays == holidays

    async with running(time_env, make_settings(policy_dir=folder)) as escalations:
        await move_to(time_env, london(opened_on, 15))
        key = unique_key("desk-christmas")
        opened = await open_case(escalations, key)
        trigger = opened.triggered_at
        assert trigger is not None

        deadline_day = business_days_after(calendar, opened_on, 5)
        reminder_day = business_days_after(calendar, opened_on, 4)
        without_holidays = business_days_after(Calendar(timezone="Europe/London", hours={"mon-fri": "09:00-17:30"}), opened_on, 5)
        assert deadline_day > without_holidays, "the window spans the holidays"
        assert [day for day in holidays if opened_on < day < deadline_day], "and holidays fall inside it"
        assert opened.next_escalation_at == same_time_on(trigger, deadline_day)
        assert opened.next_reminder_at == same_time_on(trigger, reminder_day)

        # when the count without holidays would have escalated, nothing has happened yet
        await move_to(time_env, same_time_on(trigger, without_holidays) + HOUR)
        status = await escalations.status(key)
        assert events(status, "escalated") == [] and status.tier == 1
        assert [event.due_at for event in events(status, "reminded")] in ([], [same_time_on(trigger, reminder_day)])

        await move_to(time_env, same_time_on(trigger, deadline_day) + MINUTE)
        status = await escalations.status(key)
        [reminder] = events(status, "reminded")
        assert_on_time(reminder, same_time_on(trigger, reminder_day))
        [to_l2] = events(status, "escalated")
        assert_on_time(to_l2, same_time_on(trigger, deadline_day))
        assert ukd(to_l2.at) not in holidays and ukd(reminder.at) not in holidays
        assert status.tier == 2
        await save_history(time_env.client, key, "desk_christmas")


# ── (3) across a daylight-saving change ───────────────────────────────────────────────────


def next_clock_change_friday(now: datetime) -> date:
    """The Friday before the next Sunday on which London's clocks change (its 15:00 still ahead)."""
    day = ukd(now)
    while True:
        day += DAY
        changes = london(day, 12).astimezone(LONDON).utcoffset() != london(day - DAY, 12).astimezone(LONDON).utcoffset()
        if changes and london(day - 2 * DAY, 15) > now + MINUTE:
            assert day.weekday() == 6 and day.month in (3, 10), day
            return day - 2 * DAY


async def test_a_deadline_across_a_clock_change_keeps_its_local_time_and_moves_in_utc(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # A calendar without holidays, so that Easter (near the March change) stays out of the count.
    folder = policy_folder(tmp_path, 'uk-support:\n  timezone: Europe/London\n  hours: {mon-fri: "09:00-17:30"}\n')
    friday = next_clock_change_friday(await time_env.get_current_time())
    spring = friday.month == 3  # GMT to BST: 15:00 local is an hour earlier in UTC after it
    async with running(time_env, make_settings(policy_dir=folder)) as escalations:
        await move_to(time_env, london(friday, 15))
        key = unique_key("desk-dst")
        opened = await open_case(escalations, key)
        trigger = opened.triggered_at
        assert trigger is not None
        assert trigger.astimezone(UTC).hour == (15 if spring else 14), "15:00 GMT before March's change, BST before October's"

        deadline = same_time_on(trigger, friday + 7 * DAY)
        assert deadline.astimezone(LONDON).hour == 15
        assert deadline.astimezone(UTC).hour == (14 if spring else 15)
        assert deadline - trigger == 7 * DAY + (-HOUR if spring else HOUR)
        assert opened.next_escalation_at == deadline
        assert opened.next_reminder_at == same_time_on(trigger, friday + 6 * DAY)

        # a minute before the earlier of the local deadline and "seven days in UTC": still tier 1
        await move_to(time_env, min(deadline, trigger + 7 * DAY) - MINUTE)
        status = await escalations.status(key)
        assert status.tier == 1
        assert events(status, "escalated") == []

        await move_to(time_env, deadline + MINUTE)
        status = await escalations.status(key)
        [reminder] = events(status, "reminded")
        assert_on_time(reminder, same_time_on(trigger, friday + 6 * DAY))
        assert reminder.at.astimezone(LONDON).hour == 15
        [to_l2] = events(status, "escalated")
        assert_on_time(to_l2, deadline)
        assert to_l2.at.astimezone(LONDON).strftime("%a %H:%M") == "Fri 15:00"
        assert status.tier == 2
        await save_history(time_env.client, key, "desk_dst_change")


# ── (4) waiting on the customer ───────────────────────────────────────────────────────────


async def test_a_waiting_case_does_not_escalate_and_resumes_with_the_open_time_it_had_left(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    friday = next_quiet_friday(await time_env.get_current_time(), UK_SUPPORT, quiet_for=19)
    await move_to(time_env, london(friday, 15))
    key = unique_key("desk-wait")
    opened = await open_case(escalations, key)
    trigger = opened.triggered_at
    assert trigger is not None
    deadline = same_time_on(trigger, friday + 7 * DAY)
    assert opened.next_escalation_at == deadline
    resolve_by = opened.resolve_by
    assert resolve_by is not None

    # Tuesday 10:00: grace asks the customer for logs. Open time left (09:00-17:30):
    #   to the escalation: Tue 7.5h + Wed 8.5h + Thu 8.5h + Fri 6h = 30.5h
    #   to the reminder (Thursday 15:00): 7.5h + 8.5h + 6h = 22h
    await move_to(time_env, london(friday + 4 * DAY, 10))
    waiting = await escalations.wait_on_customer(key, by="grace", reason="asked the customer for the export logs")
    assert waiting.status == "waiting"
    paused_at = waiting.waiting_since
    assert paused_at is not None
    assert (waiting.next_escalation_at, waiting.next_reminder_at) == (None, None)
    [wait_event] = events(waiting, "waiting")
    assert (wait_event.who, wait_event.detail) == ("grace", "asked the customer for the export logs")

    # past the original reminder and deadline, and the weekend after: nothing happens
    await move_to(time_env, london(friday + 10 * DAY, 12))  # the Monday after, 12:00
    status = await escalations.status(key)
    assert (status.status, status.tier, status.waiting_since) == ("waiting", 1, paused_at)
    assert events(status, "reminded") == [] and events(status, "escalated") == []
    assert told(status, what="reminder") == [] and told(status, what="escalated") == []
    assert not status.sla_breached

    # Wednesday 14:00 of the next week: the customer answered
    await move_to(time_env, london(friday + 12 * DAY, 14))
    resumed = await escalations.resume(key, by="grace", note="logs received")
    [resume_event] = events(resumed, "resumed")
    resumed_at = resume_event.at
    assert resumed.status == "triggered" and resumed.waiting_since is None
    assert resume_event.who == "grace" and resume_event.detail.endswith(": logs received")
    # 30.5h from Wed 14:00: Wed 3.5h, Thu 8.5h, Fri 8.5h, Mon 8.5h, then 1.5h to Tuesday 10:30
    # 22h from Wed 14:00:   Wed 3.5h, Thu 8.5h, Fri 8.5h, then 1.5h to Monday 10:30
    # (give or take the milliseconds between the moves of the clock and the updates)
    new_deadline, new_reminder = resumed.next_escalation_at, resumed.next_reminder_at
    assert new_deadline is not None and new_reminder is not None
    offset = (resumed_at - london(friday + 12 * DAY, 14)) + (trigger - london(friday, 15)) - (paused_at - london(friday + 4 * DAY, 10))
    assert new_deadline == london(friday + 18 * DAY, 10, 30) + offset, local(new_deadline)
    assert new_reminder == london(friday + 17 * DAY, 10, 30) + offset, local(new_reminder)
    assert open_time_between(UK_SUPPORT, resumed_at, new_deadline) == open_time_between(UK_SUPPORT, paused_at, deadline)
    assert f"escalates at {new_deadline:%Y-%m-%d %H:%M:%S} UTC" in resume_event.detail
    # the resolution deadline moves by the open time spent waiting:
    # Tue 7.5h, Wed-Fri 25.5h, Mon-Tue 17h, Wed 5h = 55h
    assert resumed.resolve_by is not None
    assert open_time_between(UK_SUPPORT, paused_at, resumed_at) == 55 * HOUR - (paused_at - london(friday + 4 * DAY, 10)) + (
        resumed_at - london(friday + 12 * DAY, 14)
    )
    assert open_time_between(UK_SUPPORT, resolve_by, resumed.resolve_by) == open_time_between(UK_SUPPORT, paused_at, resumed_at)

    # the reminder comes on Monday 10:30, the escalation on Tuesday 10:30, exactly
    await move_to(time_env, new_reminder + MINUTE)
    status = await escalations.status(key)
    [reminder] = events(status, "reminded")
    assert_on_time(reminder, new_reminder)
    assert events(status, "escalated") == []
    await move_to(time_env, new_deadline - MINUTE)
    assert events(await escalations.status(key), "escalated") == []
    await move_to(time_env, new_deadline + MINUTE)
    status = await escalations.status(key)
    [to_l2] = events(status, "escalated")
    assert_on_time(to_l2, new_deadline)
    assert (status.tier, status.owners) == (2, ["alice", "bob"])
    assert told(status, what="escalated") == ["alice", "bob"]
    await save_history(time_env.client, key, "desk_wait_resume")


async def test_a_case_acknowledged_while_waiting_stays_waiting_and_never_escalates_after_the_resume(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("desk-wait-ack")
    opened = await open_case(escalations, key)
    resolve_by = opened.resolve_by
    assert resolve_by is not None
    await time_env.sleep(HOUR)
    waiting = await escalations.wait_on_customer(key, by="grace", reason="waiting for a screenshot")
    paused_at = waiting.waiting_since
    assert paused_at is not None

    acked = await escalations.acknowledge(key, by="heidi", note="I'll take it when they answer")
    assert (acked.status, acked.acknowledged_by, acked.owners) == ("waiting", "heidi", ["heidi"])
    with pytest.raises(IncidentRejected, match="already acknowledged by heidi"):
        await escalations.acknowledge(key, by="grace")

    await time_env.sleep(3 * DAY)
    resumed = await escalations.resume(key, by="heidi")
    [resume_event] = events(resumed, "resumed")
    assert (resumed.status, resumed.acknowledged_by) == ("acknowledged", "heidi")
    assert (resumed.next_escalation_at, resumed.next_reminder_at) == (None, None)
    assert resumed.resolve_by is not None
    assert open_time_between(UK_SUPPORT, resolve_by, resumed.resolve_by) == open_time_between(
        UK_SUPPORT, paused_at, resume_event.at
    ), "the SLA still runs, from where it stopped"

    await time_env.sleep(21 * DAY)  # well past every window of every tier
    status = await escalations.status(key)
    assert status.status == "acknowledged"
    assert events(status, "escalated") == [] and events(status, "reminded") == []
    assert told(status, what="page") == ["grace", "heidi"], "nothing pages after the ack"
    await escalations.resolve(key, by="heidi", resolution="export fixed")
    await save_history(time_env.client, key, "desk_ack_while_waiting")


async def test_the_sla_clock_stops_while_waiting_and_breaches_after_the_resume_when_its_time_runs_out(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("desk-wait-sla")
    opened = await open_case(escalations, key, priority="critical")  # resolve within 2 business days
    resolve_by = opened.resolve_by
    assert resolve_by is not None
    await escalations.acknowledge(key, by="grace")
    await time_env.sleep(MINUTE)
    waiting = await escalations.wait_on_customer(key, by="grace", reason="waiting for the customer's admin")
    paused_at = waiting.waiting_since
    assert paused_at is not None

    await move_to(time_env, resolve_by + 7 * DAY)  # a week past the resolution deadline
    status = await escalations.status(key)
    assert status.status == "waiting"
    assert not status.sla_breached and events(status, "sla_breached") == []

    resumed = await escalations.resume(key, by="grace")
    [resume_event] = events(resumed, "resumed")
    assert resumed.status == "acknowledged"
    new_resolve_by = resumed.resolve_by
    assert new_resolve_by is not None and new_resolve_by > resume_event.at
    left = open_time_between(UK_SUPPORT, paused_at, resolve_by)
    assert open_time_between(UK_SUPPORT, resume_event.at, new_resolve_by) == left
    assert f"resolve by {new_resolve_by:%Y-%m-%d %H:%M:%S} UTC" in resume_event.detail

    await move_to(time_env, new_resolve_by - MINUTE)
    assert not (await escalations.status(key)).sla_breached
    await move_to(time_env, new_resolve_by + MINUTE)
    status = await escalations.status(key)
    [breach] = events(status, "sla_breached")
    assert_on_time(breach, new_resolve_by)
    assert told(status, what="sla_breach") == ["dana"]
    await save_history(time_env.client, key, "desk_sla_stopped_while_waiting")


async def test_escalating_by_hand_while_waiting_ends_the_wait_and_pages_the_next_tier(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("desk-wait-up")
    opened = await open_case(escalations, key)
    resolve_by = opened.resolve_by
    assert resolve_by is not None
    waiting = await escalations.wait_on_customer(key, by="grace", reason="asked which invoices")
    paused_at = waiting.waiting_since
    assert paused_at is not None
    await time_env.sleep(2 * DAY)

    up = await escalations.escalate(key, by="grace", reason="the customer asks for a specialist")
    [manual] = events(up, "escalated")
    moved_at = manual.at
    assert (up.status, up.tier, up.owners, up.waiting_since) == ("triggered", 2, ["alice", "bob"], None)
    assert (manual.who, manual.tier) == ("grace", 2)
    # a full business-time window for tier 2 from now, and the SLA moved by the wait
    assert up.next_escalation_at == add_business_time(UK_SUPPORT, moved_at, 5 * DAY)
    assert up.resolve_by is not None
    assert open_time_between(UK_SUPPORT, resolve_by, up.resolve_by) == open_time_between(UK_SUPPORT, paused_at, moved_at)
    with pytest.raises(IncidentRejected, match="not waiting on the customer"):
        await escalations.resume(key, by="grace")

    await time_env.sleep(MINUTE)
    assert told(await escalations.status(key), what="escalated", after=moved_at) == ["alice", "bob"]
    await move_to(time_env, up.next_escalation_at + MINUTE)
    status = await escalations.status(key)
    to_l3 = events(status, "escalated")[-1]
    assert_on_time(to_l3, up.next_escalation_at)
    assert (status.tier, status.owners) == (3, ["carol"])
    await save_history(time_env.client, key, "desk_escalated_while_waiting")


async def test_resolving_while_waiting_closes_the_case_and_tells_everyone(
    time_env: WorkflowEnvironment, escalations: Escalations
) -> None:
    key = unique_key("desk-wait-resolve")
    await open_case(escalations, key, reporter=REPORTER_EMAIL)
    await time_env.sleep(MINUTE)
    await escalations.wait_on_customer(key, by="grace", reason="proposed a workaround")
    resolved = await escalations.resolve(key, by="grace", resolution="the workaround did it")
    assert (resolved.status, resolved.waiting_since, resolved.resolved_by) == ("resolved", None, "grace")
    final = await closed(time_env, key)
    assert final.status == "resolved"
    assert told(final, what="resolved") == sorted(["grace", "heidi", REPORTER])
    await save_history(time_env.client, key, "desk_resolved_while_waiting")


async def test_actions_refused_while_waiting_and_resume_when_not_waiting(escalations: Escalations) -> None:
    key = unique_key("desk-wait-refused")
    await open_case(escalations, key)
    with pytest.raises(IncidentRejected, match=f"incident {key} is not waiting on the customer \\(it is triggered\\)"):
        await escalations.resume(key, by="grace")
    await escalations.wait_on_customer(key, by="grace", reason="asked for the account number")
    with pytest.raises(IncidentRejected, match="already waiting on the customer"):
        await escalations.wait_on_customer(key, by="heidi", reason="again")
    for action, verb in (
        (escalations.snooze(key, duration="2h", by="grace"), "snoozed"),
        (escalations.reassign(key, policy="service-desk", by="grace", reason="wrong queue"), "reassigned"),
        (escalations.set_priority(key, priority="high", by="grace"), "given a new priority"),
    ):
        with pytest.raises(IncidentRejected) as refused:
            await action
        reason = str(refused.value)
        assert f"incident {key} is waiting on the customer (since " in reason, reason
        assert f"resume it first, then it can be {verb}" in reason, reason
    noted = await escalations.add_note(key, by="grace", text="customer is on holiday until Monday")
    assert noted.status == "waiting", "notes are fine while waiting"
    resumed = await escalations.resume(key, by="grace")
    assert resumed.status == "triggered"
    snoozed = await escalations.snooze(key, duration="2h", by="grace")
    assert snoozed.status == "snoozed", "after the resume, snoozing works again"
    with pytest.raises(IncidentRejected, match="is snoozed until .*: it cannot wait on the customer as well"):
        await escalations.wait_on_customer(key, by="grace", reason="also waiting")
    # (no history kept: the time-skipping server keeps the workflow tasks of refused updates,
    # which the real server drops, so such a history does not replay as a real one would)


# ── (5) what the reporter is told, by real email ──────────────────────────────────────────


def utc_text(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


async def test_the_reporter_is_told_the_real_business_deadlines_and_everyone_the_outcome(
    time_env: WorkflowEnvironment,
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as smtp:
        settings = make_settings(smtp_url=smtp.url, smtp_from=SENDER)
        async with running(time_env, settings) as escalations:
            friday = next_quiet_friday(await time_env.get_current_time(), UK_SUPPORT, quiet_for=18)
            await move_to(time_env, london(friday, 15))
            key = unique_key("desk-mail")
            opened = await open_case(escalations, key, reporter=REPORTER_EMAIL)
            trigger = opened.triggered_at
            assert trigger is not None
            first_response = same_time_on(trigger, friday + 7 * DAY)  # 5 business days
            assert opened.next_escalation_at == first_response

            [update] = await mail_to(mailbox, REPORTER_EMAIL, 1)
            assert update.message["Subject"].strip() == f"Update on your report: Customer cannot export invoices (reference {key})"
            text = parts(update.message)[0]
            assert "L1 service desk is on it" in text
            assert f"You can expect a response by {utc_text(first_response)}" in text, text
            assert utc_text(trigger + 5 * DAY) not in text, "not five calendar days"
            assert "escalate ack" not in text, "the reporter is not asked to acknowledge"

            # no ack in five business days: tier 2, and the reporter hears the new time
            await move_to(time_env, first_response + MINUTE)
            second_response = same_time_on(trigger, friday + 14 * DAY)
            _, escalated = await mail_to(mailbox, REPORTER_EMAIL, 2)
            text = parts(escalated.message)[0]
            assert "has been escalated: it is now with L2 product specialists" in text, text
            assert f"You can expect a response by {utc_text(second_response)}" in text, text
            status = await escalations.status(key)
            assert status.next_escalation_at == second_response

            # Monday 10:00: alice escalates by hand; five business days from then
            await move_to(time_env, london(friday + 10 * DAY, 10))
            up = await escalations.escalate(key, by="alice", reason="needs the support manager's approval")
            moved_at = events(up, "escalated")[-1].at
            third_response = same_time_on(moved_at, friday + 17 * DAY)
            assert up.next_escalation_at == third_response
            assert london(friday + 17 * DAY, 10) <= third_response < london(friday + 17 * DAY, 10) + MINUTE
            *_, by_hand = await mail_to(mailbox, REPORTER_EMAIL, 3)
            text = parts(by_hand.message)[0]
            assert "it is now with L3 support manager" in text, text
            assert f"You can expect a response by {utc_text(third_response)}" in text, text

            await time_env.sleep(HOUR)
            final = await resolve_and_close(time_env, escalations, key, by="carol", resolution="refund of the export fee approved")
            assert final.status == "resolved"

            # the feedback loop: the reporter, and everyone who was paged, among them alice who escalated it
            *_, outcome = await mail_to(mailbox, REPORTER_EMAIL, 4)
            assert outcome.message["Subject"].strip() == f"Resolved: Customer cannot export invoices (reference {key})"
            assert "Outcome: refund of the export fee approved" in parts(outcome.message)[0]
            for person in ("grace", "heidi", "alice", "bob", "carol"):
                mails = mailbox.to(f"{person}@example.com")
                resolved = [m for m in mailbox.to(f"{person}@example.com") if m.message["Subject"].strip().startswith("Resolved:")]
                assert len(resolved) == 1, (person, [m.message["Subject"] for m in mails])
                assert resolved[0].message["Subject"].strip() == f"Resolved: Customer cannot export invoices (incident {key})"
                assert "Outcome: refund of the export fee approved" in parts(resolved[0].message)[0]
            assert not [m for m in mailbox.to("dana@example.com") if m.message["Subject"].strip().startswith("Resolved:")], (
                "the manager was never paged"
            )
            assert told(final, what="customer_update") == [REPORTER] * 3
            await save_history(time_env.client, key, "desk_reporter_emails")


# ── (6) an SLA breach in business time ────────────────────────────────────────────────────

SLA_REASON = "the customer's ERP vendor took four days to send the export spec"


async def test_a_business_time_sla_breach_asks_the_manager_why_and_keeps_the_reason(
    time_env: WorkflowEnvironment,
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as smtp:
        async with running(time_env, make_settings(smtp_url=smtp.url, smtp_from=SENDER)) as escalations:
            friday = next_quiet_friday(await time_env.get_current_time(), UK_SUPPORT, quiet_for=5)
            await move_to(time_env, london(friday, 15))
            key = unique_key("desk-sla")
            opened = await open_case(escalations, key, priority="critical")
            trigger = opened.triggered_at
            assert trigger is not None
            tuesday = same_time_on(trigger, friday + 4 * DAY)  # 2 business days: Monday, Tuesday
            assert opened.resolve_by == tuesday
            # 4 open hours: 2.5h on Friday to 17:30, 1.5h on Monday
            assert opened.next_escalation_at == london(friday + 3 * DAY, 10, 30) + (trigger - london(friday, 15))
            await time_env.sleep(5 * MINUTE)
            await escalations.acknowledge(key, by="grace")

            # Sunday 15:00 is two calendar days on; Monday afternoon is one business day
            await move_to(time_env, london(friday + 3 * DAY, 16))
            assert not (await escalations.status(key)).sla_breached
            with pytest.raises(IncidentRejected, match="has not breached its resolution SLA"):
                await escalations.explain_sla(key, by="dana", reason="too early")

            await move_to(time_env, tuesday + MINUTE)
            status = await escalations.status(key)
            assert status.sla_breached
            [breach] = events(status, "sla_breached")
            assert_on_time(breach, tuesday)
            assert (breach.who, breach.detail) == ("dana", "not resolved within 2d (P1); manager dana asked why")
            assert status.status == "acknowledged", "a breach is recorded; the case carries on"
            [notice] = await mail_to(mailbox, "dana@example.com", 1)
            subject = notice.message["Subject"].strip()
            assert subject == f"SLA breached: [P1] customer-support: Customer cannot export invoices (incident {key})"
            text = parts(notice.message)[0]
            assert "was not resolved within its resolution SLA" in text
            assert "Please tell us why the SLA was violated" in text

            explained = await escalations.explain_sla(key, by="dana", reason=SLA_REASON)
            assert explained.sla_reason == SLA_REASON
            [reason] = events(explained, "sla_reason")
            assert (reason.who, reason.detail) == ("dana", SLA_REASON)
            assert (await escalations.status(key)).sla_reason == SLA_REASON

            await time_env.sleep(HOUR)
            final = await resolve_and_close(time_env, escalations, key, by="grace", resolution="export spec implemented")
            assert (final.sla_breached, final.sla_reason) == (True, SLA_REASON)
            review = await review_incident(time_env.client, key)
            assert review.sla.reason == SLA_REASON
            assert review.sla.resolve_by == tuesday and review.sla.breached
            await save_history(time_env.client, key, "desk_sla_breach")


async def test_the_sla_breach_notice_names_the_command_that_records_the_reason() -> None:
    notice = Notification(
        idempotency_key="case-1/9/dana",
        kind="sla_breach",
        incident_key="case-1",
        policy="customer-support",
        priority="P1",
        summary="Customer cannot export invoices",
        person="dana",
        channel="email",
        address="dana@example.com",
        tier=1,
        tier_name="L1 service desk",
        tier_count=3,
    )
    assert "escalate sla-reason case-1 --by dana" in render(notice).text
