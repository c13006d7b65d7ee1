"""How the world starts and talks to incidents: the Python API (``starter.api``) and the CLI."""

from starter.api import (
    Escalations,
    IncidentNotFound,
    IncidentRejected,
    InvalidRequest,
    TemporalUnavailable,
)

__all__ = ["Escalations", "IncidentNotFound", "IncidentRejected", "InvalidRequest", "TemporalUnavailable"]
