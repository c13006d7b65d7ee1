"""The incident's data: what starts it, what responders send it, what it records and reports.

These models cross the wire (client ⇄ Temporal ⇄ worker) through the pydantic data converter,
so each is validated at the edge, before an incident ever sees it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from temporalio.common import RetryPolicy

from workflows.durations import Duration
from workflows.errors import POLICY_FAILURES
from workflows.incident_state import IncidentState
from workflows.incident_state import IncidentStatus as IncidentStatus  # re-exported, as the next three
from workflows.incident_state import Status as Status
from workflows.policy import PolicyName, Priority
from workflows.timeline import EventKind as EventKind
from workflows.timeline import TimelineEvent as TimelineEvent

TASK_QUEUE = "escalations"
WORKFLOW_ID_PREFIX = "incident-"

LOAD_POLICY_ACTIVITY = "load_policy"
NOTIFY_ACTIVITY = "notify"
MAINTENANCE_ACTIVITY = "maintenance_window"
RELEASE_SIGNAL = "maintenance_over"
"""What a policy's maintenance workflow signals to the incidents it held when the window ends."""
EXTEND_SIGNAL = "maintenance_extended"
"""What it signals to them, with the new end, when the window is extended."""
HOLD_SIGNAL = "hold"
"""What an incident opened during a window signals to the policy's maintenance workflow."""
POLICY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=list(POLICY_FAILURES),
)
"""How a workflow reads a policy: a few attempts for a worker's passing trouble, none when the
policy is unknown or does not load."""


def maintenance_id(policy: str) -> str:
    return f"maintenance-{policy}"


REPORTER = "reporter"
"""The ``person`` of messages to the incident's reporter (an email address, not a directory entry)."""
LOG_CHANNEL = "log"
"""The worker log: where a message goes when none of the person's channels is configured."""

MAX_DETAILS_BYTES = 64 * 1024

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}$")


def _check_key(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid incident key: use up to 200 letters, digits and . _ : @ / + = -, "
            "starting with a letter or digit (e.g. db-disk-full-2026-11-25)"
        )
    return value


IncidentKey = Annotated[str, AfterValidator(_check_key)]

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _check_email(value: str) -> str:
    value = value.strip()
    if len(value) > 320 or not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address: write e.g. customer@example.com")
    return value


MAX_NOTE = 10_000
"""The longest note, reason or resolution, in characters. Unbounded, one responder's pasted log
could push the incident's final status past Temporal's 2 MB payload limit, and the incident could
then never close (its completion refused every time)."""
MAX_NOTES_TOTAL = 500_000
"""All of an incident's notes together, in characters: notes are never folded away, and what a
run carries must stay well inside Temporal's 2 MB payload limit."""

Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NOTE)]
OptionalNote = Annotated[str, StringConstraints(max_length=MAX_NOTE)] | None
"""The note of an ack or resume in an HTTP body: as long as a note may be. (The workflow's own
AckRequest and ResumeRequest keep taking any length, so that histories with longer notes still
replay; the incident's update validators refuse new ones.)"""

MessageKind = Literal[
    "page",
    "reminder",
    "escalated",
    "exhausted",
    "sla_breach",
    "unreachable",
    "resolved",
    "customer_update",
    "ack_reminder",
]


def workflow_id(key: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{key}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewIncident(_Model):
    """What a backend service, an alert or the CLI sends to open (or join) an incident."""

    policy: PolicyName
    key: IncidentKey
    priority: Priority
    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    details: dict[str, Any] = Field(default_factory=dict)
    reporter: Annotated[str, AfterValidator(_check_email)] | None = None
    """An email address: the reporter is told what happens next, and the outcome."""

    @field_validator("details")
    @classmethod
    def _details_fit(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, default=str).encode())
        if size > MAX_DETAILS_BYTES:
            raise ValueError(
                f"details are {size} bytes, over the limit of {MAX_DETAILS_BYTES} (64 KiB): "
                "send a link to the full data instead"
            )
        return value


class IncidentRequest(NewIncident):
    """The incident workflow's input: a new incident, or (after continue-as-new) one going on."""

    request_id: str = ""
    """Set by the starter; tells the first trigger (which created the incident) from repeats."""
    carried: IncidentState | None = None
    """The state of the incident so far, when a long-lived incident continues as a new run (only
    the incident's own continue-as-new may send it: a new incident refuses one)."""
    history_limit: int | None = None
    """Continue as a new run once the history has this many events (default: the workflow's)."""
    baseline: str | None = None
    """The workflow baseline (``PATCH_BASELINE``) the starter opened it on: the incident takes
    that baseline's paths without recording the patch marker, whose upsert of the
    TemporalChangeVersion search attribute costs the server a visibility write per incident.
    (Workers must be upgraded before the starters that send it.)"""


class OccurrenceBatch(_Model):
    """Repeat occurrences of an open incident, counted together (the latest request stands for them)."""

    request: IncidentRequest
    count: int = Field(ge=1)


class TriggerResult(_Model):
    created: bool
    """True when this trigger opened the incident; False when it joined an open one."""
    status: IncidentStatus


class AckRequest(_Model):
    by: Who
    note: str | None = None


class ResolveRequest(_Model):
    by: Who
    resolution: Text


class EscalateRequest(_Model):
    by: Who
    reason: Text
    to: str | None = None
    """A tier to jump to, by number or name; the next tier when not given."""


class ReassignRequest(_Model):
    by: Who
    policy: PolicyName
    reason: Text


class SnoozeRequest(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    by: Who
    duration: Duration = Field(alias="for")


class SlaReasonRequest(_Model):
    by: Who
    reason: Text


class WaitRequest(_Model):
    by: Who
    reason: Text


class ResumeRequest(_Model):
    by: Who
    note: str | None = None


class MaintenanceRequest(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    policy: PolicyName
    by: Who
    duration: Duration = Field(alias="for")
    reason: Text


class MaintenanceEnd(_Model):
    by: Who


class MaintenanceWindow(_Model):
    """A policy's maintenance window: incidents opened meanwhile page nobody until it ends."""

    policy: str
    since: datetime
    until: datetime
    by: str
    reason: str
    ended_by: str | None = None
    held: list[str] = Field(default_factory=list)
    """The incidents held back, waiting to page when the window ends."""


class NoteRequest(_Model):
    by: Who
    note: Text = Field(validation_alias=AliasChoices("note", "text"))
    """Called ``text`` by incidents before 2026-12 (their histories still decode)."""


class PriorityRequest(_Model):
    by: Who
    priority: Priority


class Notification(_Model):
    """One message to one person on one channel. ``idempotency_key`` never changes across retries."""

    idempotency_key: str
    kind: MessageKind
    incident_key: str
    policy: str
    priority: str
    summary: str
    person: str
    channel: str
    address: str
    tier: int
    tier_name: str
    tier_count: int
    ack_by: datetime | None = None
    """When this tier's window ends (for pages and reminders)."""
    tried: list[str] = Field(default_factory=list)
    """For escalations and manager notices: the tiers already paged, e.g. 'L1 support (15m)'."""
    reason: str = ""
    next_step: str = ""
    """Where it goes if nobody acknowledges in time, e.g. "tier 3 (L3 head of payments)"."""
    reporter: str | None = None
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class Delivery(_Model):
    channel: str
    outcome: Literal["delivered", "logged", "not_configured"]
    """``not_configured``: this worker has no way to send on that channel; try the next one."""
    detail: str = ""


class PolicyRef(_Model):
    name: PolicyName


