"""All side effects of an incident: reading policies and sending notifications."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import Channel, EmailChannel, LogChannel, SmtpSettings
from activities.messages import render
from activities.policy_store import PolicyError, PolicyStore, UnknownPolicy
from escalate.logs import get_logger
from escalate.settings import Settings
from workflows.model import LOAD_POLICY_ACTIVITY, NOTIFY_ACTIVITY, Delivery, Notification, PolicyRef
from workflows.policy import PolicySnapshot


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {
        "email": (
            EmailChannel(SmtpSettings(settings.smtp_url, settings.smtp_from, settings.smtp_timeout_seconds))
            if settings.smtp_url
            else LogChannel("email", "ESCALATE_SMTP_URL is not set, so the email was written to the worker log")
        ),
    }
    for name in ("webhook", "chat"):
        channels[name] = LogChannel(name, f"this worker does not send {name} messages yet; written to the worker log")
    return channels


class EscalationActivities:
    """The activities of the incident workflow, configured once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.store = PolicyStore(settings.policy_dir)
        self.channels = build_channels(settings)

    @activity.defn(name=LOAD_POLICY_ACTIVITY)
    async def load_policy(self, ref: PolicyRef) -> PolicySnapshot:
        try:
            return await asyncio.to_thread(self.store.load, ref.name)
        except UnknownPolicy as err:
            raise ApplicationError(str(err), type="UnknownPolicy", non_retryable=True) from None
        except PolicyError as err:
            raise ApplicationError(
                f"policy {ref.name!r} does not load: {err}", type="InvalidPolicy", non_retryable=True
            ) from None

    @activity.defn(name=NOTIFY_ACTIVITY)
    async def notify(self, note: Notification) -> Delivery:
        log = get_logger(incident=note.incident_key, tier=note.tier, who=note.person, channel=note.channel)
        channel = self.channels.get(note.channel)
        if channel is None:
            raise ApplicationError(f"unknown channel {note.channel!r}", type="PermanentDeliveryFailure", non_retryable=True)
        try:
            delivery = await channel.send(note, render(note))
        except Exception as err:
            log.warning(
                "notification failed",
                error=str(err) or type(err).__name__,
                attempt=activity.info().attempt,
                idempotency_key=note.idempotency_key,
            )
            raise
        log.info("notification sent", outcome=delivery.outcome, idempotency_key=note.idempotency_key)
        return delivery

    @property
    def all(self) -> list[object]:
        return [self.load_policy, self.notify]
