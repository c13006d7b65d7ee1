"""structlog everywhere: JSON lines in production, a pretty console in a terminal.

Workflow code logs through ``workflow.logger`` (stdlib, replay-aware: nothing is logged twice when
a history is replayed); activities and the CLI log through structlog. Both end up in the same
handler and renderer, with the incident key bound.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from escalate.settings import Settings

_CONTEXT_FIELDS = ["incident", "tier", "who", "channel"]


def _temporal_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    info = event.pop("temporal_workflow", None) or event.pop("temporal_activity", None)
    if info is None and activity.in_activity():
        # structlog lines from activity code: the context the SDK's activity logger would add.
        current = activity.info()
        info = {"workflow_id": current.workflow_id, "activity_type": current.activity_type, "attempt": current.attempt}
    if isinstance(info, dict):
        fields = ("workflow_id", "activity_type", "attempt") if "activity_type" in info else ("workflow_id",)
        for field in fields:
            if field in info and field not in event:
                event[field] = info[field]
    for field in [name for name in _CONTEXT_FIELDS if event.get(name) is None]:
        event.pop(field, None)
    return event


class _ExpectedFailureFilter(logging.Filter):
    """The SDK logs every failed activity with its traceback. For the failures we raise on
    purpose (an unknown policy, a refused recipient) the message says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ApplicationError):
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {error.type}: {error.message}"
            record.args = ()
            record.exc_info = None
        return True


def configure(settings: Settings, *, json_lines: bool | None = None) -> None:
    if json_lines is None:
        json_lines = settings.log_format == "json" or (
            settings.log_format == "auto" and not sys.stderr.isatty()
        )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(allow=[*_CONTEXT_FIELDS, "temporal_workflow", "temporal_activity"]),
        _temporal_context,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_ExpectedFailureFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    # The workflow and activity loggers already carry their context in `extra`.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    for noisy in ("httpx", "httpcore", "mail.log", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(**bound: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger("escalate").bind(**bound)
    return logger
