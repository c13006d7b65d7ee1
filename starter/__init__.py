"""How the world starts and talks to incidents: the Python API (``starter.api``) and the CLI."""

from starter.api import Escalations, IncidentNotFound, IncidentRejected, TemporalUnavailable

__all__ = ["Escalations", "IncidentNotFound", "IncidentRejected", "TemporalUnavailable"]
