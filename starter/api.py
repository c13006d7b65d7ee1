"""The Python API for backend services and tools.

    from starter import Escalations
    escalations = await Escalations.connect()
    opened = await escalations.start_incident(policy="payments", key="pay-42", priority="P1",
                                              summary="Card authorisations failing")
    await escalations.acknowledge("pay-42", by="alice")

Every call raises ``IncidentRejected`` with the incident's own reason when it refuses an action,
``IncidentNotFound`` for an unknown key and ``TemporalUnavailable`` when Temporal cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from escalate.logs import get_logger
from escalate.temporal import connect, unreachable_message
from workflows import errors, search
from workflows.durations import format_time
from workflows.incident import IncidentWorkflow
from workflows.maintenance import MaintenanceWorkflow
from workflows.model import (
    TASK_QUEUE,
    AckRequest,
    EscalateRequest,
    IncidentRequest,
    IncidentStatus,
    MaintenanceEnd,
    MaintenanceRequest,
    MaintenanceWindow,
    NoteRequest,
    OccurrenceBatch,
    PriorityRequest,
    ReassignRequest,
    ResolveRequest,
    ResumeRequest,
    SlaReasonRequest,
    SnoozeRequest,
    TriggerResult,
    WaitRequest,
    maintenance_id,
    workflow_id,
)
from workflows.patches import PATCH_BASELINE


class IncidentRejected(Exception):
    """The incident (or its policy) refused the request; ``str()`` is the reason, ``field`` the
    part of the request at fault when one is (``policy``, ``priority``)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


class InvalidRequest(ValueError):
    """The request itself is malformed (a bad duration, an empty name): nothing was sent."""


class IncidentNotFound(LookupError):
    """No incident has this key (never opened, or its history is past the namespace's retention)."""
    pass


class TemporalUnavailable(ConnectionError):
    """Temporal could not be reached (or did not answer in time): nothing was changed; try again."""
    pass


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """``field: what is wrong`` for each problem, in the words of our validators."""
    return "; ".join(
        f"{prefix}{'.'.join(map(str, error['loc'])) or 'request'}: {str(error['msg']).removeprefix('Value error, ')}"
        for error in err.errors()
    )


_VERBS = {
    "acknowledge": "be acknowledged",
    "resolve": "be resolved again",
    "escalate": "be escalated",
    "reassign": "be reassigned",
    "snooze": "be snoozed",
    "note": "take notes",
    "set_priority": "change priority",
    "explain_sla": "take an SLA reason",
    "wait_on_customer": "wait on the customer",
    "resume": "be resumed",
}

_UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}


@dataclass
class _HeldTriggers:
    latest: IncidentRequest
    waiters: list[asyncio.Future[TriggerResult]] = field(default_factory=list)


def _static_details(request: IncidentRequest) -> str:
    """What the Temporal UI shows as the incident's details (Markdown)."""
    lines = [f"**Incident** `{request.key}` · policy `{request.policy}` · priority {request.priority}"]
    if request.reporter:
        lines.append(f"**Reported by** {request.reporter}")
    if request.details:
        shown = json.dumps(request.details, indent=2, default=str)
        lines.append("```json\n" + (shown if len(shown) <= 4000 else shown[:4000] + "\n…") + "\n```")
    lines.append(f"Status and actions: `escalate status {request.key}`")
    return "\n\n".join(lines)


def _unknown_search_attribute(err: BaseException) -> bool:
    return (
        isinstance(err, RPCError)
        and err.status == RPCStatusCode.INVALID_ARGUMENT
        and "search attribute" in (err.message or "").lower()
    )


def _too_many_updates(err: BaseException) -> bool:
    text = str(err).lower()
    return (
        (isinstance(err, RPCError) and err.status == RPCStatusCode.RESOURCE_EXHAUSTED)
        or "in-flight updates" in text
        or "update was aborted" in text
    )


class Escalations:
    """Open incidents and act on them, as a backend service or a tool does. Each action is a
    Temporal update of the incident's workflow and answers with its status (its timeline holds
    the events the action added); ``status`` reads the whole story."""

    def __init__(self, client: Client, task_queue: str = TASK_QUEUE) -> None:
        self.client = client
        self.task_queue = task_queue
        self._sending: set[str] = set()
        self.start_with_attributes = True
        """New incidents start with their search attributes set (``search.at_start``), unless
        the namespace has been found not to know them."""
        self._held: dict[str, _HeldTriggers] = {}

    @classmethod
    async def connect(cls, address: str | None = None, task_queue: str = TASK_QUEUE) -> Escalations:
        """Connect to Temporal (``TEMPORAL_ADDRESS`` and the rest of ``temporalio.envconfig``, or
        ``address``)."""
        try:
            return cls(await connect(address), task_queue)
        except RuntimeError as err:  # the core SDK reports a failed connection as RuntimeError
            raise TemporalUnavailable(unreachable_message(err, address)) from None

    # ── opening ──────────────────────────────────────────────────────────────────────────────

    async def start_incident(self, request: IncidentRequest | None = None, **fields: Any) -> TriggerResult:
        """Open an incident, or join the open one with the same key (counted as a repeat
        occurrence, paging nobody again). Atomic under races: one key, one incident.

        Triggers of a key that arrive while one of them is on its way to Temporal are held and
        sent on together as one batch, so a flood of 500 alerts comes down to a handful of
        history events, and each caller still learns it joined."""
        if request is None:
            try:
                request = IncidentRequest.model_validate(fields)
            except ValidationError as err:
                raise InvalidRequest(describe_validation_error(err)) from None
        key = request.key
        if key in self._sending:
            batch = self._held.setdefault(key, _HeldTriggers(latest=request))
            batch.latest = request
            waiter: asyncio.Future[TriggerResult] = asyncio.get_running_loop().create_future()
            batch.waiters.append(waiter)
            return await waiter
        self._sending.add(key)
        try:
            result = await self._trigger(request)
        except BaseException as err:
            self._fail_held(key, err)
            raise
        finally:
            self._sending.discard(key)
        await self._send_held(key)
        return result

    async def _send_held(self, key: str) -> None:
        """Count the triggers held back while the first one was on its way, in one signal."""
        while (batch := self._held.pop(key, None)) is not None:
            self._sending.add(key)
            try:
                status = await self._signal_occurrences(batch.latest, len(batch.waiters))
            except BaseException as err:
                for waiter in batch.waiters:
                    if not waiter.done():
                        waiter.set_exception(err)
                raise
            finally:
                self._sending.discard(key)
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_result(TriggerResult(created=False, status=status))

    def _fail_held(self, key: str, err: BaseException) -> None:
        batch = self._held.pop(key, None)
        for waiter in batch.waiters if batch else []:
            if not waiter.done():
                waiter.set_exception(err)

    async def _signal_occurrences(self, request: IncidentRequest, count: int) -> IncidentStatus:
        handle = self._handle(request.key)
        try:
            await handle.signal(IncidentWorkflow.occurred, OccurrenceBatch(request=request, count=count))
        except RPCError as err:
            self._raise_for_rpc(err, request.key)
        return await self.status(request.key)

    async def _trigger(self, request: IncidentRequest) -> TriggerResult:
        request = request.model_copy(update={"request_id": uuid.uuid4().hex, "baseline": PATCH_BASELINE})
        for attempt in range(6):
            operation = WithStartWorkflowOperation(
                IncidentWorkflow.run,
                request,
                id=workflow_id(request.key),
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=f"[{request.priority}] {request.policy}: {request.summary}"[:200],
                static_details=_static_details(request),
                search_attributes=search.at_start(request.key, request.policy, request.priority)
                if self.start_with_attributes
                else None,
            )
            try:
                return await self.client.execute_update_with_start_workflow(
                    IncidentWorkflow.trigger, request, start_workflow_operation=operation
                )
            except WorkflowUpdateFailedError as err:
                inner = errors.innermost(err)
                if isinstance(inner, ApplicationError) and inner.type == errors.ALREADY_RESOLVED:
                    # Resolved a moment ago but not yet closed: once it closes, this key opens anew.
                    await asyncio.sleep(0.1 * 2**attempt)
                    continue
                raise IncidentRejected(errors.reason(err), errors.field_of(err)) from None
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                if self.start_with_attributes and _unknown_search_attribute(err):
                    # A namespace without the incident attributes (no worker has registered
                    # them yet): the incident starts all the same; its worker registers them.
                    get_logger().warning("starting incidents without search attributes", reason=str(err))
                    self.start_with_attributes = False
                    continue
                if _too_many_updates(err):
                    # Other starters' triggers fill the workflow's in-flight updates: it is open,
                    # so this one joins it as a counted occurrence instead.
                    # (Its own start may be what filled them, when an attempt the client retried
                    # had opened it: the workflow knows its opening trigger and does not count it twice.)
                    status = await self._signal_occurrences(request, 1)
                    try:
                        created = await self._handle(request.key).query(IncidentWorkflow.opened_by, request.request_id)
                    except RPCError as query_err:
                        self._raise_for_rpc(query_err, request.key)
                    return TriggerResult(created=created, status=status)
                if isinstance(err, RPCError):
                    self._raise_for_rpc(err, request.key)
                raise TemporalUnavailable(f"Temporal did not answer in time: {err}") from None
        raise IncidentRejected(f"incident {request.key} is closing; try again in a moment")

    # ── responders ───────────────────────────────────────────────────────────────────────────

    async def acknowledge(self, key: str, *, by: str, note: str | None = None) -> IncidentStatus:
        """Take the incident: every pending page, reminder and escalation stops at once. The acker
        may acknowledge again to renew an acknowledgement that runs out (``ack_timeout``)."""
        return await self._update(key, IncidentWorkflow.acknowledge, AckRequest, by=by, note=note)

    async def resolve(self, key: str, *, by: str, resolution: str) -> IncidentStatus:
        """Resolve, at any status but resolved: everyone paged, and the reporter, are told the outcome."""
        return await self._update(key, IncidentWorkflow.resolve, ResolveRequest, by=by, resolution=resolution)

    async def escalate(self, key: str, *, by: str, reason: str, to: str | None = None) -> IncidentStatus:
        """Escalate by hand: to the next tier, or to the tier ``to`` (a number or a tier name)."""
        return await self._update(key, IncidentWorkflow.escalate, EscalateRequest, by=by, reason=reason, to=to)

    async def reassign(self, key: str, *, policy: str, by: str, reason: str) -> IncidentStatus:
        """Hand the incident to another policy: its tier 1 is paged at once; the old policy's timers stop."""
        return await self._update(key, IncidentWorkflow.reassign, ReassignRequest, by=by, policy=policy, reason=reason)

    async def snooze(self, key: str, *, duration: str | timedelta, by: str) -> IncidentStatus:
        """Page nobody for ``duration`` (``"2h"`` or a timedelta, at most 30 days); then the current
        tier is paged again."""
        return await self._update(key, IncidentWorkflow.snooze, SnoozeRequest, by=by, **{"for": duration})

    async def add_note(self, key: str, *, by: str, text: str) -> IncidentStatus:
        """Add a note to the timeline (up to 10,000 characters; 500,000 for all of an incident's notes)."""
        return await self._update(key, IncidentWorkflow.note, NoteRequest, by=by, note=text)

    async def wait_on_customer(self, key: str, *, by: str, reason: str) -> IncidentStatus:
        """Waiting on the customer: escalation and the SLA clock stop until ``resume``."""
        return await self._update(key, IncidentWorkflow.wait_on_customer, WaitRequest, by=by, reason=reason)

    async def resume(self, key: str, *, by: str, note: str | None = None) -> IncidentStatus:
        """The customer answered: the clocks run again with the time they had left."""
        return await self._update(key, IncidentWorkflow.resume, ResumeRequest, by=by, note=note)

    async def explain_sla(self, key: str, *, by: str, reason: str) -> IncidentStatus:
        """Record why the resolution SLA was missed (shown in status and the review)."""
        return await self._update(key, IncidentWorkflow.explain_sla, SlaReasonRequest, by=by, reason=reason)

    async def set_priority(self, key: str, *, priority: str, by: str) -> IncidentStatus:
        """Change the priority: the current window and the resolution SLA count again from now."""
        return await self._update(key, IncidentWorkflow.set_priority, PriorityRequest, by=by, priority=priority)

    # ── maintenance windows ──────────────────────────────────────────────────────────────────

    async def start_maintenance(self, policy: str, *, duration: str | timedelta, by: str, reason: str) -> MaintenanceWindow:
        """A maintenance window for the policy: incidents opened meanwhile page nobody until it
        ends. Starting one while another is on extends it."""
        try:
            request = MaintenanceRequest.model_validate({"policy": policy, "for": duration, "by": by, "reason": reason})
        except ValidationError as err:
            raise InvalidRequest(describe_validation_error(err, "--")) from None
        operation = WithStartWorkflowOperation(
            MaintenanceWorkflow.run,
            request,
            id=maintenance_id(policy),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"maintenance of {policy}: {reason}"[:200],
        )
        try:
            return await self.client.execute_update_with_start_workflow(
                MaintenanceWorkflow.begin, request, start_workflow_operation=operation
            )
        except WorkflowUpdateFailedError as err:
            raise IncidentRejected(errors.reason(err), errors.field_of(err)) from None
        except RPCError as err:
            self._raise_for_rpc(err, policy)

    async def end_maintenance(self, policy: str, *, by: str) -> MaintenanceWindow:
        """End the policy's maintenance window now: the incidents it held page at once."""
        try:
            request = MaintenanceEnd.model_validate({"by": by})
        except ValidationError as err:
            raise InvalidRequest(describe_validation_error(err, "--")) from None
        handle = self.client.get_workflow_handle_for(MaintenanceWorkflow.run, maintenance_id(policy))
        try:
            return await handle.execute_update(MaintenanceWorkflow.end, request)
        except WorkflowUpdateFailedError as err:
            raise IncidentRejected(errors.reason(err)) from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise IncidentRejected(f"no maintenance window is on for policy {policy!r}") from None
            self._raise_for_rpc(err, policy)

    async def maintenance(self, policy: str) -> MaintenanceWindow | None:
        """The policy's maintenance window while it is on, with the incidents it holds."""
        handle = self.client.get_workflow_handle_for(MaintenanceWorkflow.run, maintenance_id(policy))
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return None
            return await handle.query(MaintenanceWorkflow.current)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            self._raise_for_rpc(err, policy)
        return None

    # ── reading ──────────────────────────────────────────────────────────────────────────────

    async def status(self, key: str) -> IncidentStatus:
        """The incident's status with its whole timeline (of the open run, or the closed one's result)."""
        handle = self._handle(key)
        try:
            description = await handle.describe()
            if description.status == WorkflowExecutionStatus.RUNNING:
                return await handle.query(IncidentWorkflow.get_status)
            return await self._final_status(key, handle, description.status)
        except RPCError as err:
            self._raise_for_rpc(err, key)
        except WorkflowQueryFailedError as err:
            raise IncidentRejected(f"incident {key} could not be read: {err}") from None

    async def list_incidents(
        self, status: Literal["open", "all"] = "open", limit: int = 200, where: str | None = None
    ) -> list[IncidentStatus]:
        """Incidents from Temporal's visibility store, newest first, at most ``limit``. ``where``
        narrows them with the incident search attributes, e.g. ``IncidentStatus="triggered" AND Tier>=2``.

        Open means not resolved: a resolved incident's run goes on while its closing notices are
        delivered (seconds, or longer with a receiver that is down), and is not listed as open
        meanwhile; ``limit`` counts the incidents listed, not the runs looked at."""
        query = 'WorkflowType="Incident"'
        if status == "open":
            query += ' AND ExecutionStatus="Running"'
        if where:
            query += f" AND ({where})"
        results: list[IncidentStatus] = []
        seen: set[str] = set()
        try:
            async for execution in self.client.list_workflows(query):
                if execution.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
                    continue
                key = execution.id.removeprefix(workflow_id(""))
                if key in seen:
                    continue
                seen.add(key)
                try:
                    found = await self.status(key)
                except (IncidentNotFound, IncidentRejected):
                    continue
                if status == "open" and found.status == "resolved":
                    continue
                results.append(found)
                if len(results) >= limit:
                    break
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT and where:
                raise InvalidRequest(f"the filter {where!r} is not a valid visibility query: {err.message}") from None
            self._raise_for_rpc(err, "")
        return results

    # ── plumbing ─────────────────────────────────────────────────────────────────────────────

    def _handle(self, key: str) -> WorkflowHandle[IncidentWorkflow, IncidentStatus]:
        return self.client.get_workflow_handle_for(IncidentWorkflow.run, workflow_id(key))

    async def _update(self, key: str, update: Any, model: type[BaseModel], **fields: Any) -> IncidentStatus:
        try:
            request = model.model_validate(fields)
        except ValidationError as err:
            raise InvalidRequest(describe_validation_error(err, "--")) from None
        handle = self._handle(key)
        try:
            status: IncidentStatus = await handle.execute_update(update, request)
            return status
        except WorkflowUpdateFailedError as err:
            raise IncidentRejected(errors.reason(err)) from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                await self._explain_closed(key, handle, update.__name__)
            self._raise_for_rpc(err, key)

    async def _explain_closed(self, key: str, handle: WorkflowHandle[Any, Any], action: str) -> None:
        """An update to a closed incident: say why, from its final status."""
        try:
            description = await handle.describe()
        except RPCError:
            raise IncidentNotFound(f"no incident with key {key!r}") from None
        final = await self._final_status(key, handle, description.status)
        raise IncidentRejected(
            f"incident {key} is already resolved (by {final.resolved_by} at "
            f"{format_time(final.resolved_at)}, {final.resolution!r}): "
            f"it cannot {_VERBS.get(action, action)}"
        )

    async def _final_status(self, key: str, handle: WorkflowHandle[Any, IncidentStatus], status: Any) -> IncidentStatus:
        try:
            return await handle.result()
        except WorkflowFailureError as err:
            raise IncidentRejected(f"incident {key} was not opened: {errors.reason(err)}") from None
        except Exception as err:
            raise IncidentRejected(f"incident {key} ended as {getattr(status, 'name', status)}: {err}") from None

    @staticmethod
    def _raise_for_rpc(err: RPCError, key: str) -> NoReturn:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise IncidentNotFound(f"no incident with key {key!r}") from None
        if err.status in _UNAVAILABLE:
            raise TemporalUnavailable(f"Temporal is unavailable: {err.message}") from None
        raise IncidentRejected(f"Temporal refused the request: {err.message}") from None
