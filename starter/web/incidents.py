"""Incidents: open one (or join the open one with its key), read one, list them, review one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from temporalio.service import RPCError, RPCStatusCode

from starter.api import IncidentRejected, InvalidRequest, TemporalUnavailable
from starter.report import render
from starter.review import Review, ReviewNotPossible, review_incident
from starter.web.bodies import INCIDENT_KEY, NewIncidentBody
from starter.web.deps import Authorised, TemporalDep
from starter.web.problems import Problem, invalid, problems, refused
from workflows.model import IncidentStatus

router = APIRouter(tags=["incidents"], dependencies=[Authorised], responses=problems(401, 503))

Key = Annotated[
    str,
    Path(
        description="The incident key (a path that can be no key is no incident: 404)",
        examples=["db-disk-full-2026-11-25"],
        json_schema_extra={"pattern": INCIDENT_KEY, "minLength": 1, "maxLength": 200},
    ),
]

REVIEW_FORMATS = {"json": "application/json", "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}


@router.post(
    "/v1/incidents",
    status_code=201,
    response_model=IncidentStatus,
    responses={
        200: {"model": IncidentStatus, "description": "The key is open already: its incident, joined (counted as a repeat)"},
        201: {"description": "Opened", "headers": {"Location": {"description": "The incident's URL", "schema": {"type": "string"}}}},
        **problems(400, 409, 413, 422),
    },
)
async def create_incident(incident: NewIncidentBody, response: Response, temporal: TemporalDep) -> IncidentStatus:
    """Open an incident; 200 and the open one when the key is already open (counted as a repeat)."""
    escalations = await temporal.escalations()
    try:
        result = await escalations.start_incident(**incident.model_dump())
    except IncidentRejected as err:
        raise refused(err, "Incident not opened") from None
    response.headers["Location"] = f"/v1/incidents/{incident.key}"
    if result.created:
        return result.status
    response.status_code = 200
    return await escalations.status(incident.key)


@router.get("/v1/incidents", response_model=list[IncidentStatus], responses=problems(422))
async def list_incidents(
    temporal: TemporalDep,
    status: Annotated[Literal["open", "all"], Query(description="open: not resolved yet")] = "open",
    where: Annotated[
        str | None, Query(description='A visibility query on the incident search attributes, e.g. IncidentStatus="triggered" AND Tier>=2')
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[IncidentStatus]:
    """Incidents from Temporal's visibility store (open ones by default, newest first, at most
    ``limit``); ``where`` filters by search attributes, e.g. ``IncidentStatus="triggered" AND Tier>=2``."""
    escalations = await temporal.escalations()
    try:
        return await escalations.list_incidents(status, limit=limit, where=where)
    except InvalidRequest as err:
        raise invalid("query.where", str(err), "Invalid filter") from None


@router.get("/v1/incidents/{key}", response_model=IncidentStatus, responses=problems(404, 409))
async def get_incident(key: Key, temporal: TemporalDep) -> IncidentStatus:
    """The status JSON of the contract (``escalate status --json``)."""
    return await (await temporal.escalations()).status(key)


@router.get(
    "/v1/incidents/{key}/review",
    tags=["review"],
    response_class=Response,
    responses={
        200: {
            "model": Review,
            "description": "The review: JSON, Markdown, or HTML for ``Accept: text/html``",
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **problems(404, 422),
    },
)
async def review(
    key: Key,
    request: Request,
    temporal: TemporalDep,
    format: Annotated[Literal["json", "md", "html"] | None, Query(description="Overrides the Accept header")] = None,
) -> Response:
    """The replay-verified after-action review: JSON, or HTML for ``Accept: text/html``."""
    client = (await temporal.escalations()).client
    try:
        report = await review_incident(client, key)
    except ReviewNotPossible as err:
        raise Problem(404, "No such incident", str(err)) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise TemporalUnavailable(f"Temporal is unavailable: {err.message}") from None
        raise
    fmt = format or ("html" if "text/html" in request.headers.get("accept", "") else "json")
    return Response(render(report, fmt), media_type=REVIEW_FORMATS[fmt])
