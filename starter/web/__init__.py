"""The HTTP intake (``escalate api``): backend services open incidents, responders act on them,
Prometheus Alertmanager sends its alerts. OpenAPI docs at ``/docs``.

One router a resource (``incidents``, ``responders``, ``integrations``, ``links``,
``maintenance``, ``oncall``, ``codec``, ``health``), the public request bodies in ``bodies``
(derived from the request models they carry, with a schema as strict as their validation), the
typed dependencies in ``deps``, and the error answers in ``problems``: every error is
``application/problem+json`` (RFC 9457) with a ``detail`` that says what to change and, for bad
input, the ``errors`` by field. Nothing here keeps state of its own: every answer comes from the
incident's workflow or from Temporal's visibility store.
"""

from starter.web.app import create_app, serve
from starter.web.bodies import Alert, AlertmanagerPayload, NewIncidentBody
from starter.web.integrations import SEVERITY_PRIORITY, alert_incident
from starter.web.problems import PROBLEM, Problem, problem_response

__all__ = [
    "PROBLEM",
    "SEVERITY_PRIORITY",
    "Alert",
    "AlertmanagerPayload",
    "NewIncidentBody",
    "Problem",
    "alert_incident",
    "create_app",
    "problem_response",
    "serve",
]
