"""Notifications as the workflow hands them to a channel, for testing channels on their own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workflows.model import MessageKind, Notification


def notification(*, key: str, person: str, channel: str, address: str, round: int = 1, **fields: Any) -> Notification:
    """A page (unless ``kind`` says otherwise) at tier 1 of a P1 incident; its idempotency key
    as the workflow makes it (``<key>/<round>/<person>/<channel>``)."""
    values: dict[str, Any] = dict(
        idempotency_key=f"{key}/{round}/{person}/{channel}",
        kind="page",
        incident_key=key,
        priority="P1",
        person=person,
        channel=channel,
        address=address,
        tier=1,
        tried=[],
        reason="",
    )
    values.update(fields)
    return Notification(**values)


def webhook_note(
    address: str, *, key: str = "checkout-latency-1", person: str = "olga", channel: str = "webhook", **changes: Any
) -> Notification:
    """A page of the ``hooks`` policy (tests.support.delivery) to ``address``."""
    fields: dict[str, Any] = dict(
        policy="hooks", summary="Checkout latency over 2s", tier_name="On-call", tier_count=2,
        ack_by=datetime(2026, 11, 25, 12, 10, tzinfo=UTC),
    )
    fields.update(changes)
    return notification(key=key, person=person, channel=channel, address=address, **fields)


def email_note(kind: MessageKind = "page", *, key: str = "db-disk-full-1", person: str = "erin", **changes: Any) -> Notification:
    """A message of the ``fast`` test policy by email to ``<person>@example.com``."""
    fields: dict[str, Any] = dict(
        kind=kind, policy="fast", summary="Disk full on db-1", tier_name="L1 first line", tier_count=3,
        ack_by=datetime(2026, 11, 25, 12, 15, tzinfo=UTC),
        tried=["tier 1 L1 first line (erin, frank) for 4s"] if kind in ("escalated", "exhausted") else [],
    )
    fields.update(changes)
    return notification(key=key, person=person, channel="email", address=f"{person}@example.com", **fields)
