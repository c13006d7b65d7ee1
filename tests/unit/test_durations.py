"""Durations as policy authors write them (DESIGN.md: ``30s``, ``15m``, ``1h30m``, ``5d``, ISO 8601)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from workflows.durations import DURATION_HINT, Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("4h", timedelta(hours=4)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("5d", timedelta(days=5)),
        ("2w", timedelta(weeks=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        (" 15m ", timedelta(minutes=15)),
        ("15M", timedelta(minutes=15)),
        ("PT15M", timedelta(minutes=15)),
        ("PT30S", timedelta(seconds=30)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P5D", timedelta(days=5)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P2W", timedelta(weeks=2)),
        ("pt15m", timedelta(minutes=15)),
    ],
)
def test_accepts_compact_and_iso_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_timedelta_passes_through() -> None:
    assert parse_duration(timedelta(minutes=7)) == timedelta(minutes=7)


@pytest.mark.parametrize(
    "text",
    ["5 dayz", "", "   ", "15", "abc", "1.5h", "-5m", "1m1h", "5x", "P", "PT", "P1M", "P1Y", "15 minutes"],
)
def test_rejects_text_that_is_not_a_duration_with_the_hint(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert repr(text) in message
    assert DURATION_HINT in message
    assert "30s, 15m, 1h30m, 5d" in message and "PT15M" in message


@pytest.mark.parametrize("text", ["9999999999d", "99999999999999999999999s"])
def test_absurdly_long_duration_is_a_value_error_not_a_crash(text: str) -> None:
    with pytest.raises(ValueError, match="far too long"):
        parse_duration(text)
    with pytest.raises(ValidationError):  # reported like any other mistake, not raised through
        _Holder.model_validate({"wait": text})


@pytest.mark.parametrize("number", [15, 0, 900, 1.5, True])
def test_rejects_a_number_without_unit(number: object) -> None:
    # YAML reads ``ack_within: 15`` as the integer 15: minutes? seconds? The author must say.
    with pytest.raises(ValueError, match="has no unit") as caught:
        parse_duration(number)  # type: ignore[arg-type]
    assert DURATION_HINT in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=5), "5d"),
        (timedelta(weeks=2), "14d"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (-timedelta(minutes=90), "-1h30m"),
    ],
)
def test_format_is_the_compact_form(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("text", ["30s", "15m", "1h30m", "5d", "2w", "PT15M", "P5D", "P1DT2H", "1d23h59m59s"])
def test_format_then_parse_round_trips(text: str) -> None:
    value = parse_duration(text)
    assert parse_duration(format_duration(value)) == value


class _Holder(BaseModel):
    wait: Duration


def test_duration_field_parses_and_serialises_back_to_the_compact_form() -> None:
    holder = _Holder.model_validate({"wait": "PT1H30M"})
    assert holder.wait == timedelta(hours=1, minutes=30)
    assert holder.model_dump(mode="json") == {"wait": "1h30m"}
    assert _Holder.model_validate_json(holder.model_dump_json()) == holder


def test_duration_field_reports_the_hint() -> None:
    with pytest.raises(ValidationError) as caught:
        _Holder.model_validate({"wait": "5 dayz"})
    assert DURATION_HINT in str(caught.value)
