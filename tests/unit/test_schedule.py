"""On-call schedules (workflows/schedule.py): who is on call at a moment, as pure functions.

Schedules are written here as the YAML a user would put in ``schedules/NAME.yaml``. Expected
answers are counted by hand on the calendar: January 2027 starts on a Friday, so Monday 4
January is the first hand-off of most rotations here; London is on GMT (= UTC) in January, and
its clocks change on Sunday 28 March 2027 (GMT to BST) and Sunday 31 October 2027 (back).

The last part runs ``escalate policy check`` on broken schedule files, as a user would, and
checks that every problem names the file, the line, the field and what to write instead.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.policy_store import PolicyStore
from escalate.settings import EXAMPLE_POLICIES
from tests.support.cli import policy_check
from tests.support.clock import LONDON, london
from tests.support.paths import TEST_POLICIES
from tests.support.policies import line_of
from workflows.policy import PolicySnapshot
from workflows.schedule import OnCall, Schedule, coverage_gaps, describe_gap, on_call

TEST_DIRECTORY = TEST_POLICIES / "directory.yaml"  # alice, bob, carol, dana, erin, frank

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)


def schedule(text: str) -> Schedule:
    """A schedule as it would be read from its YAML file."""
    return Schedule.model_validate(yaml.safe_load(text))


def at(zone: ZoneInfo, day: date, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in ``zone``, as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute), zone).astimezone(UTC)


def who(found: Schedule, moment: datetime) -> str | None:
    return on_call(found, moment).who


def shift_end(found: Schedule, moment: datetime) -> datetime:
    """When the shift on at ``moment`` ends (it must)."""
    end = on_call(found, moment).until
    assert end is not None, f"the shift on at {moment} never ends"
    return end


def shifts(found: Schedule, first: datetime, hours: int) -> list[tuple[datetime, str | None]]:
    """The stretches of on-call in ``[first, first + hours)``, going from each answer to the
    next by its ``until``: (when it began, who)."""
    stretches: list[tuple[datetime, str | None]] = []
    moment: datetime | None = first
    while moment is not None and moment < first + hours * HOUR:
        answer = on_call(found, moment)
        assert not stretches or stretches[-1][1] != answer.who, f"until {moment} is not a change of hands"
        stretches.append((moment, answer.who))
        moment = answer.until
    return stretches


DAILY = """\
schedule: ops
timezone: Europe/London
layers:
  - name: daily
    participants: [carol, alice, bob]
    shift: 1d
    handoff: "09:00"
    start: 2027-01-04
"""


# ── rotations ─────────────────────────────────────────────────────────────────────────────


def test_a_daily_rotation_hands_over_at_its_handoff_time_in_the_written_order() -> None:
    ops = schedule(DAILY)
    # Written order, not alphabetical: carol first, then alice, then bob, then carol again.
    expected = ["carol", "alice", "bob", "carol", "alice", "bob", "carol"]
    for offset, person in enumerate(expected):
        day = date(2027, 1, 4) + offset * DAY
        assert who(ops, london(day, 9)) == person, day
        assert who(ops, london(day, 20)) == person, day
        assert who(ops, london(day + DAY, 8, 59)) == person, f"still {person} until 09:00 the next day"
    answer = on_call(ops, london(date(2027, 1, 5), 12))
    assert answer == OnCall(
        schedule="ops", at=london(date(2027, 1, 5), 12), who="alice", layer="daily",
        override=False, until=london(date(2027, 1, 6), 9),
    )


def test_until_is_the_exact_next_change_of_hands_at_any_minute_or_second() -> None:
    odd = schedule(
        DAILY.replace('handoff: "09:00"', 'handoff: "08:40"')
        + "overrides:\n  - {who: dana, from: \"2027-01-06T12:05:30\", until: \"2027-01-06T12:52\"}\n"
    )
    assert on_call(odd, london(date(2027, 1, 5), 12)).until == london(date(2027, 1, 6), 8, 40)
    assert on_call(odd, london(date(2027, 1, 6), 8, 39) + timedelta(seconds=59.5)).until == london(date(2027, 1, 6), 8, 40)
    assert on_call(odd, london(date(2027, 1, 6), 9)).until == london(date(2027, 1, 6), 12, 5) + timedelta(seconds=30)
    assert on_call(odd, london(date(2027, 1, 6), 12, 10)).until == london(date(2027, 1, 6), 12, 52)


def test_nobody_is_on_call_before_the_first_handoff() -> None:
    ops = schedule(DAILY)
    assert who(ops, london(date(2027, 1, 3), 12)) is None
    assert who(ops, london(date(2027, 1, 4), 8, 59)) is None, "the start day begins at its hand-off time"
    first = on_call(ops, london(date(2027, 1, 4), 8))
    assert (first.who, first.layer, first.until) == (None, None, london(date(2027, 1, 4), 9))


def test_a_weekly_rotation_hands_over_on_the_weekday_of_its_start() -> None:
    weekly = schedule(DAILY.replace("shift: 1d", "shift: 1w").replace("participants: [carol, alice, bob]", "participants: [alice, bob]"))
    monday = date(2027, 1, 4)
    assert who(weekly, london(monday, 9)) == "alice"
    assert who(weekly, london(monday + 4 * DAY, 23)) == "alice"  # Friday night
    assert who(weekly, london(monday + 7 * DAY, 8, 59)) == "alice"
    assert who(weekly, london(monday + 7 * DAY, 9)) == "bob"
    assert who(weekly, london(monday + 14 * DAY, 9)) == "alice", "round again after the last participant"
    assert on_call(weekly, london(monday + 8 * DAY, 12)).until == london(monday + 14 * DAY, 9)
    assert [person for _, person in shifts(weekly, london(monday, 0), 24 * 29)] == [None, "alice", "bob", "alice", "bob", "alice"]


def test_a_twelve_hour_rotation_hands_over_twice_a_day() -> None:
    halves = schedule(DAILY.replace("shift: 1d", "shift: 12h").replace("[carol, alice, bob]", "[alice, bob]"))
    day = date(2027, 1, 4)
    assert shifts(halves, london(day, 0), 48) == [
        (london(day, 0), None),
        (london(day, 9), "alice"),
        (london(day, 21), "bob"),
        (london(day + DAY, 9), "alice"),
        (london(day + DAY, 21), "bob"),
    ]


def test_the_handoff_time_is_in_the_schedules_time_zone() -> None:
    tokyo = schedule(DAILY.replace("Europe/London", "Asia/Tokyo").replace("[carol, alice, bob]", "[alice, bob]"))
    # 09:00 in Tokyo (UTC+9, no daylight saving) is midnight UTC.
    handoff = at(TOKYO, date(2027, 1, 5), 9)
    assert handoff == datetime(2027, 1, 5, 0, 0, tzinfo=UTC)
    assert who(tokyo, handoff - MINUTE) == "alice"
    assert who(tokyo, handoff) == "bob"
    assert on_call(tokyo, handoff - HOUR).until == handoff

    new_york = schedule(DAILY.replace("Europe/London", "America/New_York").replace("[carol, alice, bob]", "[alice, bob]"))
    handoff = at(NEW_YORK, date(2027, 1, 5), 9)  # 14:00 UTC in winter
    assert handoff == datetime(2027, 1, 5, 14, 0, tzinfo=UTC)
    assert who(new_york, handoff - MINUTE) == "alice"
    assert who(new_york, handoff) == "bob"


def test_a_layer_that_starts_in_the_future_leaves_the_earlier_layer_on_call_until_then() -> None:
    two = schedule(
        """\
schedule: ops
timezone: Europe/London
layers:
  - name: old rotation
    participants: [alice]
    shift: 1w
    start: 2027-01-04
  - name: new rotation
    participants: [bob, carol]
    shift: 1w
    handoff: "10:00"
    start: 2027-02-01
"""
    )
    assert who(two, london(date(2027, 1, 31), 12)) == "alice"
    assert who(two, london(date(2027, 2, 1), 9, 59)) == "alice"
    answer = on_call(two, london(date(2027, 2, 1), 10))
    assert (answer.who, answer.layer) == ("bob", "new rotation")
    assert who(two, london(date(2027, 2, 8), 10)) == "carol"
    assert on_call(two, london(date(2027, 1, 20), 12)).until == london(date(2027, 2, 1), 10)


# ── layers and active calendars ───────────────────────────────────────────────────────────

LAYERED = """\
schedule: ops
timezone: Europe/London
layers:
  - name: weekly
    participants: [alice, bob]
    shift: 1w
    handoff: "09:00"
    start: 2027-01-04
  - name: weekends
    participants: [carol, dana]
    shift: 1d
    handoff: "09:00"
    start: 2027-01-09
    active: {timezone: Europe/London, hours: {sat-sun: "00:00-24:00"}}
"""


def test_a_higher_layer_wins_where_it_is_active_and_the_lower_one_covers_the_rest() -> None:
    ops = schedule(LAYERED)
    friday, saturday, sunday, monday = (date(2027, 1, 8) + n * DAY for n in range(4))
    assert on_call(ops, london(friday, 23, 59)).who == "alice"
    # The weekend layer is active from Saturday 00:00, but its rotation only starts at 09:00.
    assert on_call(ops, london(saturday, 0)).who == "alice"
    weekend = on_call(ops, london(saturday, 9))
    assert (weekend.who, weekend.layer) == ("carol", "weekends")
    assert who(ops, london(sunday, 8, 59)) == "carol"
    assert who(ops, london(sunday, 9)) == "dana"
    assert on_call(ops, london(sunday, 12)).until == london(monday, 0), "the weekend layer ends at midnight"
    weekday = on_call(ops, london(monday, 0))
    assert (weekday.who, weekday.layer) == ("alice", "weekly"), "the weekly shift runs until Monday 09:00"
    assert who(ops, london(monday, 9)) == "bob"
    # The next weekend, the weekend layer takes over from the weekly one again at midnight, with
    # its daily rotation where it has got to (9 Jan carol, 10 dana, … 15 carol, 16 dana).
    assert who(ops, london(saturday + WEEK - DAY, 23, 59)) == "bob"
    assert who(ops, london(saturday + WEEK, 0)) == "carol", "Saturday before 09:00 is the end of Friday's turn"
    assert who(ops, london(saturday + WEEK, 9)) == "dana"


def test_a_layer_active_only_in_office_hours_leaves_gaps_when_alone() -> None:
    office = schedule(
        """\
schedule: desk
timezone: Europe/London
layers:
  - name: office hours
    participants: [erin, frank]
    shift: 1w
    start: 2027-01-04
    active: {timezone: Europe/London, hours: {mon-fri: "09:00-17:30"}}
"""
    )
    monday = date(2027, 1, 4)
    assert who(office, london(monday, 9)) == "erin"
    assert who(office, london(monday, 17, 29)) == "erin"
    assert who(office, london(monday, 17, 30)) is None
    assert who(office, london(monday + DAY, 8, 59)) is None
    assert who(office, london(monday + 5 * DAY, 12)) is None, "Saturday"
    assert who(office, london(monday + WEEK, 9)) == "frank"
    gap = on_call(office, london(monday, 20))
    assert (gap.who, gap.layer, gap.until) == (None, None, london(monday + DAY, 9))


# ── overrides ─────────────────────────────────────────────────────────────────────────────


def test_an_override_replaces_whoever_is_on_call_for_its_span_only() -> None:
    ops = schedule(
        DAILY
        + """\
overrides:
  - who: dana
    covers: alice
    from: 2027-01-05T13:00
    until: 2027-01-05T18:30
"""
    )
    tuesday = date(2027, 1, 5)  # alice's day (09:00 to Wednesday 09:00)
    assert who(ops, london(tuesday, 12, 59)) == "alice"
    covered = on_call(ops, london(tuesday, 13))
    assert covered == OnCall(
        schedule="ops", at=london(tuesday, 13), who="dana", layer="override", override=True,
        until=london(tuesday, 18, 30),
    )
    assert who(ops, london(tuesday, 18, 29)) == "dana"
    assert who(ops, london(tuesday, 18, 30)) == "alice", "the override ends at until: (exclusive)"
    assert who(ops, london(tuesday + DAY, 13)) == "bob", "the rotation carries on underneath it"
    assert on_call(ops, london(tuesday, 12)).until == london(tuesday, 13)
    assert ops.people() == ["carol", "alice", "bob", "dana"]


def test_override_times_without_a_zone_are_in_the_schedules_zone_and_with_one_as_written() -> None:
    summer = schedule(
        DAILY.replace("2027-01-04", "2027-07-05")
        + """\
overrides:
  - who: dana
    from: 2027-07-06T13:00
    until: 2027-07-06T14:00
  - who: erin
    from: "2027-07-07T13:00:00+00:00"
    until: "2027-07-07T14:00:00+00:00"
"""
    )
    # London is on BST (UTC+1) in July: 13:00 local is 12:00 UTC.
    assert summer.overrides[0].starts == datetime(2027, 7, 6, 12, 0, tzinfo=UTC)
    assert who(summer, datetime(2027, 7, 6, 12, 0, tzinfo=UTC)) == "dana"
    assert who(summer, datetime(2027, 7, 6, 13, 0, tzinfo=UTC)) != "dana"
    assert who(summer, datetime(2027, 7, 7, 13, 0, tzinfo=UTC)) == "erin", "13:00 UTC as written (14:00 BST)"
    assert who(summer, datetime(2027, 7, 7, 12, 0, tzinfo=UTC)) != "erin"


def test_an_override_covers_a_gap_in_the_layers() -> None:
    office = schedule(
        """\
schedule: desk
timezone: Europe/London
layers:
  - participants: [erin]
    shift: 1w
    start: 2027-01-04
    active: {timezone: Europe/London, hours: {mon-fri: "09:00-17:30"}}
overrides:
  - who: frank
    from: 2027-01-09T09:00
    until: 2027-01-10T09:00
"""
    )
    saturday = date(2027, 1, 9)
    assert who(office, london(saturday, 8, 45)) is None
    assert on_call(office, london(saturday, 9)).override
    assert who(office, london(saturday, 21)) == "frank"
    assert who(office, london(saturday + DAY, 9)) is None
    assert on_call(office, london(saturday, 12)).layer == "override"
    gaps = coverage_gaps(office, london(saturday, 0), 2 * DAY)
    assert gaps == [
        (london(saturday, 0), london(saturday, 9)),
        (london(saturday + DAY, 9), london(saturday + 2 * DAY, 0)),
    ]


# ── daylight saving ───────────────────────────────────────────────────────────────────────

SPRING_FORWARD = date(2027, 3, 28)  # Sunday: 01:00 GMT becomes 02:00 BST
FALL_BACK = date(2027, 10, 31)  # Sunday: 02:00 BST becomes 01:00 GMT


def test_a_daily_handoff_stays_at_0900_local_when_the_clocks_go_forward() -> None:
    ops = schedule(DAILY.replace("2027-01-04", "2027-03-22").replace("[carol, alice, bob]", "[alice, bob]"))
    saturday = SPRING_FORWARD - DAY
    # from Monday 22 March: 22 alice, 23 bob, 24 alice, 25 bob, 26 alice, 27 bob, 28 alice
    assert who(ops, london(saturday, 12)) == "bob"
    saturday_handoff = london(saturday, 9)
    sunday_handoff = london(SPRING_FORWARD, 9)
    assert saturday_handoff == datetime(2027, 3, 27, 9, 0, tzinfo=UTC)  # GMT
    assert sunday_handoff == datetime(2027, 3, 28, 8, 0, tzinfo=UTC)  # BST
    assert who(ops, sunday_handoff - MINUTE) == "bob"
    assert who(ops, sunday_handoff) == "alice"
    bobs_shift = on_call(ops, saturday_handoff)
    assert bobs_shift.until == sunday_handoff
    assert shift_end(ops, saturday_handoff) - saturday_handoff == 23 * HOUR, "the shift across the change is 23 hours"
    assert shift_end(ops, sunday_handoff) - sunday_handoff == 24 * HOUR
    assert shift_end(ops, sunday_handoff).astimezone(LONDON).strftime("%a %H:%M %Z") == "Mon 09:00 BST"


def test_a_daily_handoff_stays_at_0900_local_when_the_clocks_go_back() -> None:
    ops = schedule(DAILY.replace("2027-01-04", "2027-10-25").replace("[carol, alice, bob]", "[alice, bob]"))
    saturday = FALL_BACK - DAY
    # 25 alice, 26 bob, 27 alice, 28 bob, 29 alice, 30 bob, 31 alice
    saturday_handoff = london(saturday, 9)
    sunday_handoff = london(FALL_BACK, 9)
    assert saturday_handoff == datetime(2027, 10, 30, 8, 0, tzinfo=UTC)  # BST
    assert sunday_handoff == datetime(2027, 10, 31, 9, 0, tzinfo=UTC)  # GMT
    assert who(ops, saturday_handoff) == "bob"
    # 08:30 UTC on Sunday would be past 09:00 in BST, but it is 08:30 GMT: still bob's shift.
    assert who(ops, datetime(2027, 10, 31, 8, 30, tzinfo=UTC)) == "bob"
    assert who(ops, sunday_handoff - MINUTE) == "bob"
    assert who(ops, sunday_handoff) == "alice"
    assert shift_end(ops, saturday_handoff) - saturday_handoff == 25 * HOUR, "the shift across the change is 25 hours"


def test_a_12_hour_rotation_hands_over_at_0900_and_2100_local_across_both_changes() -> None:
    halves = schedule(
        DAILY.replace("shift: 1d", "shift: 12h").replace("2027-01-04", "2027-03-22").replace("[carol, alice, bob]", "[alice, bob]")
    )
    # alice has the day half (09:00-21:00 local), bob the night half, whatever the season.
    for day in (SPRING_FORWARD - DAY, SPRING_FORWARD, SPRING_FORWARD + DAY, FALL_BACK - DAY, FALL_BACK, FALL_BACK + DAY):
        assert who(halves, london(day, 9)) == "alice", f"{day} 09:00"
        assert who(halves, london(day, 9) - MINUTE) == "bob", f"{day} 08:59"
        assert who(halves, london(day, 21)) == "bob", f"{day} 21:00"
        assert who(halves, london(day, 21) - MINUTE) == "alice", f"{day} 20:59"
    assert on_call(halves, london(SPRING_FORWARD - DAY, 21)).until == london(SPRING_FORWARD, 9)
    assert london(SPRING_FORWARD, 9) - london(SPRING_FORWARD - DAY, 21) == 11 * HOUR, "the night the clocks go forward"


def test_a_weekly_handoff_stays_at_0900_local_across_both_changes() -> None:
    weekly = schedule(
        DAILY.replace("shift: 1d", "shift: 1w").replace("2027-01-04", "2027-03-21").replace("[carol, alice, bob]", "[alice, bob]")
    )
    # Sundays at 09:00 London: 21 March alice (GMT), 28 March bob (the first BST day), …
    assert who(weekly, london(SPRING_FORWARD, 8, 59)) == "alice"
    assert who(weekly, london(SPRING_FORWARD, 9)) == "bob"
    assert on_call(weekly, london(date(2027, 3, 21), 9)).until == london(SPRING_FORWARD, 9)
    assert london(SPRING_FORWARD, 9) - london(date(2027, 3, 21), 9) == WEEK - HOUR
    # 31 weeks after 28 March (bob) is 31 October, the day the clocks go back: alice's turn.
    assert (FALL_BACK - SPRING_FORWARD).days == 31 * 7
    assert who(weekly, london(FALL_BACK, 8, 59)) == "bob"
    assert who(weekly, london(FALL_BACK, 9)) == "alice"
    assert london(FALL_BACK, 9) - london(FALL_BACK - WEEK, 9) == WEEK + HOUR


# ── coverage gaps and people ──────────────────────────────────────────────────────────────


def test_coverage_gaps_are_the_stretches_with_nobody_on_call() -> None:
    office = schedule(
        """\
schedule: desk
timezone: Europe/London
layers:
  - participants: [erin, frank]
    shift: 1w
    start: 2027-01-04
    active: {timezone: Europe/London, hours: {mon-fri: "09:00-17:30"}}
"""
    )
    monday = date(2027, 1, 4)
    gaps = coverage_gaps(office, london(monday, 0), WEEK)
    assert gaps == [
        (london(monday, 0), london(monday, 9)),
        *[(london(monday + n * DAY, 17, 30), london(monday + (n + 1) * DAY, 9)) for n in range(4)],
        (london(monday + 4 * DAY, 17, 30), london(monday + 7 * DAY, 0)),  # Friday evening to the end of the span
    ]
    assert describe_gap(gaps[1], LONDON) == "Mon 2027-01-04 17:30 to Tue 2027-01-05 09:00 (15h30m)"
    # Round the clock (the same rotation without the calendar): no gaps once it has started.
    round_the_clock = schedule(DAILY)
    assert coverage_gaps(round_the_clock, london(date(2027, 1, 4), 9), 4 * WEEK) == []
    assert coverage_gaps(round_the_clock, london(date(2027, 1, 3), 12), 2 * DAY) == [
        (london(date(2027, 1, 3), 12), london(date(2027, 1, 4), 9))
    ]


def test_people_lists_everyone_once_in_written_order() -> None:
    ops = schedule(LAYERED + "overrides:\n  - {who: erin, from: 2027-01-05T09:00, until: 2027-01-06T09:00}\n")
    assert ops.people() == ["alice", "bob", "carol", "dana", "erin"]


# ── in the history ────────────────────────────────────────────────────────────────────────


def test_a_policy_snapshot_with_schedules_survives_the_trip_through_the_history() -> None:
    """The snapshot is an activity result: the workflow decodes what the activity encoded (a
    hand-off time encoded as "09:00:00" once failed to decode, and every incident of a policy
    with a schedule owner stalled at its first workflow task)."""
    snapshot = PolicyStore(EXAMPLE_POLICIES).load("platform")
    assert set(snapshot.schedules) == {"platform-primary", "platform-secondary"}
    converter = pydantic_data_converter.payload_converter
    [decoded] = converter.from_payloads(converter.to_payloads([snapshot]), [PolicySnapshot])
    assert decoded == snapshot
    moment = london(date(2026, 12, 26), 12)  # inside the example's Christmas override
    assert decoded.people_at(1, moment) == snapshot.people_at(1, moment) == ["niaj"]


def test_an_unquoted_handoff_time_is_read_as_the_time_it_looks_like() -> None:
    # YAML 1.1 reads 10:30 without quotes as the base-60 number 630.
    assert yaml.safe_load("handoff: 10:30") == {"handoff": 630}
    ops = schedule(DAILY.replace('handoff: "09:00"', "handoff: 10:30"))
    assert ops.layers[0].handoff == time(10, 30)
    assert who(ops, london(date(2027, 1, 5), 10, 29)) == "carol"
    assert who(ops, london(date(2027, 1, 5), 10, 30)) == "alice"


# ── validation ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("change", "field", "hint"),
    [
        (("shift: 1d", "shift: 0m"), "shift", "shift must be at least 1m"),
        (("shift: 1d", "shift: daily"), "shift", "is not a duration"),
        (('handoff: "09:00"', "handoff: 9am"), "handoff", 'write e.g. handoff: "09:00"'),
        (('handoff: "09:00"', 'handoff: "24:00"'), "handoff", "is not a time of day"),
        (("Europe/London", "Europe/Londres"), "timezone", "unknown time zone 'Europe/Londres'"),
        (("participants: [carol, alice, bob]", "participants: []"), "participants", "at least 1 item"),
        (("    start: 2027-01-04\n", "    start: 2027-01-04\n    colour: red\n"), "colour", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_schedule_is_refused(change: tuple[str, str], field: str, hint: str) -> None:
    assert change[0] in DAILY
    with pytest.raises(ValidationError) as raised:
        schedule(DAILY.replace(*change))
    [error] = raised.value.errors()
    assert error["loc"][-1] == field, error
    assert hint in str(error["msg"]), error["msg"]


def test_an_override_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValidationError, match="an override must end after it starts"):
        schedule(DAILY + "overrides:\n  - {who: dana, from: 2027-01-05T13:00, until: 2027-01-05T12:00}\n")


POLICY = """\
policy: ops
manager: dana
windows:
  P1: {ack_within: 15m, remind_before: 5m, resolve_within: 4h}
tiers:
  - name: Primary on-call
    owners: [schedule:ops]
  - name: Backup
    owners: [schedule:opps]
  - name: Weekend cover
    owners: [schedule:shift]
"""

BROKEN = {
    "shift.yaml": DAILY.replace("schedule: ops", "schedule: shift").replace("shift: 1d", "shift: 1 fortnight"),
    "zero.yaml": DAILY.replace("schedule: ops", "schedule: zero").replace("shift: 1d", "shift: 0s"),
    "handoff.yaml": DAILY.replace("schedule: ops", "schedule: handoff").replace('"09:00"', '"9.30"'),
    "fields.yaml": DAILY.replace("schedule: ops", "schedule: fields")
    .replace("participants:", "participant:")
    .replace("    start: 2027-01-04\n", "    start: 2027-01-04\n    colour: red\n")
    + "rotation: weekly\n",
    "people.yaml": DAILY.replace("schedule: ops", "schedule: people").replace("[carol, alice, bob]", "[alice, zoe]")
    + "overrides:\n  - {who: mallory, from: 2027-01-05T09:00, until: 2027-01-06T09:00}\n",
    "override.yaml": DAILY.replace("schedule: ops", "schedule: override")
    + "overrides:\n  - who: bob\n    from: 2027-01-05T09:00\n",
}


@pytest.mark.slow  # runs the console script
def test_policy_check_names_file_line_field_and_fix_for_each_schedule_problem(tmp_path: Path) -> None:
    shutil.copy(TEST_DIRECTORY, tmp_path / "directory.yaml")
    (tmp_path / "ops.yaml").write_text(POLICY)
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "ops.yaml").write_text(DAILY)
    for name, text in BROKEN.items():
        (tmp_path / "schedules" / name).write_text(text)
    result = policy_check(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]

    def problem(name: str, marker: str, field: str, *hints: str) -> None:
        file = tmp_path / "schedules" / name
        located = f"error: {file}:{line_of(file.read_text(), marker)}: {field}: "
        found = [line for line in errors if line.startswith(located)]
        assert found, f"no {located!r} in:\n{result.stderr}"
        for hint in hints:
            assert hint in found[0], f"{hint!r} not in {found[0]!r}"

    problem("shift.yaml", "shift:", "layers[0].shift", "'1 fortnight' is not a duration", "write a duration like", "2w")
    problem("zero.yaml", "shift:", "layers[0].shift", "shift must be at least 1m", "write e.g. shift: 1w")
    problem("handoff.yaml", "handoff:", "layers[0].handoff", "'9.30' is not a time of day", 'write e.g. handoff: "09:00"')
    problem("fields.yaml", "participant:", "layers[0].participant", "unknown field 'participant'", "did you mean 'participants'?")
    problem("fields.yaml", "- name: daily", "layers[0].participants", "participants is required", "e.g. participants: [alice, bob]")
    problem(
        "fields.yaml", "colour:", "layers[0].colour", "unknown field 'colour'",
        "the fields here are name, participants, shift, handoff, start, active",
    )
    problem(
        "fields.yaml", "rotation:", "rotation", "unknown field 'rotation'",
        "the fields here are schedule, description, timezone, layers, overrides",
    )
    problem("override.yaml", "- who: bob", "overrides[0].until", "until is required", "e.g. until: ")
    # A schedule can only name people of the directory.
    people = tmp_path / "schedules" / "people.yaml"
    located = f"error: {people}:{line_of(people.read_text(), 'participants:')}: layers[0].participants[1]: "
    assert any(line.startswith(located + "unknown contact 'zoe': add zoe under people: in directory.yaml") for line in errors), errors
    assert any(line.startswith(f"error: {people}:") and "overrides[0].who: unknown contact 'mallory'" in line for line in errors), errors
    # The policy names a schedule that does not exist: a suggestion, and the known ones.
    policy = tmp_path / "ops.yaml"
    located = f"error: {policy}:{line_of(POLICY, 'schedule:opps')}: tiers[1].owners[0]: unknown schedule 'opps': did you mean 'ops'?"
    assert any(line.startswith(located) for line in errors), result.stderr
    # The broken files do not hide the good schedule (ops), and the policy naming a broken one
    # (shift) is not told that it does not exist: its problem is reported in its own file.
    assert not any("unknown schedule 'ops'" in line or "unknown schedule 'shift'" in line for line in errors), result.stderr
    assert len(errors) == 11, "\n".join(errors)
    assert f"ok: {tmp_path / 'schedules' / 'ops.yaml'}" in result.stdout


@pytest.mark.slow  # runs the console script
def test_policy_check_warns_about_gaps_but_passes(tmp_path: Path) -> None:
    shutil.copy(TEST_DIRECTORY, tmp_path / "directory.yaml")
    (tmp_path / "ops.yaml").write_text(POLICY.replace("schedule:opps", "schedule:desk").replace("schedule:shift", "carol"))
    (tmp_path / "schedules").mkdir()
    # round the clock since long ago: no warning
    (tmp_path / "schedules" / "ops.yaml").write_text(DAILY.replace("2027-01-04", "2020-01-06"))
    desk = tmp_path / "schedules" / "desk.yaml"
    desk.write_text(
        "schedule: desk\ntimezone: Europe/London\nlayers:\n"
        "  - {participants: [erin, frank], shift: 1w, start: 2020-01-06,"
        ' active: {timezone: Europe/London, hours: {mon-fri: "09:00-17:30"}}}\n'
    )
    result = policy_check(tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"warning: {desk}: nobody is on call "), warnings
    assert "(in the next 4 weeks)" in warnings[0] and "and " in warnings[0] and " more" in warnings[0]
    assert "add a layer or participants to cover it" in warnings[0]
    assert "17:30 to " in warnings[0] and " 09:00 (" in warnings[0], "the nightly gaps, in London time"
    for name in ("ops.yaml", "directory.yaml", "schedules/ops.yaml", "schedules/desk.yaml"):
        assert f"ok: {tmp_path / name}" in result.stdout, result.stdout
