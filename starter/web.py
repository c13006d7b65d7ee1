"""The HTTP intake (``escalate api``): backend services open incidents, responders act on them,
Prometheus Alertmanager sends its alerts. OpenAPI docs at ``/docs``.

Errors are ``application/problem+json`` (RFC 9457) with a ``detail`` that says what to change and,
for bad input, the ``errors`` by field. Nothing here keeps state of its own: every answer comes
from the incident's workflow or from Temporal's visibility store.
"""

from __future__ import annotations

import asyncio
import hmac
from html import escape
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from escalate.links import LinkError, read_token
from escalate.logs import get_logger
from escalate.settings import Settings
from escalate.temporal import data_converter
from starter.api import (
    Escalations,
    IncidentNotFound,
    IncidentRejected,
    InvalidRequest,
    TemporalUnavailable,
)
from workflows.durations import Duration
from workflows.model import IncidentRequest, IncidentStatus, MaintenanceWindow, OptionalNote, Text, Who
from workflows.policy import PolicyName, Priority, normalise_priority

PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 5
MAX_BODY_BYTES = 1024 * 1024


class Problem(Exception):
    """An error answer: status, a short title and a detail that says what to do."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# ── request bodies (they mirror the CLI flags) ───────────────────────────────────────────────


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AckBody(_Body):
    by: Who
    note: OptionalNote = None


class ResolveBody(_Body):
    by: Who
    resolution: Text


class EscalateBody(_Body):
    by: Who
    reason: Text
    to: str | None = None


class ReassignBody(_Body):
    by: Who
    policy: PolicyName
    reason: Text


class SnoozeBody(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    by: Who
    duration: Duration = Field(alias="for")


class NoteBody(_Body):
    by: Who
    note: Text


class PriorityBody(_Body):
    by: Who
    priority: Priority


class WaitBody(_Body):
    by: Who
    reason: Text


class ResumeBody(_Body):
    by: Who
    note: OptionalNote = None


class MaintenanceBody(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    by: Who
    duration: Duration = Field(alias="for")
    reason: Text


class SlaReasonBody(_Body):
    by: Who
    reason: Text


# ── Alertmanager (webhook payload version 4) ─────────────────────────────────────────────────


class Alert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str


class AlertmanagerPayload(BaseModel):
    version: str
    groupKey: str | None = None
    truncatedAlerts: int = 0
    status: str | None = None
    receiver: str | None = None
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str | None = None
    alerts: list[Alert]


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


def alert_incident(alert: Alert, settings: Settings) -> IncidentRequest:
    """The incident an alert opens: keyed by its fingerprint, so every repeat of the same alert
    joins the same incident. Policy: the ``escalate_policy`` label, else
    ``ESCALATE_ALERTMANAGER_POLICY``. Priority: ``escalate_priority``, else ``severity`` mapped by
    SEVERITY_PRIORITY, else ``ESCALATE_ALERTMANAGER_PRIORITY``."""
    labels = alert.labels
    policy = labels.get("escalate_policy") or settings.alertmanager_policy
    if not policy:
        raise ValueError(
            "no policy: give the alert an escalate_policy label, or set ESCALATE_ALERTMANAGER_POLICY"
        )
    priority = labels.get("escalate_priority") or SEVERITY_PRIORITY.get(labels.get("severity", "").lower()) or settings.alertmanager_priority
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


def authorised(request: Request) -> None:
    """The bearer token, when ESCALATE_API_TOKEN is set (compared in constant time)."""
    settings: Settings = request.app.state.settings
    if settings.api_token is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = settings.api_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Problem(
            401,
            "Unauthorised",
            "send the API token as 'Authorization: Bearer <ESCALATE_API_TOKEN>'",
            headers={"WWW-Authenticate": 'Bearer realm="escalate"'},
        )


Authorised = Annotated[None, Depends(authorised)]


# ── the app ──────────────────────────────────────────────────────────────────────────────────


def create_app(settings: Settings, escalations: Escalations | None = None) -> FastAPI:
    """The API. Temporal is connected on first use (and again after it was unreachable), so the
    API starts, and says 503, while Temporal is down."""
    app = FastAPI(
        title="escalate",
        version="1",
        description="Durable escalation pipelines for incidents and support cases, on Temporal.",
    )
    app.state.settings = settings
    origins = [origin.strip() for origin in settings.codec_cors_origins.split(",") if origin.strip()]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Response:
        """Refuse an oversized body before reading it (incident details are capped at 64 KiB)."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return problem_response(413, "Too large", f"the body is {length} bytes; the limit is {MAX_BODY_BYTES}")
        return await call_next(request)
    state: dict[str, Escalations | None] = {"escalations": escalations}
    lock = asyncio.Lock()
    log = get_logger(component="api")

    async def temporal() -> Escalations:
        if state["escalations"] is None:
            async with lock:
                if state["escalations"] is None:
                    state["escalations"] = await Escalations.connect(task_queue=settings.task_queue)
        return state["escalations"]  # type: ignore[return-value]

    # ── errors ──

    @app.exception_handler(Problem)
    async def _problem(_: Request, err: Problem) -> JSONResponse:
        headers = err.extra.pop("headers", None)
        return problem_response(err.status, err.title, err.detail, headers=headers, **err.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        errors = err.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return problem_response(400, "Malformed JSON", "the request body is not valid JSON: send a JSON object")
        fields = [
            {
                "field": ".".join(str(part) for part in error["loc"] if part != "body") or "body",
                "message": str(error["msg"]).removeprefix("Value error, "),
            }
            for error in errors
        ]
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
        return problem_response(422, "Invalid request", detail, errors=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        detail = str(err.detail) if err.status_code != 404 else "no such route: see /docs for the API"
        return problem_response(err.status_code, "Error", detail)

    def bad_input(err: Exception, field: str) -> Problem:
        """A refusal about one field of what was sent: 422, naming the field."""
        return Problem(422, "Invalid request", f"{field}: {err}", errors=[{"field": field, "message": str(err)}])

    def translate(err: Exception, key: str = "") -> Problem:
        if isinstance(err, IncidentNotFound):
            return Problem(404, "No such incident", str(err))
        if isinstance(err, InvalidRequest):
            return Problem(422, "Invalid request", str(err))
        if isinstance(err, IncidentRejected):
            return Problem(409, "Rejected by the incident", str(err))
        if isinstance(err, TemporalUnavailable):
            log.warning("temporal unavailable", error=str(err))
            state["escalations"] = None
            return Problem(
                503,
                "Temporal unavailable",
                f"{err}; nothing was changed: try again",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        raise err

    async def connected() -> Escalations:
        try:
            return await temporal()
        except TemporalUnavailable as err:
            raise translate(err) from None

    async def call(work: Any, key: str = "") -> Any:
        try:
            return await work(await temporal())
        except (IncidentNotFound, InvalidRequest, IncidentRejected, TemporalUnavailable) as err:
            raise translate(err, key) from None

    # ── incidents ──

    @app.post("/v1/incidents", status_code=201, response_model=IncidentStatus, tags=["incidents"])
    async def create_incident(incident: IncidentRequest, response: Response, request: Request, _: Authorised) -> IncidentStatus:
        """Open an incident; 200 and the open one when the key is already open (counted as a repeat)."""
        try:
            result = await (await temporal()).start_incident(incident)
        except IncidentRejected as err:
            raise bad_input(err, err.field or "request") from None
        except (IncidentNotFound, InvalidRequest, TemporalUnavailable) as err:
            raise translate(err) from None
        response.headers["Location"] = f"/v1/incidents/{incident.key}"
        if result.created:
            return result.status
        response.status_code = 200
        return await call(lambda e: e.status(incident.key), incident.key)

    @app.get("/v1/incidents", response_model=list[IncidentStatus], tags=["incidents"])
    async def list_incidents(
        _: Authorised,
        status: Literal["open", "all"] = "open",
        where: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ) -> list[IncidentStatus]:
        """Incidents from Temporal's visibility store (open ones by default, newest first, at most
        ``limit``); ``where`` filters by search attributes, e.g. ``IncidentStatus="triggered" AND Tier>=2``."""
        return await call(lambda e: e.list_incidents(status, limit=limit, where=where))

    @app.get("/v1/incidents/{key}", response_model=IncidentStatus, tags=["incidents"])
    async def get_incident(key: str, _: Authorised) -> IncidentStatus:
        return await call(lambda e: e.status(key), key)

    async def act(key: str, work: Any) -> IncidentStatus:
        await call(work, key)
        return await call(lambda e: e.status(key), key)

    @app.post("/v1/incidents/{key}/ack", response_model=IncidentStatus, tags=["responders"])
    async def acknowledge(key: str, body: AckBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.acknowledge(key, by=body.by, note=body.note))

    @app.post("/v1/incidents/{key}/resolve", response_model=IncidentStatus, tags=["responders"])
    async def resolve(key: str, body: ResolveBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.resolve(key, by=body.by, resolution=body.resolution))

    @app.post("/v1/incidents/{key}/escalate", response_model=IncidentStatus, tags=["responders"])
    async def escalate(key: str, body: EscalateBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.escalate(key, by=body.by, reason=body.reason, to=body.to))

    @app.post("/v1/incidents/{key}/reassign", response_model=IncidentStatus, tags=["responders"])
    async def reassign(key: str, body: ReassignBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.reassign(key, policy=body.policy, by=body.by, reason=body.reason))

    @app.post("/v1/incidents/{key}/snooze", response_model=IncidentStatus, tags=["responders"])
    async def snooze(key: str, body: SnoozeBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.snooze(key, duration=body.duration, by=body.by))

    @app.post("/v1/incidents/{key}/notes", response_model=IncidentStatus, tags=["responders"])
    async def add_note(key: str, body: NoteBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.add_note(key, by=body.by, text=body.note))

    @app.post("/v1/incidents/{key}/priority", response_model=IncidentStatus, tags=["responders"])
    async def set_priority(key: str, body: PriorityBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.set_priority(key, priority=body.priority, by=body.by))

    @app.post("/v1/incidents/{key}/wait", response_model=IncidentStatus, tags=["responders"])
    async def wait_on_customer(key: str, body: WaitBody, _: Authorised) -> IncidentStatus:
        """Waiting on the customer: escalation and the SLA clock stop until /resume."""
        return await act(key, lambda e: e.wait_on_customer(key, by=body.by, reason=body.reason))

    @app.post("/v1/incidents/{key}/resume", response_model=IncidentStatus, tags=["responders"])
    async def resume(key: str, body: ResumeBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.resume(key, by=body.by, note=body.note))

    @app.post("/v1/incidents/{key}/sla-reason", response_model=IncidentStatus, tags=["responders"])
    async def sla_reason(key: str, body: SlaReasonBody, _: Authorised) -> IncidentStatus:
        return await act(key, lambda e: e.explain_sla(key, by=body.by, reason=body.reason))

    @app.get("/v1/incidents/{key}/review", tags=["review"], response_model=None)
    async def review(key: str, request: Request, _: Authorised, format: Literal["json", "md", "html"] | None = None) -> Response:
        """The replay-verified after-action review: JSON, or HTML for ``Accept: text/html``."""
        from starter.report import render
        from starter.review import ReviewNotPossible, review_incident

        client = (await connected()).client
        try:
            report = await review_incident(client, key)
        except ReviewNotPossible as err:
            raise Problem(404, "No such incident", str(err)) from None
        except RPCError as err:
            if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise translate(TemporalUnavailable(f"Temporal is unavailable: {err.message}")) from None
            raise
        fmt = format or ("html" if "text/html" in request.headers.get("accept", "") else "json")
        media = {"json": "application/json", "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}[fmt]
        return Response(render(report, fmt), media_type=media)

    # ── one-click links ──

    def open_link(token: str) -> Any:
        if settings.link_secret is None:
            raise Problem(404, "Links are off", "this server makes no links (ESCALATE_LINK_SECRET is not set)")
        try:
            return read_token(settings.link_secret.get_secret_value(), token)
        except LinkError as err:
            raise Problem(410 if err.expired else 403, "Link expired" if err.expired else "Invalid link", str(err)) from None

    @app.get("/v1/links/{token}", response_class=HTMLResponse, tags=["links"])
    async def link_page(token: str) -> HTMLResponse:
        """The page a one-click link opens: it asks to confirm (mail scanners open links too)."""
        link = open_link(token)
        verb = "Acknowledge" if link.action == "ack" else "Resolve"
        extra = (
            '<p><label>What fixed it?<br/><textarea name="resolution" required="required" rows="3" cols="60"></textarea></label></p>'
            if link.action == "resolve"
            else ""
        )
        return HTMLResponse(
            _page(
                f"{verb} {link.key}",
                f"<p>{verb} incident <b>{escape(link.key)}</b> as <b>{escape(link.by)}</b>?</p>"
                f'<form method="post">{extra}<button type="submit">{verb}</button></form>'
                f"<p><small>This link works until {link.expires:%Y-%m-%d %H:%M UTC}.</small></p>",
            )
        )

    @app.post("/v1/links/{token}", response_class=HTMLResponse, tags=["links"])
    async def link_confirm(token: str, request: Request) -> HTMLResponse:
        link = open_link(token)
        form = await request.form()
        try:
            if link.action == "ack":
                status = await (await temporal()).acknowledge(link.key, by=link.by, note="acknowledged from a link")
            else:
                resolution = str(form.get("resolution") or "").strip() or "resolved from a link"
                status = await (await temporal()).resolve(link.key, by=link.by, resolution=resolution)
        except (IncidentNotFound, InvalidRequest, IncidentRejected, TemporalUnavailable) as err:
            problem = translate(err, link.key)
            return HTMLResponse(_page("Not done", f"<p>{escape(problem.detail)}</p>"), status_code=problem.status)
        done = "acknowledged" if link.action == "ack" else "resolved"
        return HTMLResponse(_page("Done", f"<p>Incident <b>{escape(status.key)}</b> is {done} by {escape(link.by)}.</p>"))

    # ── Alertmanager ──

    @app.post("/v1/integrations/alertmanager", tags=["integrations"])
    async def alertmanager(payload: AlertmanagerPayload, _: Authorised) -> dict[str, Any]:
        """Prometheus Alertmanager webhooks (version 4): each firing alert opens or joins the
        incident of its fingerprint; a resolved alert resolves it (by "alertmanager")."""
        if payload.version != "4":
            raise Problem(422, "Unsupported payload", f"webhook payload version {payload.version!r}: this endpoint takes version 4")
        outcome: dict[str, list[Any]] = {"opened": [], "joined": [], "resolved": [], "already_closed": [], "errors": []}
        escalations = await connected()
        for alert in payload.alerts:
            key = f"am-{alert.fingerprint}"
            try:
                if alert.status == "firing":
                    result = await escalations.start_incident(alert_incident(alert, settings))
                    outcome["opened" if result.created else "joined"].append(key)
                else:
                    try:
                        await escalations.resolve(key, by="alertmanager", resolution=_resolution(alert))
                        outcome["resolved"].append(key)
                    except (IncidentRejected, IncidentNotFound):
                        outcome["already_closed"].append(key)
            except TemporalUnavailable as err:
                raise translate(err) from None  # 503: Alertmanager sends the whole group again
            except (ValueError, IncidentRejected, InvalidRequest) as err:
                outcome["errors"].append({"alert": key, "alertname": alert.labels.get("alertname"), "detail": str(err)})
        if outcome["errors"]:
            detail = "; ".join(f"{e['alert']} ({e['alertname']}): {e['detail']}" for e in outcome["errors"])
            raise Problem(422, "Some alerts could not be taken", detail, **outcome)
        return outcome

    # ── the codec endpoint (Temporal UI and CLI: --codec-endpoint) ──

    @app.post("/codec/{direction}", tags=["codec"])
    async def codec(direction: Literal["encode", "decode"], request: Request, _: Authorised) -> JSONResponse:
        """Temporal's remote codec protocol: the Temporal UI sends encrypted payloads here and
        shows what comes back, so authorised users read incidents that are stored encrypted."""
        from google.protobuf import json_format
        from temporalio.api.common.v1 import Payloads

        codec = data_converter(settings).payload_codec
        if codec is None:
            raise Problem(404, "Encryption is off", "ESCALATE_ENCRYPTION_KEY is not set: payloads are not encrypted")
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError as err:
            raise Problem(400, "Malformed payloads", f"send {{\"payloads\": [...]}} in Temporal's JSON format: {err}") from None
        try:
            done = await (codec.encode if direction == "encode" else codec.decode)(list(payloads.payloads))
        except ValueError as err:
            raise Problem(422, "Cannot decode", str(err)) from None
        return JSONResponse(json_format.MessageToDict(Payloads(payloads=done)))

    @app.post("/v1/policies/{policy}/maintenance", tags=["maintenance"], response_model=MaintenanceWindow)
    async def start_maintenance(policy: str, body: MaintenanceBody, _: Authorised) -> MaintenanceWindow:
        """Start (or extend) a maintenance window: incidents opened for the policy meanwhile page
        nobody until it ends, then those still open page their current tier."""
        try:
            return await (await temporal()).start_maintenance(policy, duration=body.duration, by=body.by, reason=body.reason)
        except IncidentRejected as err:
            if err.field:  # the policy or the length asked for: bad input, not a conflict
                raise bad_input(err, err.field) from None
            raise translate(err, policy) from None
        except (IncidentNotFound, InvalidRequest, TemporalUnavailable) as err:
            raise translate(err, policy) from None

    @app.delete("/v1/policies/{policy}/maintenance", tags=["maintenance"], response_model=MaintenanceWindow)
    async def end_maintenance(policy: str, _: Authorised, by: str) -> MaintenanceWindow:
        """End the window now: the incidents it held page at once."""
        return await call(lambda e: e.end_maintenance(policy, by=by))

    @app.get("/v1/policies/{policy}/maintenance", tags=["maintenance"], response_model=MaintenanceWindow | None)
    async def get_maintenance(policy: str, _: Authorised) -> MaintenanceWindow | None:
        return await call(lambda e: e.maintenance(policy))

    @app.get("/v1/oncall", tags=["schedules"])
    async def oncall(_: Authorised, schedule: str | None = None, at: str | None = None) -> list[dict[str, Any]]:
        """Who is on call now (or ``at`` an ISO 8601 time) in each schedule, or in one."""
        from starter.oncall import (
            PolicyError,
            UnknownSchedule,
            parse_moment,
            who_is_on_call,
        )

        try:
            moment = parse_moment(at) if at else None
        except ValueError as err:
            raise Problem(422, "Invalid request", f"at: {err}", errors=[{"field": "at", "message": str(err)}]) from None
        try:
            answers = who_is_on_call(settings, schedule, moment)
        except UnknownSchedule as err:
            raise Problem(404, "No such schedule", str(err)) from None
        except PolicyError as err:
            raise Problem(500, "Schedules do not load", str(err)) from None
        return [answer.model_dump(mode="json") for answer in answers]

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _resolution(alert: Alert) -> str:
    ended = f" at {alert.endsAt}" if alert.endsAt else ""
    return f"alert {alert.labels.get('alertname', alert.fingerprint)} resolved in Alertmanager{ended}"


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width"/><style>body{font:16px system-ui,sans-serif;'
        "max-width:36em;margin:3em auto;padding:0 1em}button{font-size:1.1em;padding:.5em 1.5em}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


async def serve(settings: Settings, host: str, port: int, stop: asyncio.Event, escalations: Escalations | None = None) -> None:
    """Run the API with uvicorn until ``stop`` is set."""
    import uvicorn

    config = uvicorn.Config(
        create_app(settings, escalations), host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    if task in done and not stop.is_set() and not server.started:
        raise OSError(f"the HTTP API could not listen on {host}:{port} (is the port in use?)")

