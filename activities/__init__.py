"""All side effects of an incident: reading policies and sending notifications."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.channels import (
    Channel,
    EmailChannel,
    LogChannel,
    PushChannel,
    SlackChannel,
    SmtpSettings,
    TeamsChannel,
    WebhookChannel,
)
from activities.messages import TemplateProblem, Templates
from activities.policy_store import PolicyError, PolicyStore, UnknownPolicy
from escalate.links import LinkAction, link_url, make_token
from escalate.logs import get_logger
from escalate.settings import Settings
from workflows.errors import DELIVERY_FAILED, INVALID_POLICY, PERMANENT_DELIVERY_FAILURE, UNKNOWN_POLICY
from workflows.message_kinds import traits
from workflows.metrics import NOTIFICATIONS, NOTIFICATIONS_HELP
from workflows.model import (
    LOAD_POLICY_ACTIVITY,
    LOG_CHANNEL,
    MAINTENANCE_ACTIVITY,
    NOTIFY_ACTIVITY,
    REPORTER,
    Delivery,
    MaintenanceWindow,
    Notification,
    PolicyRef,
    maintenance_id,
)
from workflows.policy import CHANNELS, PolicySnapshot


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The channels this worker can send on; the others answer ``not_configured``."""
    channels: dict[str, Channel] = {
        LOG_CHANNEL: LogChannel(LOG_CHANNEL),
        "webhook": WebhookChannel(
            settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
            settings.webhook_timeout_seconds,
        ),
        "chat": SlackChannel(
            settings.slack_token.get_secret_value() if settings.slack_token else None,
            settings.slack_webhook_url,
            settings.slack_api_url,
            settings.webhook_timeout_seconds,
        ),
        "teams": TeamsChannel(settings.webhook_timeout_seconds, settings.api_url),
        "push": PushChannel(
            settings.webhook_timeout_seconds,
            settings.api_url,
            settings.ntfy_token.get_secret_value() if settings.ntfy_token else None,
        ),
    }
    if settings.smtp_url:
        channels["email"] = EmailChannel(
            SmtpSettings(settings.smtp_url, settings.smtp_from, settings.smtp_timeout_seconds)
        )
    return channels


_HOW_TO_CONFIGURE = {
    "email": "set ESCALATE_SMTP_URL",
}


def not_configured(channel: str) -> str:
    how = _HOW_TO_CONFIGURE.get(channel, "not supported by this version")
    return f"no {channel} channel on this worker ({how})"


def _count(channel: str, outcome: str) -> None:
    activity.metric_meter().create_counter(NOTIFICATIONS, NOTIFICATIONS_HELP).add(
        1, {"channel": channel, "outcome": outcome}
    )


class EscalationActivities:
    """The activities of the incident workflow, configured once from the settings."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.client = client
        self.store = PolicyStore(settings.policy_dir)
        self.channels = build_channels(settings)
        self.channels_off = {name: not_configured(name) for name in CHANNELS if name not in self.channels}
        self.templates = Templates(settings.template_dir)
        self.link_secret = settings.link_secret.get_secret_value() if settings.link_secret else None
        self.api_url = settings.api_url
        self.link_ttl = settings.link_ttl
        self.templates.check()
        if not settings.webhook_secret:
            get_logger().warning("ESCALATE_WEBHOOK_SECRET is not set: webhooks are sent unsigned")

    @activity.defn(name=LOAD_POLICY_ACTIVITY)
    async def load_policy(self, ref: PolicyRef) -> PolicySnapshot:
        try:
            snapshot = await asyncio.to_thread(self.store.load, ref.name)
        except UnknownPolicy as err:
            raise ApplicationError(str(err), type=UNKNOWN_POLICY, non_retryable=True) from None
        except PolicyError as err:
            raise ApplicationError(
                f"policy {ref.name!r} does not load: {err}", type=INVALID_POLICY, non_retryable=True
            ) from None
        return snapshot.model_copy(update={"channels_off": dict(self.channels_off)})

    @activity.defn(name=NOTIFY_ACTIVITY)
    async def notify(self, note: Notification) -> Delivery:
        log = get_logger(incident=note.incident_key, tier=note.tier, who=note.person, channel=note.channel)
        channel = self.channels.get(note.channel)
        if channel is None:
            _count(note.channel, "not_configured")
            return Delivery(channel=note.channel, outcome="not_configured", detail=not_configured(note.channel))
        try:
            message = self.templates.render(note, **self.links_for(note))
        except TemplateProblem as err:
            raise ApplicationError(str(err), type=PERMANENT_DELIVERY_FAILURE, non_retryable=True) from None
        try:
            delivery = await channel.send(note, message)
        except ApplicationError as err:
            log.warning("notification failed", error=err.message, kind=err.type, idempotency_key=note.idempotency_key)
            _count(note.channel, "permanent_failure" if err.non_retryable else "failed")
            raise
        except Exception as err:
            # A short reason, not a traceback: every attempt's failure is kept in the history.
            reason = str(err) or type(err).__name__
            log.warning("notification failed", error=reason, kind=type(err).__name__, idempotency_key=note.idempotency_key)
            _count(note.channel, "failed")
            raise ApplicationError(reason, type=DELIVERY_FAILED) from None
        log.debug("notification sent", outcome=delivery.outcome, idempotency_key=note.idempotency_key)
        _count(note.channel, delivery.outcome)
        return delivery

    def links_for(self, note: Notification) -> dict[str, str]:
        """One-click acknowledge/resolve links for responders, when links are configured."""
        if self.link_secret is None or note.person == REPORTER or note.kind == "resolved":
            return {}
        actions: tuple[LinkAction, ...] = ("ack", "resolve") if traits(note.kind).offers_ack else ("resolve",)
        return {
            f"{action}_link": link_url(self.api_url, make_token(self.link_secret, note.incident_key, action, note.person, self.link_ttl))
            for action in actions
        }

    @activity.defn(name=MAINTENANCE_ACTIVITY)
    async def maintenance_window(self, ref: PolicyRef) -> MaintenanceWindow | None:
        """The policy's maintenance window, if one is on (read from its maintenance workflow)."""
        if self.client is None:
            return None
        handle = self.client.get_workflow_handle(maintenance_id(ref.name))
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return None
            window: MaintenanceWindow | None = await handle.query("current", result_type=MaintenanceWindow)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return window if window is not None and not window.ended_by else None

    @property
    def all(self) -> list[Callable[..., Any]]:
        return [self.load_policy, self.notify, self.maintenance_window]
