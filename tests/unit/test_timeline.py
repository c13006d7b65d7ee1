"""What a new run carries of a long incident's story (workflows/timeline.py): the oldest routine
entries folded into a count, everything else kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.model import TimelineEvent
from workflows.timeline import CARRIED_TIMELINE_LIMIT, fold_timeline

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def hourly(kinds: list[str]) -> list[TimelineEvent]:
    return [TimelineEvent(at=T0 + timedelta(hours=n), kind=kind, detail=f"{kind} {n}") for n, kind in enumerate(kinds)]


def test_a_timeline_within_the_limit_is_carried_as_it_is() -> None:
    timeline = hourly(["triggered"] + ["reminded", "notified", "escalated"] * 10)
    assert fold_timeline(timeline, limit=31) == timeline
    assert fold_timeline(timeline) == timeline, f"the default limit is {CARRIED_TIMELINE_LIMIT}"


def test_the_oldest_routine_entries_fold_into_one_counted_entry_in_their_place() -> None:
    timeline = hourly(["triggered"] + ["reminded", "notified", "escalated", "noted"] * 10)
    carried = fold_timeline(timeline, limit=30)

    assert len(carried) == 30
    kinds = [event.kind for event in carried]
    assert kinds[:2] == ["triggered", "folded"], "the summary stands where the first folded entry stood"
    # 41 entries to 30: 12 routine entries folded (11 over, plus room for the summary).
    summary = carried[1]
    assert summary.at == timeline[1].at
    assert summary.detail.startswith("12 routine entries from 2027-03-01 10:00 to 2027-03-02 07:00 UTC (reminded x6, notified x6)")
    # Decisions, acks and notes are never folded; the newest routine entries are kept in order.
    assert [e for e in carried if e.kind in ("escalated", "noted")] == [e for e in timeline if e.kind in ("escalated", "noted")]
    assert [e for e in carried if e.kind in ("reminded", "notified")] == [e for e in timeline if e.kind in ("reminded", "notified")][12:]
    assert [e.at for e in carried] == sorted(e.at for e in carried), "still in time order"


def test_without_routine_entries_nothing_is_dropped_to_meet_the_limit() -> None:
    timeline = hourly(["triggered"] + ["noted"] * 40)
    assert fold_timeline(timeline, limit=10) == timeline


def test_folding_again_keeps_the_earlier_summary_and_adds_one() -> None:
    once = fold_timeline(hourly(["triggered"] + ["reminded", "notified"] * 20), limit=20)
    later = once + hourly(["reminded", "notified"] * 10)
    twice = fold_timeline(later, limit=20)
    assert len(twice) == 20
    assert [event.kind for event in twice].count("folded") == 2
    folded = sum(int(event.detail.split(" ", 1)[0]) for event in twice if event.kind == "folded")
    others = sum(1 for event in twice if event.kind != "folded")
    assert folded + others - 1 == 1 + 40 + 20 - 1, "every entry is either kept or counted"
