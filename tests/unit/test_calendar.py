"""Business-hours calendars and business time, as pure functions: no server, no clock.

A window in business time counts its days as business days and its hours and minutes as open
time, in the calendar's own time zone: opening hours are wall-clock times there, so they stay at
09:00 across daylight-saving changes while the UTC times shift by an hour. Every expected time
here is counted by hand (or by a plain day-by-day count), never by the code under test.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.policy_store import PolicyError, PolicyStore, check_paths
from tests.support.cli import policy_check
from tests.support.paths import EXAMPLES
from tests.support.policies import line_of
from workflows.calendar import (
    Calendar,
    add_business_days,
    add_business_time,
    add_open_time,
    next_open,
    open_time_between,
    subtract_business_time,
    subtract_open_time,
)
from workflows.decisions import TierClock, clock_for_tier, pause_clocks, resolve_by, resume_clocks
from workflows.policy import Directory, Policy, PolicySnapshot, Windows, calendar_problem, snapshot

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
ZERO = timedelta(0)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, zone: ZoneInfo = LONDON) -> datetime:
    """A wall-clock time in ``zone``, as the aware UTC moment the functions take and return."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def wall(moment: datetime, zone: ZoneInfo = LONDON) -> tuple[str, str]:
    """``("Fri 2026-12-04", "15:00")``: what a person in ``zone`` reads on the calendar and clock."""
    local = moment.astimezone(zone)
    return local.strftime("%a %Y-%m-%d"), local.strftime("%H:%M")


# 2026: Fri 27 Nov; Christmas Day is a Friday, Boxing Day a Saturday (substitute Mon 28 Dec).
# Europe/London: clocks go back on Sun 2026-10-25, forward on Sun 2027-03-28.
OFFICE = Calendar(timezone="Europe/London", hours={"mon-fri": "09:00-17:00"})
CHRISTMAS = Calendar(
    timezone="Europe/London",
    hours={"mon-fri": "09:00-17:00"},
    holidays=[date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 1)],
)
LUNCH = Calendar(timezone="Europe/London", hours={"mon-fri": "09:00-12:30, 13:30-17:00"})
ALWAYS = Calendar(timezone="Europe/London", hours={"mon-sun": "00:00-24:00"})
UK_SUPPORT = Calendar(  # examples/policies/calendars.yaml
    timezone="Europe/London",
    hours={"mon-fri": "09:00-17:30"},
    holidays=[date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 1), date(2027, 3, 26), date(2027, 3, 29)],
)


# ── the calendar itself ───────────────────────────────────────────────────────────────────


def test_day_ranges_expand_to_each_weekday_and_other_days_are_closed() -> None:
    calendar = Calendar(timezone="Europe/London", hours={"mon-thu": "09:00-17:00", "fri": "09:00-13:00", "sat": "closed"})
    assert calendar.hours["mon"] == calendar.hours["thu"] == [(time(9), time(17))]
    assert calendar.hours["fri"] == [(time(9), time(13))]
    assert calendar.hours["sat"] == []
    assert "sun" not in calendar.hours
    assert [calendar.is_business_day(date(2026, 11, 23) + n * DAY) for n in range(7)] == [True] * 5 + [False] * 2


def test_a_day_range_may_wrap_round_the_week() -> None:
    calendar = Calendar(timezone="Asia/Dubai", hours={"sun-thu": "08:00-16:00"})
    assert sorted(calendar.hours) == ["mon", "sun", "thu", "tue", "wed"]
    assert calendar.is_business_day(date(2026, 11, 29))  # a Sunday
    assert not calendar.is_business_day(date(2026, 11, 27))  # a Friday


def test_holidays_are_closed_all_day() -> None:
    assert not CHRISTMAS.is_business_day(date(2026, 12, 25))
    assert not CHRISTMAS.is_business_day(date(2026, 12, 28))
    assert CHRISTMAS.is_business_day(date(2026, 12, 24))
    assert CHRISTMAS.open_intervals(date(2026, 12, 25)) == []
    assert not CHRISTMAS.is_open(at(2026, 12, 25, 12))


def test_open_intervals_are_local_hours_as_utc() -> None:
    assert OFFICE.open_intervals(date(2026, 11, 27)) == [(utc(2026, 11, 27, 9), utc(2026, 11, 27, 17))]  # GMT
    assert OFFICE.open_intervals(date(2026, 7, 3)) == [(utc(2026, 7, 3, 8), utc(2026, 7, 3, 16))]  # BST
    assert OFFICE.open_intervals(date(2026, 11, 28)) == []  # Saturday
    assert LUNCH.open_intervals(date(2026, 11, 27)) == [
        (utc(2026, 11, 27, 9), utc(2026, 11, 27, 12, 30)),
        (utc(2026, 11, 27, 13, 30), utc(2026, 11, 27, 17)),
    ]
    # 24:00 is midnight at the end of the day
    assert ALWAYS.open_intervals(date(2026, 11, 27)) == [(utc(2026, 11, 27), utc(2026, 11, 28))]


def test_is_open_includes_the_opening_minute_and_excludes_the_closing_one() -> None:
    assert OFFICE.is_open(at(2026, 11, 27, 9))
    assert OFFICE.is_open(at(2026, 11, 27, 16, 59))
    assert not OFFICE.is_open(at(2026, 11, 27, 17))
    assert not OFFICE.is_open(at(2026, 11, 27, 8, 59))
    assert not LUNCH.is_open(at(2026, 11, 27, 12, 45))
    assert LUNCH.is_open(at(2026, 11, 27, 13, 30))


def test_next_open() -> None:
    assert next_open(OFFICE, at(2026, 11, 27, 15)) == at(2026, 11, 27, 15), "open: that very moment"
    assert next_open(OFFICE, at(2026, 11, 27, 17)) == at(2026, 11, 30, 9), "Friday closing: Monday opening"
    assert next_open(OFFICE, at(2026, 11, 28, 10)) == at(2026, 11, 30, 9), "Saturday: Monday opening"
    assert next_open(OFFICE, at(2026, 11, 30, 7)) == at(2026, 11, 30, 9), "before opening: opening"
    assert next_open(LUNCH, at(2026, 11, 27, 12, 45)) == at(2026, 11, 27, 13, 30), "lunch: after lunch"
    assert next_open(CHRISTMAS, at(2026, 12, 24, 18)) == at(2026, 12, 29, 9), "Christmas and Boxing Day closed"


# ── business days and open time ───────────────────────────────────────────────────────────


def test_five_business_days_from_friday_afternoon_end_next_friday_afternoon_not_wednesday() -> None:
    friday = at(2026, 11, 27, 15)
    deadline = add_business_time(OFFICE, friday, 5 * DAY)
    assert wall(deadline) == ("Fri 2026-12-04", "15:00")
    assert deadline != friday + 5 * DAY, "five calendar days would end on Wednesday"
    assert wall(friday + 5 * DAY) == ("Wed 2026-12-02", "15:00")
    assert open_time_between(OFFICE, friday, deadline) == 5 * 8 * HOUR


def test_four_hours_from_friday_15_00_end_monday_11_00() -> None:
    deadline = add_business_time(OFFICE, at(2026, 11, 27, 15), 4 * HOUR)
    assert wall(deadline) == ("Mon 2026-11-30", "11:00")
    assert add_open_time(OFFICE, at(2026, 11, 27, 15), 4 * HOUR) == deadline


def test_days_and_hours_together() -> None:
    # 1d4h from Friday 15:00: one business day to Monday 15:00, then 2h Monday, 2h Tuesday
    assert wall(add_business_time(OFFICE, at(2026, 11, 27, 15), DAY + 4 * HOUR)) == ("Tue 2026-12-01", "11:00")


def test_a_case_opened_on_saturday_starts_counting_at_monday_opening() -> None:
    saturday = at(2026, 11, 28, 10, 30)
    assert add_business_time(OFFICE, saturday, 0 * DAY) == at(2026, 11, 30, 9)
    assert wall(add_business_time(OFFICE, saturday, 5 * DAY)) == ("Mon 2026-12-07", "09:00")
    assert wall(add_business_time(OFFICE, saturday, 4 * HOUR)) == ("Mon 2026-11-30", "13:00")
    assert wall(add_business_time(OFFICE, at(2026, 11, 30, 6), 1 * HOUR)) == ("Mon 2026-11-30", "10:00")


def test_open_time_ending_exactly_at_closing_time_ends_then() -> None:
    assert wall(add_open_time(OFFICE, at(2026, 11, 27, 13), 4 * HOUR)) == ("Fri 2026-11-27", "17:00")
    assert wall(add_open_time(OFFICE, at(2026, 11, 27, 13), 4 * HOUR + MINUTE)) == ("Mon 2026-11-30", "09:01")


def test_holidays_are_skipped_in_a_week_with_christmas_and_boxing_day() -> None:
    wednesday = at(2026, 12, 23, 15)
    # Thu 24 is one; Fri 25 (Christmas), the weekend and Mon 28 (Boxing Day, substitute) are not
    assert wall(add_business_time(CHRISTMAS, wednesday, 2 * DAY)) == ("Tue 2026-12-29", "15:00")
    assert wall(add_business_time(CHRISTMAS, wednesday, 5 * DAY)) == ("Mon 2027-01-04", "15:00")  # Jan 1 too
    assert wall(add_business_time(CHRISTMAS, at(2026, 12, 24, 15), 4 * HOUR)) == ("Tue 2026-12-29", "11:00")
    assert open_time_between(CHRISTMAS, at(2026, 12, 24, 9), at(2026, 12, 29, 17)) == 16 * HOUR
    # a case opened on Christmas Day starts counting on the 29th
    assert add_business_time(CHRISTMAS, at(2026, 12, 25, 11), 0 * DAY) == at(2026, 12, 29, 9)
    # without the holidays, the same windows are shorter
    assert wall(add_business_time(OFFICE, wednesday, 2 * DAY)) == ("Fri 2026-12-25", "15:00")


def test_lunch_breaks_are_not_open_time() -> None:
    assert wall(add_open_time(LUNCH, at(2026, 11, 27, 12), HOUR)) == ("Fri 2026-11-27", "14:00")
    assert wall(add_open_time(LUNCH, at(2026, 11, 27, 12, 45), 30 * MINUTE)) == ("Fri 2026-11-27", "14:00")
    assert wall(add_open_time(LUNCH, at(2026, 11, 27, 12), 30 * MINUTE)) == ("Fri 2026-11-27", "12:30")
    assert open_time_between(LUNCH, at(2026, 11, 27), at(2026, 11, 28)) == 7 * HOUR
    # 8h of open time from Friday 09:00 is Monday 10:00 (7h Friday, 1h Monday)
    assert wall(add_business_time(LUNCH, at(2026, 11, 27, 9), 8 * HOUR)) == ("Mon 2026-11-30", "10:00")
    # one business day from lunchtime counts from when lunch ends
    assert wall(add_business_time(LUNCH, at(2026, 11, 27, 12, 45), DAY)) == ("Mon 2026-11-30", "13:30")
    assert wall(subtract_open_time(LUNCH, at(2026, 11, 27, 14), HOUR)) == ("Fri 2026-11-27", "12:00")
    # an amount that ends exactly at an opening ends there, not at the closing before it
    assert subtract_open_time(OFFICE, at(2026, 11, 30, 11), 2 * HOUR) == at(2026, 11, 30, 9)


def test_a_business_day_ending_on_a_shorter_day_ends_at_its_closing_time() -> None:
    calendar = Calendar(timezone="Europe/London", hours={"mon-thu": "09:00-17:00", "fri": "09:00-13:00"})
    assert wall(add_business_days(calendar, at(2026, 11, 26, 15), 1)) == ("Fri 2026-11-27", "13:00")
    assert wall(add_business_days(calendar, at(2026, 11, 26, 11), 1)) == ("Fri 2026-11-27", "11:00")


def test_a_business_day_landing_in_a_break_or_before_opening_takes_the_nearest_open_moment() -> None:
    calendar = Calendar(
        timezone="Europe/London", hours={"mon": "09:00-17:00", "tue": "09:00-12:00, 14:00-17:00", "wed": "10:00-17:00"}
    )
    assert wall(add_business_days(calendar, at(2026, 11, 30, 13), 1)) == ("Tue 2026-12-01", "12:00")
    assert wall(add_business_days(calendar, at(2026, 12, 1, 9, 30), 1)) == ("Wed 2026-12-02", "10:00")


def hand_count(calendar: Calendar, start_day: date, days: int) -> date:
    """The date ``days`` business days after ``start_day``, counted one calendar day at a time."""
    holidays = set(calendar.holidays)
    day, counted = start_day, 0
    while counted < days:
        day += DAY
        if day.weekday() < 5 and day not in holidays:
            counted += 1
    return day


def test_thirty_business_days_across_christmas_as_counted_by_hand() -> None:
    # Dec: 5+5+5 (to the 18th), 21-24 (4), 29-31 (3) = 22; Jan: 4-8 (5) = 27; 11, 12, 13 = 30
    deadline = add_business_time(CHRISTMAS, at(2026, 11, 27, 15), 30 * DAY)
    assert wall(deadline) == ("Wed 2027-01-13", "15:00")
    assert hand_count(CHRISTMAS, date(2026, 11, 27), 30) == date(2027, 1, 13)
    assert open_time_between(CHRISTMAS, at(2026, 11, 27, 15), deadline) == 30 * 8 * HOUR


def test_many_week_windows_equal_a_day_by_day_count_whatever_the_start() -> None:
    rng = random.Random(7)
    calendar = UK_SUPPORT
    for _ in range(300):
        day = date(2026, 1, 1) + rng.randrange(3 * 365) * DAY
        if not calendar.is_business_day(day):
            continue
        clock = time(rng.randrange(9, 17), rng.randrange(60))  # always open (09:00-17:30)
        start = datetime.combine(day, clock, LONDON).astimezone(UTC)
        days = rng.randrange(0, 70)
        expected = datetime.combine(hand_count(calendar, day, days), clock, LONDON).astimezone(UTC)
        assert add_business_time(calendar, start, days * DAY) == expected, (start, days)


# ── daylight-saving changes ───────────────────────────────────────────────────────────────


def test_spring_forward_keeps_opening_at_local_9_00_and_the_utc_times_shift() -> None:
    # Europe/London: clocks go forward at 01:00 UTC on Sunday 2027-03-28 (GMT to BST)
    assert OFFICE.open_intervals(date(2027, 3, 26)) == [(utc(2027, 3, 26, 9), utc(2027, 3, 26, 17))]
    assert OFFICE.open_intervals(date(2027, 3, 29)) == [(utc(2027, 3, 29, 8), utc(2027, 3, 29, 16))]
    friday = at(2027, 3, 26, 15)
    assert friday == utc(2027, 3, 26, 15)
    deadline = add_business_time(OFFICE, friday, 5 * DAY)
    assert wall(deadline) == ("Fri 2027-04-02", "15:00")
    assert deadline == utc(2027, 4, 2, 14), "15:00 BST is 14:00 UTC"
    assert deadline - friday == 7 * DAY - HOUR
    assert wall(add_business_time(OFFICE, at(2027, 3, 26, 16), 2 * HOUR)) == ("Mon 2027-03-29", "10:00")
    assert open_time_between(OFFICE, at(2027, 3, 26, 9), at(2027, 3, 29, 17)) == 16 * HOUR, "still 8h a day"


def test_fall_back_keeps_opening_at_local_9_00_and_the_utc_times_shift() -> None:
    # Europe/London: clocks go back at 01:00 UTC on Sunday 2026-10-25 (BST to GMT)
    assert OFFICE.open_intervals(date(2026, 10, 23)) == [(utc(2026, 10, 23, 8), utc(2026, 10, 23, 16))]
    assert OFFICE.open_intervals(date(2026, 10, 26)) == [(utc(2026, 10, 26, 9), utc(2026, 10, 26, 17))]
    friday = at(2026, 10, 23, 15)
    assert friday == utc(2026, 10, 23, 14)
    deadline = add_business_time(OFFICE, friday, 5 * DAY)
    assert wall(deadline) == ("Fri 2026-10-30", "15:00")
    assert deadline == utc(2026, 10, 30, 15)
    assert deadline - friday == 7 * DAY + HOUR
    assert next_open(OFFICE, at(2026, 10, 23, 18)) == utc(2026, 10, 26, 9)


def test_other_zones_change_on_their_own_dates() -> None:
    # New York falls back on Sunday 2026-11-01, a week after London
    new_york = Calendar(timezone="America/New_York", hours={"mon-fri": "09:00-17:00"}, holidays=[date(2026, 11, 26)])
    friday = at(2026, 10, 30, 15, zone=NEW_YORK)
    assert friday == utc(2026, 10, 30, 19)
    assert add_business_time(new_york, friday, 5 * DAY) == utc(2026, 11, 6, 20), "15:00 EST is 20:00 UTC"
    # Thanksgiving (Thu 26 Nov) is a holiday there
    assert wall(add_business_time(new_york, at(2026, 11, 25, 10, zone=NEW_YORK), DAY), NEW_YORK) == ("Fri 2026-11-27", "10:00")
    # and a zone without daylight saving keeps its UTC times all year
    kolkata = Calendar(timezone="Asia/Kolkata", hours={"mon-fri": "09:30-18:00"})
    assert kolkata.open_intervals(date(2026, 7, 1)) == [(utc(2026, 7, 1, 4), utc(2026, 7, 1, 12, 30))]
    assert kolkata.open_intervals(date(2027, 1, 4)) == [(utc(2027, 1, 4, 4), utc(2027, 1, 4, 12, 30))]


def test_a_24_hour_calendar_counts_real_elapsed_hours_across_the_changes() -> None:
    # the spring-forward Sunday has 23 hours, the fall-back Sunday 25
    assert open_time_between(ALWAYS, at(2027, 3, 28), at(2027, 3, 29)) == 23 * HOUR
    assert open_time_between(ALWAYS, at(2026, 10, 25), at(2026, 10, 26)) == 25 * HOUR
    assert open_time_between(ALWAYS, at(2027, 3, 27), at(2027, 3, 29)) == 47 * HOUR
    assert open_time_between(ALWAYS, at(2026, 10, 24), at(2026, 10, 26)) == 49 * HOUR
    start = at(2027, 3, 27, 12)
    assert add_open_time(ALWAYS, start, 30 * HOUR) == start + 30 * HOUR
    # a business day is the same local time the next day: 23 real hours across spring-forward
    assert wall(add_business_days(ALWAYS, start, 1)) == ("Sun 2027-03-28", "12:00")
    assert add_business_days(ALWAYS, start, 1) - start == 23 * HOUR
    assert add_business_days(ALWAYS, at(2026, 10, 24, 12), 1) - at(2026, 10, 24, 12) == 25 * HOUR
    rng = random.Random(24)
    for _ in range(200):
        moment = utc(2026, 9, 1) + rng.randrange(300 * 24 * 60) * MINUTE
        amount = rng.randrange(0, 40 * 24 * 60) * MINUTE
        assert add_open_time(ALWAYS, moment, amount) == moment + amount
        assert subtract_open_time(ALWAYS, moment, amount) == moment - amount
        assert open_time_between(ALWAYS, moment, moment + amount) == amount


def test_opening_hours_across_the_clock_change_count_the_real_time_open() -> None:
    night = Calendar(timezone="Europe/London", hours={"sun": "00:30-03:30"})
    assert open_time_between(night, at(2027, 3, 28), at(2027, 3, 29)) == 2 * HOUR  # an hour skipped
    assert open_time_between(night, at(2026, 10, 25), at(2026, 10, 26)) == 4 * HOUR  # an hour twice
    assert open_time_between(night, at(2026, 11, 1), at(2026, 11, 2)) == 3 * HOUR


# ── inverses: a seeded random loop (hypothesis is not among the test extras) ────────────────


PROPERTY_CALENDARS = {
    "office": CHRISTMAS,
    "lunch": LUNCH,
    "always": ALWAYS,
    "uk-support": UK_SUPPORT,
    "new-york": Calendar(
        timezone="America/New_York", hours={"mon-fri": "08:30-17:00"}, holidays=[date(2026, 11, 26), date(2027, 7, 5)]
    ),
    "sydney": Calendar(timezone="Australia/Sydney", hours={"mon-fri": "08:30-17:00"}),  # DST in October and April
    "weekend-shop": Calendar(timezone="Europe/Berlin", hours={"sat-sun": "10:00-16:00"}),
    "night-shift": Calendar(timezone="Europe/London", hours={"mon-fri": "00:00-06:00, 22:00-24:00"}),
    "dst-gap": Calendar(timezone="Europe/London", hours={"sun": "00:30-03:30", "wed": "09:00-09:01"}),
}


def random_moment(rng: random.Random) -> datetime:
    """Any second of 2026-2027, so that every daylight-saving change is crossed often."""
    return utc(2026, 1, 1) + timedelta(seconds=rng.randrange(2 * 365 * 86400))


@pytest.mark.parametrize("name", sorted(PROPERTY_CALENDARS))
def test_open_time_between_is_the_inverse_of_add_open_time(name: str) -> None:
    calendar = PROPERTY_CALENDARS[name]
    rng = random.Random(f"inverse-{name}")
    for _ in range(250):
        start = random_moment(rng)
        amount = timedelta(seconds=rng.randrange(0, 200 * 3600))
        end = add_open_time(calendar, start, amount)
        assert end >= start
        assert open_time_between(calendar, start, end) == amount, (name, start, amount, end)
        # the result is where the amount is first reached: open then, or the close it ends at
        assert calendar.is_open(end) or any(
            closes == end for opens, closes in calendar.open_intervals(end.astimezone(calendar.zone).date())
        ) or any(
            closes == end
            for opens, closes in calendar.open_intervals(end.astimezone(calendar.zone).date() - DAY)
        ), (name, start, amount, end)
        # and subtracting the same amount from the end comes back to the same open time
        back = subtract_open_time(calendar, end, amount)
        assert open_time_between(calendar, back, end) == amount
        assert open_time_between(calendar, min(back, start), max(back, start)) == ZERO


@pytest.mark.parametrize("name", sorted(PROPERTY_CALENDARS))
def test_add_open_time_of_the_open_time_between_reaches_the_end(name: str) -> None:
    calendar = PROPERTY_CALENDARS[name]
    rng = random.Random(f"between-{name}")
    for _ in range(250):
        start = random_moment(rng)
        end = start + timedelta(seconds=rng.randrange(0, 40 * 86400))
        between = open_time_between(calendar, start, end)
        assert ZERO <= between <= end - start
        reached = add_open_time(calendar, start, between)
        # the same open time; the very moment when the end is inside an open interval
        assert open_time_between(calendar, min(reached, end), max(reached, end)) == ZERO
        inside = any(opens < end < closes for opens, closes in calendar.open_intervals(end.astimezone(calendar.zone).date()))
        if between > ZERO and inside:
            assert reached == end, (name, start, end)
        assert open_time_between(calendar, end, start) == ZERO, "nothing between a later start and an earlier end"


@pytest.mark.parametrize("name", sorted(PROPERTY_CALENDARS))
def test_open_time_adds_up(name: str) -> None:
    calendar = PROPERTY_CALENDARS[name]
    rng = random.Random(f"adds-{name}")
    for _ in range(150):
        start = random_moment(rng)
        first = timedelta(seconds=rng.randrange(0, 80 * 3600))
        second = timedelta(seconds=rng.randrange(1, 80 * 3600))
        assert add_open_time(calendar, add_open_time(calendar, start, first), second) == add_open_time(
            calendar, start, first + second
        )
        middle = start + timedelta(seconds=rng.randrange(0, 20 * 86400))
        end = middle + timedelta(seconds=rng.randrange(0, 20 * 86400))
        assert open_time_between(calendar, start, end) == open_time_between(calendar, start, middle) + open_time_between(
            calendar, middle, end
        )
        opened = next_open(calendar, start)
        assert calendar.is_open(opened) and open_time_between(calendar, start, opened) == ZERO


def test_subtract_business_time_inverts_add_for_reminders() -> None:
    # remind_before 1d of a 5d deadline: 4 business days after the start
    friday = at(2026, 11, 27, 15)
    deadline = add_business_time(OFFICE, friday, 5 * DAY)
    assert subtract_business_time(OFFICE, deadline, DAY) == add_business_time(OFFICE, friday, 4 * DAY)
    assert wall(subtract_business_time(OFFICE, deadline, DAY)) == ("Thu 2026-12-03", "15:00")
    # hours are open time back: 2h before Monday 10:00 is Friday 16:00
    assert wall(subtract_business_time(OFFICE, at(2026, 11, 30, 10), 2 * HOUR)) == ("Fri 2026-11-27", "16:00")
    # days and hours: 1d2h before Tuesday 10:00 is Friday 16:00
    assert wall(subtract_business_time(OFFICE, at(2026, 12, 1, 10), DAY + 2 * HOUR)) == ("Fri 2026-11-27", "16:00")
    # across the holidays: 2d before Tue 29 Dec 15:00 is Wed 23 Dec 15:00
    assert wall(subtract_business_time(CHRISTMAS, at(2026, 12, 29, 15), 2 * DAY)) == ("Wed 2026-12-23", "15:00")
    # across spring-forward: 1d before Monday 29 March 10:00 BST is Friday 26 March 10:00 GMT
    assert subtract_business_time(OFFICE, at(2027, 3, 29, 10), DAY) == utc(2027, 3, 26, 10)


def test_a_reminder_before_a_deadline_at_closing_time_is_one_business_day_of_open_time_earlier() -> None:
    # 1d before Friday 17:00: Thursday 17:00 and Friday 09:00 are the same point in open time
    reminder = subtract_business_time(OFFICE, at(2026, 11, 27, 17), DAY)
    assert reminder in (at(2026, 11, 26, 17), at(2026, 11, 27, 9))
    assert open_time_between(OFFICE, reminder, at(2026, 11, 27, 17)) == 8 * HOUR


@pytest.mark.parametrize("name", ["office", "uk-support", "lunch", "new-york"])
def test_business_days_back_from_a_deadline_are_the_days_forward_from_the_start(name: str) -> None:
    calendar = PROPERTY_CALENDARS[name]
    rng = random.Random(f"back-{name}")
    checked = 0
    while checked < 150:
        start = random_moment(rng)
        if not calendar.is_open(start):
            continue
        checked += 1
        window = rng.randrange(1, 40)
        before = rng.randrange(1, window + 1)
        deadline = add_business_time(calendar, start, window * DAY)
        expected = add_business_time(calendar, start, (window - before) * DAY)
        assert subtract_business_time(calendar, deadline, before * DAY) == expected, (name, start, window, before)
        hours = timedelta(minutes=rng.randrange(1, 6 * 60))
        reminder = subtract_business_time(calendar, deadline, hours)
        assert open_time_between(calendar, reminder, deadline) == hours


# ── validation: every error names the problem and the fix ─────────────────────────────────


@pytest.mark.parametrize(
    ("fields", "where", "problem", "fix"),
    [
        ({"timezone": "Europe/Lundon"}, "timezone", "unknown time zone 'Europe/Lundon'", "an IANA name such as Europe/London"),
        ({"timezone": "GMT+1 "}, "timezone", "unknown time zone", "an IANA name"),
        ({"hours": {"mon-fri": "9-5"}}, "hours", "'9-5' is not an opening time range", 'like "09:00-17:00"'),
        ({"hours": {"mon-fri": "09:00-13:00, 12:00-17:00"}}, "hours", "overlap", '"09:00-12:30, 13:30-17:00" for a break'),
        ({"hours": {"mon-fri": "17:00-09:00"}}, "hours", "ends before it starts", "use 24:00 for midnight"),
        ({"hours": {"mon-fri": "25:00-26:00"}}, "hours", "is not a time of day", 'like "09:00-17:00"'),
        ({"hours": {"mon-fri": "closed"}}, "", "never open", 'e.g. {mon-fri: "09:00-17:00"}'),
        ({"hours": {}}, "", "never open", "give opening hours"),
        ({"hours": {"mon-fry": "09:00-17:00"}}, "hours", "unknown days 'mon-fry'", "write e.g. mon-fri"),
        ({"hours": {"monday": "09:00-17:00"}}, "hours", "unknown day 'monday'", "write one of mon, tue"),
        ({"hours": "09:00-17:00"}, "hours", "give opening hours per day", 'e.g. {mon-fri: "09:00-17:00"}'),
    ],
)
def test_calendar_validation_names_the_problem_and_the_fix(
    fields: dict[str, object], where: str, problem: str, fix: str
) -> None:
    data = {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}, **fields}
    with pytest.raises(ValidationError) as raised:
        Calendar.model_validate(data)
    [error] = raised.value.errors()
    assert ".".join(map(str, error["loc"])) == where
    assert problem in error["msg"] and fix in error["msg"], error["msg"]


def test_calendar_refuses_unknown_fields_and_bad_holidays() -> None:
    with pytest.raises(ValidationError, match="holiday"):
        Calendar.model_validate({"timezone": "Europe/London", "hours": {"mon": "09:00-17:00"}, "holiday": ["2026-12-25"]})
    with pytest.raises(ValidationError, match="month"):
        Calendar.model_validate({"timezone": "Europe/London", "hours": {"mon": "09:00-17:00"}, "holidays": ["2026-13-01"]})


def test_touching_ranges_and_lists_of_ranges_are_accepted() -> None:
    calendar = Calendar.model_validate(
        {"timezone": "Europe/London", "hours": {"mon": ["09:00-12:00", "12:00-17:00"], "sat": "22:00-24:00"}}
    )
    assert calendar.hours["mon"] == [(time(9), time(12)), (time(12), time(17))]
    assert open_time_between(calendar, at(2026, 11, 30), at(2026, 12, 1)) == 8 * HOUR
    assert open_time_between(calendar, at(2026, 11, 28), at(2026, 11, 29)) == 2 * HOUR


def test_a_calendar_that_never_opens_again_is_an_error_not_a_hang() -> None:
    closed_for_years = Calendar(
        timezone="Europe/London",
        hours={"mon": "09:00-17:00"},
        holidays=[date(2026, 11, 30) + 7 * n * DAY for n in range(200)],
    )
    with pytest.raises(ValueError, match="no open time within three years"):
        add_open_time(closed_for_years, at(2026, 11, 27), HOUR)


# ── serialisation: the calendar travels in the policy snapshot, in the workflow history ─────


def test_calendar_json_round_trip() -> None:
    for calendar in (OFFICE, CHRISTMAS, LUNCH, ALWAYS, UK_SUPPORT, PROPERTY_CALENDARS["night-shift"]):
        text = calendar.model_dump_json()
        again = Calendar.model_validate_json(text)
        assert again == calendar
        assert again.model_dump_json() == text
    dumped = LUNCH.model_dump(mode="json")
    assert dumped["hours"]["mon"] == "09:00-12:30, 13:30-17:00", "written back as it is written in YAML"
    assert ALWAYS.model_dump(mode="json")["hours"]["sun"] == "00:00-24:00"
    assert CHRISTMAS.model_dump(mode="json")["holidays"] == ["2026-12-25", "2026-12-28", "2027-01-01"]


def test_a_snapshot_with_its_calendar_survives_the_workflow_data_converter() -> None:
    snap = PolicyStore(EXAMPLES).load("customer-support")
    assert snap.calendar == UK_SUPPORT
    [payload] = pydantic_data_converter.payload_converter.to_payloads([snap])
    [again] = pydantic_data_converter.payload_converter.from_payloads([payload], [PolicySnapshot])
    assert again == snap
    assert again.calendar is not None and again.calendar.zone == LONDON
    windows = again.policy.windows_for("medium")
    assert windows.business_time


# ── policies with calendars ───────────────────────────────────────────────────────────────

POLICY = {
    "policy": "desk",
    "manager": "dana",
    "windows": {"medium": {"ack_within": "5d", "remind_at": "4d", "business_time": True}},
    "tiers": [{"name": "L1", "owners": ["alice"]}],
}
DIRECTORY = Directory.model_validate({"people": {"alice": {"email": "alice@example.com"}, "dana": {"email": "dana@example.com"}}})


def test_a_policy_with_business_time_windows_and_no_calendar_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        Policy.model_validate(POLICY)
    message = str(raised.value)
    assert "windows.P3.business_time is true but the policy has no calendar" in message
    assert "add calendar: <a name from calendars.yaml>" in message
    # without business_time, no calendar is needed; with an inline calendar, it is that one
    Policy.model_validate({**POLICY, "windows": {"medium": {"ack_within": "5d"}}})
    inline = Policy.model_validate({**POLICY, "calendar": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}})
    assert snapshot(inline, DIRECTORY).calendar == OFFICE


def test_a_named_calendar_is_resolved_in_the_snapshot_and_an_unknown_one_suggests_the_right_name() -> None:
    policy = Policy.model_validate({**POLICY, "calendar": "uk-office"})
    assert snapshot(policy, DIRECTORY, calendars={"uk-office": OFFICE}).calendar == OFFICE
    problem = calendar_problem(Policy.model_validate({**POLICY, "calendar": "uk-ofice"}), {"uk-office": OFFICE})
    assert problem is not None and problem.path == "calendar"
    assert "unknown calendar 'uk-ofice': did you mean 'uk-office'?" in problem.message
    assert "add it to calendars.yaml beside the policies" in problem.message
    with pytest.raises(ValueError, match="unknown calendar 'uk-ofice'"):
        snapshot(Policy.model_validate({**POLICY, "calendar": "uk-ofice"}), DIRECTORY, calendars={"uk-office": OFFICE})


def copy_examples(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(EXAMPLES, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.slow  # runs the console script
def test_policy_check_reports_an_unknown_calendar_with_a_suggestion(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    policy = folder / "customer-support.yaml"
    edit(policy, "calendar: uk-support", "calendar: uk-suport")
    result = policy_check(folder)
    assert result.returncode == 1, result.stderr
    expected = (
        f"{policy}:{line_of(policy.read_text(), 'calendar: uk-suport')}: calendar: unknown calendar 'uk-suport': "
        "did you mean 'uk-support'? add it to calendars.yaml beside the policies, or use one of uk-support"
    )
    assert expected in result.stderr
    assert check_paths([policy]).problems[0].message.startswith("unknown calendar 'uk-suport'"), "a single file too"
    with pytest.raises(PolicyError, match="did you mean 'uk-support'"):
        PolicyStore(folder).load("customer-support")


@pytest.mark.slow  # runs the console script
def test_policy_check_reports_a_missing_calendars_file(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    (folder / "calendars.yaml").unlink()
    result = policy_check(folder)
    assert result.returncode == 1
    assert "calendar: unknown calendar 'uk-support'" in result.stderr
    assert "calendars.yaml defines none" in result.stderr


@pytest.mark.slow  # runs the console script
def test_policy_check_reports_a_bad_calendar_at_its_line(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    calendars = folder / "calendars.yaml"
    edit(calendars, 'mon-fri: "09:00-17:30"', 'mon-fry: "09:00-17:30"')
    edit(calendars, "timezone: Europe/London", "timezone: Europe/Lundon")
    result = policy_check(folder)
    assert result.returncode == 1
    line = line_of(calendars.read_text(), "Europe/Lundon")
    assert f"{calendars}:{line}: uk-support.timezone: unknown time zone 'Europe/Lundon'" in result.stderr
    assert "unknown days 'mon-fry': write e.g. mon-fri" in result.stderr


@pytest.mark.slow  # runs the console script
def test_policy_check_reports_business_time_without_a_calendar(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    policy = folder / "customer-support.yaml"
    edit(policy, "calendar: uk-support\n", "")
    result = policy_check(folder)
    assert result.returncode == 1
    assert "business_time is true but the policy has no calendar" in result.stderr
    assert str(policy) in result.stderr


@pytest.mark.slow  # runs the console script
def test_the_example_policies_with_calendars_pass() -> None:
    result = policy_check(EXAMPLES)
    assert result.returncode == 0, result.stderr
    assert f"ok: {EXAMPLES / 'calendars.yaml'}" in result.stdout
    calendars = PolicyStore(EXAMPLES).calendars()
    assert calendars["uk-support"] == UK_SUPPORT
    assert set(calendars) == {"uk-support", "weekends"}
    desk = PolicyStore(EXAMPLES).load("customer-support")
    assert all(desk.policy.windows_for(p).business_time for p in ("P1", "P2", "P3", "P4"))


# ── decisions in business time ────────────────────────────────────────────────────────────

MEDIUM = Windows(ack_within="5d", remind_at="4d", resolve_within="30d", business_time=True)
MEDIUM_BEFORE = Windows(ack_within="5d", remind_before="1d", resolve_within="30d", business_time=True)
CRITICAL = Windows(ack_within="4h", remind_before="1h", resolve_within="2d", business_time=True)
MEDIUM_CALENDAR_DAYS = Windows(ack_within="5d", remind_at="4d", resolve_within="30d")


def test_clock_for_tier_in_business_days() -> None:
    friday = at(2026, 11, 27, 15)
    clock = clock_for_tier(1, 0, friday, MEDIUM, UK_SUPPORT)
    assert clock.started_at == friday
    assert wall(clock.remind_at) == ("Thu 2026-12-03", "15:00")  # type: ignore[arg-type]
    assert wall(clock.deadline) == ("Fri 2026-12-04", "15:00")
    same = clock_for_tier(1, 0, friday, MEDIUM_BEFORE, UK_SUPPORT)
    assert (same.remind_at, same.deadline) == (clock.remind_at, clock.deadline), "remind_before 1d = remind_at 4d"
    # tier 2's window counts from tier 1's deadline
    assert wall(clock_for_tier(2, 0, clock.deadline, MEDIUM, UK_SUPPORT).deadline) == ("Fri 2026-12-11", "15:00")


def test_clock_for_tier_in_open_hours() -> None:
    # uk-support is open 09:00-17:30: 2.5h on Friday, 1.5h on Monday
    clock = clock_for_tier(1, 0, at(2026, 11, 27, 15), CRITICAL, UK_SUPPORT)
    assert wall(clock.deadline) == ("Mon 2026-11-30", "10:30")
    assert wall(clock.remind_at) == ("Mon 2026-11-30", "09:30")  # type: ignore[arg-type]
    # a reminder an open hour before Monday 09:30 goes out on Friday at 17:00 (closing at 17:30)
    early = clock_for_tier(1, 0, at(2026, 11, 27, 14), CRITICAL, UK_SUPPORT)
    assert wall(early.deadline) == ("Mon 2026-11-30", "09:30")
    assert wall(early.remind_at) == ("Fri 2026-11-27", "17:00")  # type: ignore[arg-type]


def test_clock_for_tier_opened_at_the_weekend_or_on_a_holiday() -> None:
    clock = clock_for_tier(1, 0, at(2026, 11, 28, 11), MEDIUM, UK_SUPPORT)
    assert wall(clock.remind_at) == ("Fri 2026-12-04", "09:00")  # type: ignore[arg-type]
    assert wall(clock.deadline) == ("Mon 2026-12-07", "09:00")
    # Easter 2027: Good Friday 26 March and Easter Monday 29 March are holidays (and BST starts)
    # from Thursday 25 March: Tue 30, Wed 31, Thu 1, Fri 2, Mon 5 April
    easter = clock_for_tier(1, 0, at(2027, 3, 25, 15), MEDIUM, UK_SUPPORT)
    assert wall(easter.remind_at) == ("Fri 2027-04-02", "15:00")  # type: ignore[arg-type]
    assert wall(easter.deadline) == ("Mon 2027-04-05", "15:00")
    assert easter.deadline == utc(2027, 4, 5, 14), "15:00 BST"


def test_windows_not_in_business_time_ignore_the_calendar() -> None:
    friday = at(2026, 11, 27, 15)
    clock = clock_for_tier(1, 0, friday, MEDIUM_CALENDAR_DAYS, UK_SUPPORT)
    assert clock == clock_for_tier(1, 0, friday, MEDIUM_CALENDAR_DAYS)
    assert (clock.remind_at, clock.deadline) == (friday + 4 * DAY, friday + 5 * DAY)
    assert resolve_by(friday, MEDIUM_CALENDAR_DAYS, UK_SUPPORT) == friday + 30 * DAY
    # and business_time without a calendar (a snapshot that has none) counts calendar days
    assert clock_for_tier(1, 0, friday, MEDIUM).deadline == friday + 5 * DAY


def test_resolve_by_in_business_days() -> None:
    friday = at(2026, 11, 27, 15)
    assert wall(resolve_by(friday, CRITICAL, UK_SUPPORT)) == ("Tue 2026-12-01", "15:00")  # type: ignore[arg-type]
    # 30 business days across Christmas (25 and 28 Dec, 1 Jan closed)
    assert wall(resolve_by(friday, MEDIUM, UK_SUPPORT)) == ("Wed 2027-01-13", "15:00")  # type: ignore[arg-type]
    assert resolve_by(friday, Windows(ack_within="1d", business_time=True), UK_SUPPORT) is None


# ── waiting on the customer: the clocks stop and resume with the time they had left ─────────


def medium_case(calendar: Calendar = OFFICE) -> tuple[TierClock, datetime]:
    """A medium case opened Friday 27 Nov 2026 15:00: its tier-1 clock and resolution deadline."""
    friday = at(2026, 11, 27, 15)
    return clock_for_tier(1, 0, friday, MEDIUM, calendar), resolve_by(friday, MEDIUM, calendar)  # type: ignore[return-value]


def test_pause_keeps_the_open_time_left_and_resume_spends_it_from_the_resume() -> None:
    clock, sla = medium_case()  # reminder Thu 3 Dec 15:00, deadline Fri 4 Dec 15:00 (09:00-17:00)
    paused_at = at(2026, 12, 1, 10)  # Tuesday 10:00
    pause = pause_clocks(clock, sla, False, paused_at, MEDIUM, OFFICE)
    assert pause.since == paused_at
    assert pause.window_left == 7 * HOUR + 8 * HOUR + 8 * HOUR + 6 * HOUR  # Tue, Wed, Thu, Fri to 15:00
    assert pause.reminder_left == 7 * HOUR + 8 * HOUR + 6 * HOUR
    assert pause.sla_left == open_time_between(OFFICE, paused_at, sla)

    resumed_at = at(2026, 12, 9, 14)  # Wednesday the week after, 14:00
    resumed, new_sla = resume_clocks(pause, clock, resumed_at, MEDIUM, OFFICE)
    assert resumed is not None and new_sla is not None
    # 29h from Wed 14:00: Wed 3h, Thu 8h, Fri 8h, Mon 8h, then 2h on Tuesday
    assert wall(resumed.deadline) == ("Tue 2026-12-15", "11:00")
    # 21h: Wed 3h, Thu 8h, Fri 8h, then 2h on Monday
    assert wall(resumed.remind_at) == ("Mon 2026-12-14", "11:00")  # type: ignore[arg-type]
    assert not resumed.reminded
    assert (resumed.tier, resumed.round, resumed.started_at) == (clock.tier, clock.round, clock.started_at)
    # the SLA moves by exactly the open time spent waiting
    waited = open_time_between(OFFICE, paused_at, resumed_at)
    assert waited == 7 * HOUR + 5 * 8 * HOUR + 5 * HOUR
    assert open_time_between(OFFICE, sla, new_sla) == waited
    assert open_time_between(OFFICE, resumed_at, new_sla) == pause.sla_left


def test_a_pause_at_the_same_time_a_week_later_moves_every_deadline_by_a_week() -> None:
    clock, sla = medium_case()
    pause = pause_clocks(clock, sla, False, at(2026, 12, 1, 10), MEDIUM, OFFICE)
    resumed, new_sla = resume_clocks(pause, clock, at(2026, 12, 8, 10), MEDIUM, OFFICE)
    assert resumed is not None and new_sla is not None
    assert resumed.deadline == clock.deadline + 7 * DAY
    assert resumed.remind_at == clock.remind_at + 7 * DAY  # type: ignore[operator]
    assert open_time_between(OFFICE, sla, new_sla) == 5 * 8 * HOUR


def test_waiting_while_the_office_is_closed_changes_nothing() -> None:
    clock, sla = medium_case()
    pause = pause_clocks(clock, sla, False, at(2026, 11, 28, 10), MEDIUM, OFFICE)  # Saturday
    resumed, new_sla = resume_clocks(pause, clock, at(2026, 11, 30, 8, 30), MEDIUM, OFFICE)  # Monday before opening
    assert resumed is not None
    assert (resumed.remind_at, resumed.deadline, new_sla) == (clock.remind_at, clock.deadline, sla)


def test_pause_and_resume_in_calendar_time_without_business_hours() -> None:
    friday = at(2026, 11, 27, 15)
    clock = clock_for_tier(1, 0, friday, MEDIUM_CALENDAR_DAYS, OFFICE)
    sla = resolve_by(friday, MEDIUM_CALENDAR_DAYS, OFFICE)
    assert sla == friday + 30 * DAY
    pause = pause_clocks(clock, sla, False, friday + DAY, MEDIUM_CALENDAR_DAYS, OFFICE)
    assert (pause.window_left, pause.reminder_left, pause.sla_left) == (4 * DAY, 3 * DAY, 29 * DAY)
    later = friday + 11 * DAY  # a Tuesday: the calendar plays no part
    resumed, new_sla = resume_clocks(pause, clock, later, MEDIUM_CALENDAR_DAYS, OFFICE)
    assert resumed is not None
    assert (resumed.remind_at, resumed.deadline, new_sla) == (later + 3 * DAY, later + 4 * DAY, later + 29 * DAY)


def test_a_reminder_already_sent_is_not_sent_again_after_the_resume() -> None:
    clock, sla = medium_case()
    reminded = clock.model_copy(update={"reminded": True})
    pause = pause_clocks(reminded, sla, False, at(2026, 12, 4, 10), MEDIUM, OFFICE)  # Friday, after Thursday's reminder
    assert pause.reminder_left is None
    assert pause.window_left == 5 * HOUR
    resumed, _ = resume_clocks(pause, reminded, at(2026, 12, 7, 16), MEDIUM, OFFICE)
    assert resumed is not None
    assert resumed.reminded and resumed.remind_at is None
    assert wall(resumed.deadline) == ("Tue 2026-12-08", "13:00")  # 1h Monday, 4h Tuesday


def test_no_clock_and_no_sla_to_stop() -> None:
    _, sla = medium_case()
    # acknowledged (no tier clock): only the SLA stops
    pause = pause_clocks(None, sla, False, at(2026, 12, 1, 10), MEDIUM, OFFICE)
    assert (pause.window_left, pause.reminder_left) == (None, None)
    resumed, new_sla = resume_clocks(pause, None, at(2026, 12, 8, 10), MEDIUM, OFFICE)
    assert resumed is None and new_sla == add_open_time(OFFICE, at(2026, 12, 8, 10), pause.sla_left)  # type: ignore[arg-type]
    # an SLA already breached stays breached: nothing to resume
    breached = pause_clocks(None, sla, True, at(2027, 2, 1, 10), MEDIUM, OFFICE)
    assert breached.sla_left is None
    assert resume_clocks(breached, None, at(2027, 2, 2, 10), MEDIUM, OFFICE) == (None, None)
    # a priority with no resolve_within has no SLA to stop
    assert pause_clocks(None, None, False, at(2026, 12, 1, 10), MEDIUM, OFFICE).sla_left is None
