"""The incident's typed search attributes: what the Temporal UI and ``escalate list`` filter on,
e.g. ``IncidentStatus="triggered" AND Tier>=2``. Registered by ``escalate dev``, by every worker at start
(when the cluster lets it) and by ``escalate setup`` on a real cluster."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

from workflows.incident_state import IncidentState

INCIDENT_KEY = SearchAttributeKey.for_keyword("IncidentKey")
POLICY = SearchAttributeKey.for_keyword("Policy")
PRIORITY = SearchAttributeKey.for_keyword("Priority")
STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
"""Not `Status`: the visibility query parser reads an unquoted STATUS as an SQL keyword, and the
Temporal UI would show a custom `Status` in place of the execution status."""
TIER = SearchAttributeKey.for_int("Tier")
ACKNOWLEDGED_BY = SearchAttributeKey.for_keyword("AcknowledgedBy")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")

ALL = (INCIDENT_KEY, POLICY, PRIORITY, STATUS, TIER, ACKNOWLEDGED_BY, SLA_BREACHED)

Values = dict[str, object]


def changes(previous: Values, current: Values) -> list[SearchAttributeUpdate[Any]]:
    """The upserts that bring the published attributes from ``previous`` to ``current``
    (only what changed: each upsert is an event in the history)."""
    updates: list[SearchAttributeUpdate[Any]] = []
    for key in ALL:
        if key.name in current and previous.get(key.name) != current[key.name]:
            value = current[key.name]
            updates.append(key.value_unset() if value is None else key.value_set(value))  # type: ignore[arg-type]
    return updates


def values_for(key: str, incident: IncidentState) -> Values:
    """The attributes of an incident as it stands."""
    return {
        INCIDENT_KEY.name: key,
        POLICY.name: incident.policy.name,
        PRIORITY.name: incident.priority,
        STATUS.name: incident.state,
        TIER.name: incident.tier,
        ACKNOWLEDGED_BY.name: incident.acknowledged_by,
        SLA_BREACHED.name: incident.sla_breached,
    }


def at_start(key: str, policy: str, priority: str) -> TypedSearchAttributes:
    """A new incident as it starts (triggered, tier 1), set by the starter with the start itself:
    the incident's first workflow task then has nothing to upsert (each upsert is a visibility
    write for the server)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(INCIDENT_KEY, key),
            SearchAttributePair(POLICY, policy),
            SearchAttributePair(PRIORITY, priority),
            SearchAttributePair(STATUS, "triggered"),
            SearchAttributePair(TIER, 1),
            SearchAttributePair(SLA_BREACHED, False),
        ]
    )


def values_of(attributes: TypedSearchAttributes) -> Values:
    """The incident attributes among ``attributes`` (what a run already has published)."""
    return {key.name: value for key in ALL if (value := attributes.get(key)) is not None}


class Published:
    """The search attributes as the server has them for one run, to upsert only what changed."""

    def __init__(self, values: Values) -> None:
        self.values = values

    def changes_to(self, current: Values) -> list[SearchAttributeUpdate[Any]]:
        """The upserts that bring the server to ``current`` (remembered as published)."""
        updates = changes(self.values, current)
        if updates:
            self.values = current
        return updates
