"""What each kind of message is: whether it pages a tier, whether it offers the one-click ack,
whether it should wake anybody, and how the Temporal UI names it. The incident, the link
maker and the channels all read this one table."""

from __future__ import annotations

from typing import NamedTuple, get_args

from workflows.model import MessageKind


class MessageTraits(NamedTuple):
    verb: str
    """How the Temporal UI's event list reads it: "<verb> erin via email"."""
    pages_tier: bool
    """Sent to every person of the tier that starts being paged: the person's contact rules
    apply, and nobody of the tier being reachable tells the manager."""
    offers_ack: bool
    """Carries the one-click acknowledge link (a message about an open, unacknowledged page)."""
    wakes: bool
    """Sent at the incident's priority; the rest (outcomes, updates to the reporter) go quietly."""


MESSAGE_KINDS: dict[MessageKind, MessageTraits] = {
    "page": MessageTraits("page", pages_tier=True, offers_ack=True, wakes=True),
    "reminder": MessageTraits("remind", pages_tier=False, offers_ack=True, wakes=True),
    "escalated": MessageTraits("page (escalated)", pages_tier=True, offers_ack=True, wakes=True),
    "exhausted": MessageTraits("tell the manager (exhausted):", pages_tier=False, offers_ack=True, wakes=True),
    "sla_breach": MessageTraits("tell the manager (SLA breached):", pages_tier=False, offers_ack=False, wakes=True),
    "unreachable": MessageTraits(
        "tell the manager (tier unreachable):", pages_tier=False, offers_ack=True, wakes=True
    ),
    "resolved": MessageTraits("tell the outcome to", pages_tier=False, offers_ack=False, wakes=False),
    "customer_update": MessageTraits("update the reporter", pages_tier=False, offers_ack=False, wakes=False),
    "ack_reminder": MessageTraits("remind the acker", pages_tier=False, offers_ack=False, wakes=True),
}

assert set(MESSAGE_KINDS) == set(get_args(MessageKind)), "every message kind has its traits"


def traits(kind: MessageKind) -> MessageTraits:
    return MESSAGE_KINDS[kind]
