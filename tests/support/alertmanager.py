"""What Prometheus Alertmanager writes in its webhooks and its API: times and fingerprints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """A time as Alertmanager writes it: UTC, to the millisecond, with a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint() -> str:
    """A new alert fingerprint (16 hex digits, as Alertmanager's)."""
    return uuid.uuid4().hex[:16]
