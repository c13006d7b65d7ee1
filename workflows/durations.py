"""Durations as policy authors write them (``30s``, ``15m``, ``1h30m``, ``5d``, ``2w`` or ISO 8601),
and moments as escalate writes them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_COMPACT = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")

DURATION_HINT = "write a duration like 30s, 15m, 1h30m, 5d, 2w or ISO 8601 such as PT15M or P5D"


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse a policy duration; raise ValueError naming the accepted forms."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"{text!r} has no unit: {DURATION_HINT}")
    compact = text.strip().replace(" ", "").lower()
    match = _COMPACT.match(compact)
    if match is None or not any(match.groups()):
        match = _ISO.match(text.strip().upper())
        if match is None or not any(match.groups()):
            raise ValueError(f"{text!r} is not a duration: {DURATION_HINT}")
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    try:
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:  # not a ValueError: pydantic would let it crash the caller
        raise ValueError(f"{text!r} is far too long: {DURATION_HINT}") from None


def format_duration(value: timedelta) -> str:
    """The compact form, e.g. ``1h30m``; ``0s`` for zero."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A timedelta field that accepts the policy forms and serialises back to them."""


def format_time(moment: datetime | None) -> str:
    """A moment as every message, timeline entry and report writes it: ``2026-12-07 03:12:00
    UTC``; ``-`` when there is none. An aware time is converted to UTC; a naive one is taken to
    be UTC already."""
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
