"""One-click links in pages: opening one asks to confirm (mail scanners open links too);
confirming acknowledges or resolves, as the person the link was made for. No token needed: the
link is signed (``ESCALATE_LINK_SECRET``) and expires."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse

from escalate.links import Link, LinkError, read_token
from starter.api import IncidentNotFound, IncidentRejected, InvalidRequest, TemporalUnavailable
from starter.web.deps import SettingsDep, TemporalDep
from starter.web.problems import PROBLEM, Problem, refused, unavailable
from workflows.model import MAX_NOTE

router = APIRouter(prefix="/v1/links", tags=["links"])

HTML = {"text/html": {"schema": {"type": "string"}}}
AS_PROBLEM = {PROBLEM: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
LINK_PROBLEMS: dict[int | str, dict[str, object]] = {
    403: {"content": AS_PROBLEM, "description": "Not a link this server made (or it was changed)"},
    404: {"content": AS_PROBLEM, "description": "Links are off (no ESCALATE_LINK_SECRET)"},
    410: {"content": AS_PROBLEM, "description": "The link expired"},
    422: {"content": AS_PROBLEM, "description": "Invalid: the errors name the fields"},
}


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width"/><style>body{font:16px system-ui,sans-serif;'
        "max-width:36em;margin:3em auto;padding:0 1em}button{font-size:1.1em;padding:.5em 1.5em}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def open_link(settings: SettingsDep, token: str) -> Link:
    if settings.link_secret is None:
        raise Problem(404, "Links are off", "this server makes no links (ESCALATE_LINK_SECRET is not set)")
    try:
        return read_token(settings.link_secret.get_secret_value(), token)
    except LinkError as err:
        raise Problem(410 if err.expired else 403, "Link expired" if err.expired else "Invalid link", str(err)) from None


@router.get("/{token}", response_class=HTMLResponse, responses={200: {"content": HTML}, **LINK_PROBLEMS})
async def link_page(token: str, settings: SettingsDep) -> HTMLResponse:
    """The page a one-click link opens: it asks to confirm (mail scanners open links too)."""
    link = open_link(settings, token)
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


@router.post(
    "/{token}",
    response_class=HTMLResponse,
    responses={
        200: {"content": HTML, "description": "Done"},
        **LINK_PROBLEMS,
        404: {"content": AS_PROBLEM | HTML, "description": "Links are off, or (a page) the incident is gone"},
        409: {"content": HTML, "description": "Not done: the incident refused (already acknowledged, resolved…)"},
        422: {"content": AS_PROBLEM | HTML, "description": "Invalid form, or (a page) refused as invalid"},
        503: {"content": HTML, "description": "Not done: Temporal is unavailable; try again"},
    },
)
async def link_confirm(
    token: str,
    settings: SettingsDep,
    temporal: TemporalDep,
    resolution: Annotated[str | None, Form(max_length=MAX_NOTE, description="What fixed it (resolve links)")] = None,
) -> HTMLResponse:
    """Confirm: acknowledge or resolve, as the person the link was made for."""
    link = open_link(settings, token)
    try:
        escalations = await temporal.escalations()
        if link.action == "ack":
            status = await escalations.acknowledge(link.key, by=link.by, note="acknowledged from a link")
        else:
            said = (resolution or "").strip() or "resolved from a link"
            status = await escalations.resolve(link.key, by=link.by, resolution=said)
    except (IncidentNotFound, InvalidRequest, IncidentRejected, TemporalUnavailable) as err:
        problem = _not_done(err, temporal)
        return HTMLResponse(_page("Not done", f"<p>{escape(problem.detail)}</p>"), status_code=problem.status)
    done = "acknowledged" if link.action == "ack" else "resolved"
    return HTMLResponse(_page("Done", f"<p>Incident <b>{escape(status.key)}</b> is {done} by {escape(link.by)}.</p>"))


def _not_done(err: Exception, temporal: TemporalDep) -> Problem:
    if isinstance(err, TemporalUnavailable):
        temporal.forget()
        return unavailable(err)
    if isinstance(err, IncidentRejected):
        return refused(err, "Rejected by the incident")
    if isinstance(err, IncidentNotFound):
        return Problem(404, "No such incident", str(err))
    return Problem(422, "Not done", str(err))
