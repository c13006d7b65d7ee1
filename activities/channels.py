"""Channels: how a rendered message reaches one address. All network I/O of notifications is here.

A channel raises ``PermanentDeliveryFailure`` when retrying cannot help (the workflow then falls
over to the person's next channel) and any other exception for transient trouble (Temporal
retries the activity with backoff, with the same idempotency key).
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib
from temporalio.exceptions import ApplicationError

from activities.messages import RenderedMessage
from escalate.logs import get_logger
from workflows.model import Delivery, Notification


def permanent_failure(message: str) -> ApplicationError:
    return ApplicationError(message, type="PermanentDeliveryFailure", non_retryable=True)


class Channel(Protocol):
    name: str

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery: ...


class LogChannel:
    """Writes the message to the worker log: the channel of a worker that has no way out for
    this kind of address (e.g. ``escalate dev`` without SMTP)."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery:
        get_logger(incident=note.incident_key, tier=note.tier, who=note.person, channel=self.name).info(
            "notification",
            to=note.address,
            subject=message.subject,
            body=message.text,
            idempotency_key=note.idempotency_key,
        )
        return Delivery(channel=self.name, outcome="logged", detail=self.why)


class SmtpSettings:
    """``smtp://user:pass@host:port`` (``smtps://`` for implicit TLS, ``?starttls=1``)."""

    def __init__(self, url: str, sender: str, timeout: float) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps"):
            raise ValueError(f"ESCALATE_SMTP_URL {url!r}: use smtp://host:port or smtps://host:port")
        self.use_tls = parsed.scheme == "smtps"
        query = parse_qs(parsed.query)
        self.start_tls = query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
        self.hostname = parsed.hostname or "localhost"
        self.port = parsed.port or (465 if self.use_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.sender = sender
        self.timeout = timeout


def message_id(idempotency_key: str) -> str:
    """The same Message-ID on every retry, so a receiver can drop a duplicate."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@escalate>"


class EmailChannel:
    name = "email"

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def compose(self, note: Notification, message: RenderedMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.smtp.sender
        email["To"] = note.address
        email["Subject"] = message.subject
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = message_id(note.idempotency_key)
        email["X-Escalate-Incident"] = note.incident_key
        email["X-Escalate-Idempotency-Key"] = note.idempotency_key
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        return email

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery:
        try:
            await aiosmtplib.send(
                self.compose(note, message),
                hostname=self.smtp.hostname,
                port=self.smtp.port,
                username=self.smtp.username,
                password=self.smtp.password,
                use_tls=self.smtp.use_tls,
                start_tls=self.smtp.start_tls,
                timeout=self.smtp.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            raise permanent_failure(f"recipient refused: {err}") from None
        except aiosmtplib.SMTPResponseException as err:
            if 500 <= err.code < 600:
                raise permanent_failure(f"SMTP server refused with {err.code}: {err.message}") from None
            raise
        return Delivery(channel=self.name, outcome="delivered", detail=f"via {self.smtp.hostname}:{self.smtp.port}")
