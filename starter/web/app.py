"""The app: the routers of each resource, the problem answers, and how it is served."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from escalate.settings import Settings
from starter.api import Escalations
from starter.web import codec, health, incidents, integrations, links, maintenance, oncall, problems, responders
from starter.web.deps import Temporal
from starter.web.problems import DESCRIPTIONS, PROBLEM, problem_response

MAX_BODY_BYTES = 1024 * 1024
ROUTERS = (
    incidents.router,
    responders.router,
    integrations.router,
    links.router,
    maintenance.router,
    oncall.router,
    codec.router,
    health.router,
)


def create_app(settings: Settings, escalations: Escalations | None = None) -> FastAPI:
    """The API. Temporal is connected on first use (and again after it was unreachable), so the
    API starts, and says 503, while Temporal is down."""
    app = FastAPI(
        title="escalate",
        version="1",
        description="Durable escalation pipelines for incidents and support cases, on Temporal.",
    )
    app.state.settings = settings
    app.state.temporal = Temporal(settings, escalations)
    origins = [origin.strip() for origin in settings.codec_cors_origins.split(",") if origin.strip()]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
    app.middleware("http")(_limit_body)
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi(app, bearer=settings.api_token is not None)  # type: ignore[method-assign]
    return app


async def _limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Refuse an oversized body before reading it (incident details are capped at 64 KiB)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return problem_response(413, "Too large", f"the body is {length} bytes; the limit is {MAX_BODY_BYTES}")
    return await call_next(request)


def _openapi(app: FastAPI, *, bearer: bool) -> dict[str, Any]:
    """The OpenAPI document: error answers as ``application/problem+json``, and the bearer token
    required where the app requires it (when ESCALATE_API_TOKEN is set)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    public = {"/healthz", "/v1/links/{token}"}
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM] = content.pop("application/json")
                if content.get(PROBLEM, {}).get("schema") == {"$ref": "#/components/schemas/HTTPValidationError"}:
                    content[PROBLEM]["schema"] = {"$ref": "#/components/schemas/ProblemDetails"}
                    answer["description"] = DESCRIPTIONS[422]
            if bearer and path not in public:
                operation["security"] = [{"bearer": []}]
    for fastapi_own in ("HTTPValidationError", "ValidationError"):  # its 422 body, which this app never sends
        document.get("components", {}).get("schemas", {}).pop(fastapi_own, None)
    if bearer:
        document.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "ESCALATE_API_TOKEN",
        }
    app.openapi_schema = document
    return document


async def serve(settings: Settings, host: str, port: int, stop: asyncio.Event, escalations: Escalations | None = None) -> None:
    """Run the API with uvicorn until ``stop`` is set."""
    import uvicorn

    config = uvicorn.Config(
        create_app(settings, escalations), host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    task = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    if task in done and not stop.is_set() and not server.started:
        raise OSError(f"the HTTP API could not listen on {host}:{port} (is the port in use?)")
