"""Failure types shared by the workflows, the activities and the starter, and how to read them.

A Temporal failure crosses processes as an ``ApplicationError`` with a ``type`` string: these
constants are the only spelling of those strings. The reason a responder or a caller sees is the
innermost message of the failure chain (what actually went wrong); a refusal about one field of
a request carries the field's name as its first detail, so the HTTP API can name it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

REJECTED = "Rejected"
"""An action the incident (or a maintenance window) refuses; the message is the reason."""
ALREADY_RESOLVED = "AlreadyResolved"
"""An action on an incident that is resolved (its run may still be closing)."""
INCIDENT_REJECTED = "IncidentRejected"
"""A start refused (unknown policy, a priority the policy has no window for): no incident."""
UNKNOWN_POLICY = "UnknownPolicy"
INVALID_POLICY = "InvalidPolicy"
POLICY_FAILURES = (UNKNOWN_POLICY, INVALID_POLICY)
"""Policy reads that no retry can mend."""
PERMANENT_DELIVERY_FAILURE = "PermanentDeliveryFailure"
"""Retrying the channel cannot help (a 404, a refused recipient): the next channel is tried."""
DELIVERY_FAILED = "DeliveryFailed"
"""A transient delivery failure: worth another attempt, after the Retry-After when one came."""


class Rejected(ApplicationError):
    """An action the incident refuses; the message is the reason shown to the responder."""

    def __init__(self, reason: str, *, kind: str = REJECTED, field: str | None = None) -> None:
        # The field of the request at fault, if one is (the HTTP API names it).
        super().__init__(reason, *([field] if field else []), type=kind, non_retryable=True)


def innermost(err: BaseException) -> BaseException:
    """The root of a failure chain (an activity's or an update's failure wraps the real one)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def reason(err: BaseException) -> str:
    """What actually went wrong: the innermost message of a failure."""
    inner = innermost(err)
    return str(getattr(inner, "message", None) or inner)


def field_of(err: BaseException) -> str | None:
    """The request field a refusal is about (its first detail), if it names one."""
    details = getattr(innermost(err), "details", None) or ()
    return str(details[0]) if details and isinstance(details[0], str) else None


def error_type(err: BaseException) -> str | None:
    """The type of the application failure an activity failure wraps."""
    cause = err.__cause__
    return cause.type if isinstance(cause, ApplicationError) else None


def retry_after(err: BaseException) -> timedelta | None:
    """The Retry-After a receiver sent, which channels pass as the failure's first detail."""
    cause = err.__cause__
    if isinstance(cause, ApplicationError) and cause.details:
        try:
            return timedelta(seconds=float(cause.details[0]))
        except (TypeError, ValueError):
            return None
    return None
