"""What each kind of message is (whether it pages a tier, whether it offers the one-click ack,
whether it should wake anybody, how the Temporal UI names it), and what a message says when the
incident sends it. The incident, the link maker and the channels all read this one table."""

from __future__ import annotations

from typing import NamedTuple, get_args

from workflows.incident_state import IncidentState
from workflows.model import IncidentRequest, MessageKind, Notification


class MessageTraits(NamedTuple):
    verb: str
    """How the Temporal UI's event list reads it: "<verb> erin via email"."""
    to_tier: bool
    """Goes to the people of the tier being paged (the review counts them as paged)."""
    pages_tier: bool
    """Sent to every person of the tier that starts being paged: the person's contact rules
    apply, and nobody of the tier being reachable tells the manager."""
    offers_ack: bool
    """Carries the one-click acknowledge link (a message about an open, unacknowledged page)."""
    wakes: bool
    """Sent at the incident's priority; the rest (outcomes, updates to the reporter) go quietly."""


MESSAGE_KINDS: dict[MessageKind, MessageTraits] = {
    "page": MessageTraits("page", to_tier=True, pages_tier=True, offers_ack=True, wakes=True),
    "reminder": MessageTraits("remind", to_tier=True, pages_tier=False, offers_ack=True, wakes=True),
    "escalated": MessageTraits("page (escalated)", to_tier=True, pages_tier=True, offers_ack=True, wakes=True),
    "exhausted": MessageTraits("tell the manager (exhausted):", to_tier=False, pages_tier=False, offers_ack=True, wakes=True),
    "sla_breach": MessageTraits("tell the manager (SLA breached):", to_tier=False, pages_tier=False, offers_ack=False, wakes=True),
    "unreachable": MessageTraits(
        "tell the manager (tier unreachable):", to_tier=False, pages_tier=False, offers_ack=True, wakes=True
    ),
    "resolved": MessageTraits("tell the outcome to", to_tier=False, pages_tier=False, offers_ack=False, wakes=False),
    "customer_update": MessageTraits("update the reporter", to_tier=False, pages_tier=False, offers_ack=False, wakes=False),
    "ack_reminder": MessageTraits("remind the acker", to_tier=False, pages_tier=False, offers_ack=False, wakes=True),
}

assert set(MESSAGE_KINDS) == set(get_args(MessageKind)), "every message kind has its traits"

TO_TIER: frozenset[str] = frozenset(kind for kind, kind_traits in MESSAGE_KINDS.items() if kind_traits.to_tier)
"""The kinds of message that go to the people of the tier being paged."""


def traits(kind: MessageKind) -> MessageTraits:
    return MESSAGE_KINDS[kind]


MAX_TRIED_IN_MESSAGE = 10
"""A message names at most this many of the tiers tried before (the latest, after a count of the
earlier ones): a policy repeating for weeks would otherwise put hundreds in every page, and into
every notification's activity input in the history."""


def compose(kind: MessageKind, person: str, incident: IncidentState, request: IncidentRequest, *, reason: str = "") -> Notification:
    """The message of ``kind`` to ``person``, as the incident stands now: its number is the
    incident's notification count, which keeps the idempotency key the same across retries."""
    policy = incident.policy
    return Notification(
        idempotency_key=f"{request.key}/{incident.notification_count}/{person}",
        kind=kind,
        incident_key=request.key,
        policy=policy.name,
        priority=incident.priority,
        summary=request.summary,
        person=person,
        channel="",
        address="",
        tier=incident.tier,
        tier_name=policy.tier_name(incident.tier),
        tier_count=policy.tier_count,
        ack_by=incident.clock.deadline if incident.clock is not None else None,
        tried=latest_tries(incident.tried),
        reason=reason,
        next_step=incident.next_tier_phrase().removeprefix(" to "),
        reporter=request.reporter,
        acknowledged_by=incident.acknowledged_by,
        resolved_by=incident.resolved_by,
        resolution=incident.resolution,
    )


def latest_tries(tried: list[str]) -> list[str]:
    if len(tried) <= MAX_TRIED_IN_MESSAGE:
        return list(tried)
    shown = MAX_TRIED_IN_MESSAGE - 1
    return [f"{len(tried) - shown} earlier tiers", *tried[-shown:]]
