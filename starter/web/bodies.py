"""The public request bodies of the HTTP API, derived from the request models they carry.

Each body is its workflow request model (one name for one thing: ``note`` here is ``note``
there), tightened where the HTTP edge must refuse more than the workflow does (the workflow's
AckRequest and ResumeRequest take notes of any length so that old histories replay), and with a
JSON schema as strict as its validation: what the OpenAPI document allows is what is accepted.

So the schema and the validation cannot drift apart, each constraint below is written once, as
a pattern or an enum that both the schema publishes and the edge checks (with the regex engine
a JSON-schema validator uses: ``$`` is the end of the text, no trailing newline), and the words of
a refusal stay the model's own ("unknown priority 'P9': write one of P1…").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from workflows.durations import DURATION_HINT, format_duration, parse_duration
from workflows.model import (
    MAX_NOTE,
    AckRequest,
    EscalateRequest,
    MaintenanceRequest,
    NewIncident,
    NoteRequest,
    PriorityRequest,
    ReassignRequest,
    ResolveRequest,
    ResumeRequest,
    SlaReasonRequest,
    SnoozeRequest,
    WaitRequest,
)
from workflows.policy import PRIORITIES, PRIORITY_ALIASES, PRIORITY_HINT, normalise_priority

# ── the constraints, each written once ───────────────────────────────────────────────────────

WHITESPACE = "".join(
    map(chr, [*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B)])
) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
"""What a name or a text is stripped of: every character that Python, Unicode or ECMAScript
calls whitespace (so what is left strips to itself in the workflow's models as well)."""
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""WHITESPACE as the inside of a character class."""
NOT_BLANK = f"[^{_SPACE}]"
"""Somewhere a character that is not WHITESPACE (a pattern is searched, not anchored)."""
INCIDENT_KEY = r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}$"
POLICY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
EMAIL = f"^[^@<>{_SPACE}]+@[^@<>{_SPACE}]+\\.[^@<>{_SPACE}]+$"
MAX_EMAIL = 320


def _n(unit: str) -> str:
    return f"[0-9]{{1,6}}[{unit}{unit.lower()}]"


def _compact_duration() -> str:
    """``1h30m``: units in the order w d h m s, each at most once, at least one."""
    units = "WDHMS"
    forms = ["".join([_n(first), *(f"(?:{_n(later)})?" for later in units[units.index(first) + 1 :])]) for first in units]
    return "|".join(forms)


def _iso_duration() -> str:
    """``P1DT2H``: weeks and days, then after T hours, minutes and seconds; at least one number."""
    some_time = f"(?:{_n('H')}(?:{_n('M')})?(?:{_n('S')})?|{_n('M')}(?:{_n('S')})?|{_n('S')})"
    any_time = f"(?:[Tt](?:{_n('H')})?(?:{_n('M')})?(?:{_n('S')})?)?"
    return f"[Pp](?:{_n('W')}(?:{_n('D')})?{any_time}|{_n('D')}{any_time}|[Tt]{some_time})"


DURATION = f"^(?:{_compact_duration()}|{_iso_duration()})$"
"""``30s``, ``15m``, ``1h30m``, ``5d``, ``2w`` or ISO 8601 (``PT15M``, ``P5D``), up to six digits a
unit: the forms ``parse_duration`` reads, without the spaces it also forgives."""
_DURATION = re.compile(DURATION.removeprefix("^").removesuffix("$"))

PRIORITY_SPELLINGS = (*PRIORITIES, *PRIORITY_ALIASES)


def _checked(pattern: str, message: Callable[[str], str]) -> Callable[[str], str]:
    compiled = re.compile(pattern.removeprefix("^").removesuffix("$"))

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise ValueError(message(value))
        return value

    return check


def _stripped(value: str) -> str:
    return value.strip(WHITESPACE)


def _priority(value: str) -> str:
    if value not in PRIORITY_SPELLINGS:
        raise ValueError(f"unknown priority {value!r}: {PRIORITY_HINT}")
    return normalise_priority(value)


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str) or _DURATION.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a duration: {DURATION_HINT} (at most six digits a unit)")
    return parse_duration(value)


_BLANK = re.compile(NOT_BLANK)


def _not_blank(what: str) -> AfterValidator:
    """Refuse a blank text (naming what to write instead); strip the rest."""

    def check(value: str) -> str:
        if _BLANK.search(value) is None:
            raise ValueError(f"is blank: write {what}")
        return _stripped(value)

    return AfterValidator(check)


def _line_schema(max_length: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOT_BLANK})


Who = Annotated[str, StringConstraints(max_length=100), _not_blank("who (a name)"), _line_schema(100)]
"""A person: not blank, at most 100 characters as sent; stripped."""
Text = Annotated[str, StringConstraints(max_length=MAX_NOTE), _not_blank("a few words"), _line_schema(MAX_NOTE)]
"""A reason, a resolution or a note: not blank, at most MAX_NOTE characters as sent; stripped."""
Summary = Annotated[str, StringConstraints(max_length=500), _not_blank("what is wrong, in a line"), _line_schema(500)]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE)] | None
"""The optional note of an ack or a resume: as long as a note may be, kept as written."""
IncidentKey = Annotated[
    str,
    AfterValidator(
        _checked(
            INCIDENT_KEY,
            lambda value: f"{value!r} is not a valid incident key: use up to 200 letters, digits and . _ : @ / + = -, "
            "starting with a letter or digit (e.g. db-disk-full-2026-11-25)",
        )
    ),
    WithJsonSchema({"type": "string", "pattern": INCIDENT_KEY, "minLength": 1, "maxLength": 200}),
]
PolicyName = Annotated[
    str,
    AfterValidator(
        _checked(
            POLICY_NAME,
            lambda value: f"{value!r} is not a valid policy name: use letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    ),
    WithJsonSchema({"type": "string", "pattern": POLICY_NAME, "minLength": 1}),
]
Priority = Annotated[str, AfterValidator(_priority), WithJsonSchema({"type": "string", "enum": list(PRIORITY_SPELLINGS)})]
"""``P1``…``P5``, or one of the names for them (``critical`` is P1), answered as ``P1``…``P5``."""
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DURATION, "examples": ["30s", "15m", "1h30m", "2d", "PT15M"]}),
]
Email = Annotated[
    str,
    AfterValidator(
        _checked(EMAIL, lambda value: f"{value!r} is not an email address: write e.g. customer@example.com")
    ),
    StringConstraints(max_length=MAX_EMAIL),
    WithJsonSchema({"type": "string", "pattern": EMAIL, "maxLength": MAX_EMAIL}),
]

EDGE = ConfigDict(extra="forbid", strict=True, validate_by_name=False, validate_by_alias=True)
"""What the HTTP edge takes: no field the body does not define, no type coerced into another (the
schema says string, a number is refused), and a field under its published name only."""


# ── opening an incident ──────────────────────────────────────────────────────────────────────


class NewIncidentBody(NewIncident):
    """A new incident (or a repeat of an open one): what a backend service, an alert or a person
    sends. The workflow's own fields (a carried state, a history limit, a baseline, a request
    id) are no part of it: a body that has any of them is refused, naming them."""

    model_config = EDGE | ConfigDict(title="NewIncident")

    policy: PolicyName
    key: IncidentKey
    priority: Priority
    summary: Summary
    details: dict[str, Any] = Field(
        default_factory=dict, description="Anything that helps the responder, as JSON: at most 64 KiB."
    )
    reporter: Email | None = Field(default=None, description="An email address: the reporter is told what happens next, and the outcome.")


# ── responders (they mirror the CLI flags) ───────────────────────────────────────────────────


class AckBody(AckRequest):
    model_config = EDGE
    by: Who
    note: Note = None


class ResolveBody(ResolveRequest):
    model_config = EDGE
    by: Who
    resolution: Text


class EscalateBody(EscalateRequest):
    model_config = EDGE
    by: Who
    reason: Text
    to: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="A tier to jump to, by number or name; the next tier when not given."
    )


class ReassignBody(ReassignRequest):
    model_config = EDGE
    by: Who
    policy: PolicyName
    reason: Text


class SnoozeBody(SnoozeRequest):
    model_config = EDGE
    by: Who
    duration: Duration = Field(alias="for")


class NoteBody(NoteRequest):
    model_config = EDGE
    by: Who
    note: Text


class PriorityBody(PriorityRequest):
    model_config = EDGE
    by: Who
    priority: Priority


class WaitBody(WaitRequest):
    model_config = EDGE
    by: Who
    reason: Text


class ResumeBody(ResumeRequest):
    model_config = EDGE
    by: Who
    note: Note = None


class SlaReasonBody(SlaReasonRequest):
    model_config = EDGE
    by: Who
    reason: Text


# ── maintenance windows ──────────────────────────────────────────────────────────────────────


class MaintenanceBody(BaseModel):
    """A maintenance window to start (or extend): the policy is the one in the path."""

    model_config = EDGE
    by: Who
    duration: Duration = Field(alias="for")
    reason: Text

    def request(self, policy: str) -> MaintenanceRequest:
        return MaintenanceRequest.model_validate({"policy": policy, "for": self.duration, "by": self.by, "reason": self.reason})


# ── Prometheus Alertmanager (webhook payload version 4) ──────────────────────────────────────


def _version_4(value: str) -> str:
    if value != "4":
        raise ValueError(f"webhook payload version {value!r}: this endpoint takes version 4")
    return value


class Alert(BaseModel):
    """One alert of a group, as Alertmanager sends it (fields it may add later are ignored)."""

    model_config = ConfigDict(strict=True)
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str


class AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(strict=True)
    version: Annotated[str, AfterValidator(_version_4), WithJsonSchema({"type": "string", "enum": ["4"]})]
    groupKey: str | None = None
    truncatedAlerts: int = 0
    status: str | None = None
    receiver: str | None = None
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str | None = None
    alerts: list[Alert]


# ── the codec endpoint (Temporal's remote codec protocol) ────────────────────────────────────

BASE64 = r"^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$"
"""Base64, standard or URL-safe, padded or not: as Temporal's JSON writes payload bytes."""
Base64 = Annotated[str, StringConstraints(pattern=BASE64)]


class CodecPayload(BaseModel):
    """One payload in Temporal's JSON form: metadata values and data in base64."""

    model_config = ConfigDict(strict=True)
    metadata: dict[str, Base64] = Field(default_factory=dict)
    data: Base64 = ""


class CodecPayloads(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    payloads: list[CodecPayload] = Field(default_factory=list)
