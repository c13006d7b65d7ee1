"""Integrations: Prometheus Alertmanager's webhooks (payload version 4) open, join and resolve
incidents."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from escalate.settings import Settings
from starter.api import IncidentNotFound, IncidentRejected, InvalidRequest
from starter.web.bodies import Alert, AlertmanagerPayload
from starter.web.deps import Authorised, SettingsDep, TemporalDep
from starter.web.problems import FieldError, Problem, ProblemDetails, problems
from workflows.model import IncidentRequest
from workflows.policy import normalise_priority

router = APIRouter(prefix="/v1/integrations", tags=["integrations"], dependencies=[Authorised])

SEVERITY_PRIORITY = {
    "critical": "P1",
    "page": "P1",
    "error": "P2",
    "high": "P2",
    "major": "P2",
    "warning": "P3",
    "minor": "P3",
    "low": "P4",
    "info": "P5",
    "none": "P5",
}
"""The ``severity`` label, mapped to a priority when an alert has no ``escalate_priority``."""


class AlertError(BaseModel):
    alert: str
    alertname: str | None
    detail: str


class AlertmanagerOutcome(BaseModel):
    """What became of each alert, by incident key (``am-<fingerprint>``)."""

    opened: list[str] = Field(default_factory=list)
    joined: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    already_closed: list[str] = Field(default_factory=list)
    errors: list[AlertError] = Field(default_factory=list)


class AlertsProblem(ProblemDetails):
    """Invalid (``errors`` by field), or some alerts could not be taken: then what became of
    each alert, as in a 200 answer, and ``errors`` by alert."""

    opened: list[str] | None = None
    joined: list[str] | None = None
    resolved: list[str] | None = None
    already_closed: list[str] | None = None
    errors: list[FieldError | AlertError] | None = None  # type: ignore[assignment]


def alert_incident(alert: Alert, settings: Settings) -> IncidentRequest:
    """The incident an alert opens: keyed by its fingerprint, so every repeat of the same alert
    joins the same incident. Policy: the ``escalate_policy`` label, else
    ``ESCALATE_ALERTMANAGER_POLICY``. Priority: ``escalate_priority``, else ``severity`` mapped by
    SEVERITY_PRIORITY, else ``ESCALATE_ALERTMANAGER_PRIORITY``."""
    labels = alert.labels
    policy = labels.get("escalate_policy") or settings.alertmanager_policy
    if not policy:
        raise ValueError("no policy: give the alert an escalate_policy label, or set ESCALATE_ALERTMANAGER_POLICY")
    severity = SEVERITY_PRIORITY.get(labels.get("severity", "").lower())
    priority = labels.get("escalate_priority") or severity or settings.alertmanager_priority
    name = labels.get("alertname", "alert")
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or name
    where = labels.get("instance") or labels.get("job")
    return IncidentRequest(
        policy=policy,
        key=f"am-{alert.fingerprint}",
        priority=normalise_priority(priority),
        summary=f"{name}: {summary}" + (f" ({where})" if where and where not in summary else ""),
        details={
            "source": "alertmanager",
            "labels": labels,
            "annotations": alert.annotations,
            "startsAt": alert.startsAt,
            "generatorURL": alert.generatorURL,
        },
    )


def resolution(alert: Alert) -> str:
    ended = f" at {alert.endsAt}" if alert.endsAt else ""
    return f"alert {alert.labels.get('alertname', alert.fingerprint)} resolved in Alertmanager{ended}"


@router.post(
    "/alertmanager",
    response_model=AlertmanagerOutcome,
    responses={
        422: {"model": AlertsProblem, "description": "Invalid, or some alerts could not be taken (the others were)"},
        **problems(400, 401, 413, 503),
    },
)
async def alertmanager(payload: AlertmanagerPayload, settings: SettingsDep, temporal: TemporalDep) -> AlertmanagerOutcome:
    """Prometheus Alertmanager webhooks (version 4): each firing alert opens or joins the
    incident of its fingerprint; a resolved alert resolves it (by "alertmanager")."""
    outcome = AlertmanagerOutcome()
    escalations = await temporal.escalations()
    for alert in payload.alerts:
        key = f"am-{alert.fingerprint}"
        try:
            if alert.status == "firing":
                result = await escalations.start_incident(alert_incident(alert, settings))
                (outcome.opened if result.created else outcome.joined).append(key)
            else:
                try:
                    await escalations.resolve(key, by="alertmanager", resolution=resolution(alert))
                    outcome.resolved.append(key)
                except (IncidentRejected, IncidentNotFound):
                    outcome.already_closed.append(key)
        except (ValueError, IncidentRejected, InvalidRequest) as err:
            # (Temporal out of reach is a 503 for the whole group: Alertmanager sends it again.)
            outcome.errors.append(AlertError(alert=key, alertname=alert.labels.get("alertname"), detail=str(err)))
    if outcome.errors:
        detail = "; ".join(f"{e.alert} ({e.alertname}): {e.detail}" for e in outcome.errors)
        raise Problem(422, "Some alerts could not be taken", detail, **outcome.model_dump())
    return outcome
