"""The typed dependencies of the routes: the bearer token, the settings, and Temporal.

Temporal is connected on first use, not when the app starts: the API starts, and answers 503,
while Temporal is down. After an answer of 503 the connection is dropped (see
``problems._unavailable``), and the next request connects afresh.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated

from fastapi import Depends, Request

from escalate.settings import Settings
from starter.api import Escalations
from starter.web.problems import Problem


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


Authorised = Depends(authorised)
"""For a router's ``dependencies``: checked before anything else of the request."""


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(settings)]


class Temporal:
    """The app's one connection to Temporal (the Python API ``Escalations`` over it)."""

    def __init__(self, settings: Settings, escalations: Escalations | None = None) -> None:
        self.settings = settings
        self._escalations = escalations
        self._lock = asyncio.Lock()

    async def escalations(self) -> Escalations:
        """Connected, connecting first when there is no connection (TemporalUnavailable if
        Temporal cannot be reached)."""
        if self._escalations is None:
            async with self._lock:
                if self._escalations is None:
                    self._escalations = await Escalations.connect(task_queue=self.settings.task_queue)
        return self._escalations

    def forget(self) -> None:
        """Temporal was out of reach: connect again next time."""
        self._escalations = None


def temporal(request: Request) -> Temporal:
    return request.app.state.temporal  # type: ignore[no-any-return]


TemporalDep = Annotated[Temporal, Depends(temporal)]
"""Temporal, for a route; ``await temporal.escalations()`` when the request is known to be
valid (a request refused as invalid never waits for a connection)."""
