"""Error answers: ``application/problem+json`` (RFC 9457), each with a title that says what was
refused, in the words of the resource involved, and a ``detail`` that says why and what to do;
for bad input, the ``errors`` by field.

The Python API's exceptions become problems here: an unknown key is 404, a refusal by the
incident 409 (422 naming the field when the refusal is about one), Temporal out of reach 503 with
a Retry-After, after which the app connects afresh.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from escalate.logs import get_logger
from starter.api import IncidentNotFound, IncidentRejected, InvalidRequest, TemporalUnavailable

PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 5

INVALID = "Invalid request"
"""The title of a request that breaks the API's own schema (and only of those: a refusal by an
incident or a policy is titled for what refused it)."""


class FieldError(BaseModel):
    field: str
    """Where: ``key``, ``alerts.0.fingerprint``, ``query.limit``…"""
    message: str


class ProblemDetails(BaseModel):
    """An error answer (RFC 9457). Some carry more members: the Alertmanager endpoint adds what
    it did with each alert."""

    model_config = ConfigDict(extra="allow", title="Problem")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


class Problem(Exception):
    """An error answer: status, a short title and a detail that says what to do."""

    def __init__(self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers, self.extra = status, title, detail, headers, extra

    def response(self) -> JSONResponse:
        return problem_response(self.status, self.title, self.detail, headers=self.headers, **self.extra)


def problem_response(status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def invalid(field: str, message: str, title: str = INVALID) -> Problem:
    """A refusal about one field of what was sent: 422, naming the field."""
    return Problem(422, title, f"{field}: {message}", errors=[{"field": field, "message": message}])


def refused(err: IncidentRejected, title: str) -> Problem:
    """A refusal by an incident, a policy or a maintenance window: 422 naming the field when it
    is about one (an unknown policy, a window too long), else 409 (a conflict with its state)."""
    if err.field:
        return invalid(err.field, str(err), title)
    return Problem(409, title, str(err))


def unavailable(err: TemporalUnavailable) -> Problem:
    return Problem(
        503,
        "Temporal unavailable",
        f"{err}; nothing was changed: try again",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


DESCRIPTIONS = {
    400: "Malformed: the body is not JSON (or not what the content type says)",
    401: "Unauthorised: send the API token as a bearer token",
    403: "Forbidden",
    404: "Not found",
    409: "Refused: the resource is not in a state to do this",
    410: "Gone",
    413: "The body is over 1 MiB",
    422: "Invalid: the errors name the fields",
    503: "Temporal is unavailable: nothing was changed; try again after the Retry-After",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of an operation, for its OpenAPI description."""
    return {status: {"model": ProblemDetails, "description": DESCRIPTIONS[status]} for status in statuses}


# ── exception handlers ───────────────────────────────────────────────────────────────────────


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


async def _problem(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, Problem)
    return err.response()


async def _invalid(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError | ValidationError)
    errors = err.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(400, "Malformed JSON", "the request body is not valid JSON: send a JSON object")
    fields = [{"field": _field_name(error["loc"]), "message": _message(error)} for error in errors]
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return problem_response(422, INVALID, detail, errors=fields)


def _allowed(request: Request) -> str:
    """Every method of the path, as the OpenAPI document has them (Starlette names only those
    of the first route that matched the path)."""
    methods = {
        method.upper()
        for path, operations in request.app.openapi().get("paths", {}).items()
        if compile_path(path)[0].match(request.url.path)
        for method in operations
    }
    return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))


async def _http(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, StarletteHTTPException)
    headers = dict(err.headers or {})
    if err.status_code == 404:
        return problem_response(404, "No such route", "no such route: see /docs for the API", headers=headers)
    if err.status_code == 405:
        headers["Allow"] = _allowed(request) or headers.get("Allow", "")
        return problem_response(405, "Method not allowed", f"this route takes {headers['Allow']}", headers=headers)
    return problem_response(err.status_code, "Error", str(err.detail), headers=headers)


async def _not_found(_: Request, err: Exception) -> JSONResponse:
    return problem_response(404, "No such incident", str(err))


async def _rejected(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, IncidentRejected)
    return refused(err, "Rejected by the incident").response()


async def _unusable(_: Request, err: Exception) -> JSONResponse:
    return problem_response(422, INVALID, str(err))


async def _unavailable(request: Request, err: Exception) -> JSONResponse:
    """Temporal out of reach: 503, and the next request connects afresh."""
    assert isinstance(err, TemporalUnavailable)
    get_logger(component="api").warning("temporal unavailable", error=str(err))
    request.app.state.temporal.forget()
    return unavailable(err).response()


async def _failed(_: Request, err: Exception) -> JSONResponse:
    """A bug: still a problem document (the traceback goes to the log)."""
    get_logger(component="api").error("request failed", error=repr(err))
    return problem_response(500, "Internal error", "the request failed on the server: its log says why")


def install(app: FastAPI) -> None:
    """Answer every error of the app as a problem document."""
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(IncidentNotFound, _not_found)
    app.add_exception_handler(IncidentRejected, _rejected)
    app.add_exception_handler(InvalidRequest, _unusable)
    app.add_exception_handler(TemporalUnavailable, _unavailable)
    app.add_exception_handler(Exception, _failed)
