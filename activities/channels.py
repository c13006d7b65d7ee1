"""Channels: how a rendered message reaches one address. All network I/O of notifications is here.

Each call is one attempt: the notify activity runs with a single-attempt retry policy, and the
incident workflow drives the retries itself (``_attempt_channel`` in workflows/incident.py: up to
``decisions.NOTIFY_ATTEMPTS`` attempts with backoff, longer when the receiver sent Retry-After,
each recorded on the timeline, the idempotency key the same on every one). A channel raises
``PERMANENT_DELIVERY_FAILURE`` when retrying cannot help (the workflow then falls over to the
person's next channel) and ``DELIVERY_FAILED``, or any other exception, for transient trouble
(another attempt follows).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib
import httpx
from pydantic import BaseModel
from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient
from temporalio.exceptions import ApplicationError

from activities.messages import RenderedMessage
from escalate.logs import get_logger
from workflows.errors import DELIVERY_FAILED, PERMANENT_DELIVERY_FAILURE
from workflows.message_kinds import traits
from workflows.model import Delivery, Notification


def permanent_failure(message: str) -> ApplicationError:
    """Retrying cannot help (a 404, a refused recipient): fall over to the next channel."""
    return ApplicationError(message, type=PERMANENT_DELIVERY_FAILURE, non_retryable=True)


def transient_failure(message: str, retry_after: float | None = None) -> ApplicationError:
    """Worth another attempt; ``retry_after`` (seconds) when the receiver asked for a pause."""
    details = [retry_after] if retry_after is not None else []
    return ApplicationError(message, *details, type=DELIVERY_FAILED)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


def _header(headers: object, name: str) -> str | None:
    """A response header by name, in any case: slack_sdk hands error responses' headers over as a
    plain dict, keeping whatever case the server sent (``retry-after`` from many proxies)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():  # type: ignore[attr-defined]
        if str(key).lower() == wanted:
            found = value[0] if isinstance(value, list) and value else value
            return str(found) if found else None
    return None


RETRYABLE_STATUS = {408, 425, 429}
"""4xx answers that mean "not now" rather than "never"."""


class Channel(Protocol):
    name: str

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery: ...


class LogChannel:
    """Writes the message to the worker log: the last resort the workflow tries when none of a
    person's channels is configured on this worker (e.g. ``escalate dev`` without SMTP)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery:
        get_logger(incident=note.incident_key, tier=note.tier, who=note.person, channel=self.name).info(
            "notification",
            to=note.address,
            subject=message.subject,
            body=message.text,
            idempotency_key=note.idempotency_key,
        )
        return Delivery(channel=self.name, outcome="logged")


class SmtpSettings:
    """``smtp://user:pass@host:port`` (``smtps://`` for implicit TLS, ``?starttls=1``)."""

    def __init__(self, url: str, sender: str, timeout: float) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps"):
            shown = f"{parsed.scheme}://{parsed.hostname or ''}" if parsed.scheme else "(no scheme)"
            raise ValueError(f"ESCALATE_SMTP_URL {shown}…: use smtp://host:port or smtps://host:port")
        self.use_tls = parsed.scheme == "smtps"
        query = parse_qs(parsed.query)
        starttls = query.get("starttls")
        self.start_tls: bool | None = starttls[0].lower() in ("1", "true", "yes") if starttls else None
        """True: STARTTLS required; False (``?starttls=0``): never; unset: taken when the server offers it."""
        if self.use_tls and self.start_tls:
            raise ValueError("ESCALATE_SMTP_URL: smtps:// is TLS from the start; ?starttls=1 goes with smtp://")
        self.hostname = parsed.hostname or "localhost"
        self.port = parsed.port or (465 if self.use_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.sender = sender
        self.timeout = timeout
        cafile = query.get("cafile", [None])[0]
        try:
            self.tls_context = ssl.create_default_context(cafile=cafile) if cafile else None
        except (OSError, ssl.SSLError) as err:
            raise ValueError(f"ESCALATE_SMTP_URL: cafile {cafile!r} is not a readable PEM CA file: {err}") from None


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
                tls_context=self.smtp.tls_context,
                timeout=self.smtp.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            raise permanent_failure(f"recipient refused: {err}") from None
        except aiosmtplib.SMTPResponseException as err:
            if 500 <= err.code < 600:
                raise permanent_failure(f"SMTP server refused with {err.code}: {err.message}") from None
            raise
        except (ssl.SSLCertVerificationError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPException) as err:
            # A certificate we do not trust, or a server without the TLS we asked for, will not
            # mend by retrying: fall over to the next channel now.
            if _is_certificate_error(err):
                raise permanent_failure(
                    f"TLS to {self.server}: certificate verify failed ({_root_cause(err)}); "
                    "add ?cafile=/path/ca.pem to ESCALATE_SMTP_URL if the server uses a private CA"
                ) from None
            if "STARTTLS extension not supported" in str(err):
                raise permanent_failure(
                    f"{self.server} does not offer STARTTLS, which ESCALATE_SMTP_URL asks for (?starttls=1)"
                ) from None
            raise
        return Delivery(channel=self.name, outcome="delivered", detail=f"via {self.server}")

    @property
    def server(self) -> str:
        return f"{self.smtp.hostname}:{self.smtp.port}"


def _cause_or_context_chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and what lies under it, following the explicit cause and, where there is none, the
    exception being handled when it was raised: SMTP and TLS libraries do not always chain the
    SSL error that started it all with ``from`` (``workflows.errors.innermost`` follows causes only)."""
    seen: BaseException | None = err
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _root_cause(err: BaseException) -> BaseException:
    *_, root = _cause_or_context_chain(err)
    return root


def _is_certificate_error(err: BaseException) -> bool:
    return any(
        isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen)
        for seen in _cause_or_context_chain(err)
    )


class WebhookPayload(BaseModel):
    """The JSON body of a webhook notification."""

    type: str = "escalate.notification"
    idempotency_key: str
    kind: str
    incident: dict[str, object]
    person: str
    subject: str
    text: str
    acknowledge: str
    sent_at: datetime


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``Escalate-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    snippet = response.text[:200].strip()
    message = f"{what} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    if status >= 500 or status in RETRYABLE_STATUS:
        raise transient_failure(message, _retry_after(response.headers.get("Retry-After")))
    if 300 <= status < 400:
        raise permanent_failure(f"{what} answered HTTP {status} (redirects are not followed): fix the address")
    raise permanent_failure(message)


class _HttpChannel:
    """A channel that POSTs to the address with httpx: 2xx delivered; 408, 425, 429 and 5xx
    and timeouts retried; other answers (redirects included) permanent."""

    name = ""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def post(self, url: str, what: str, **request: Any) -> httpx.Response:
        try:
            response = await self.client.post(url, **request)
        except httpx.TimeoutException:
            raise transient_failure(f"no answer from {url} within {self.timeout:g}s") from None
        except httpx.TransportError as err:
            raise transient_failure(f"cannot reach {url}: {err or type(err).__name__}") from None
        except httpx.InvalidURL as err:
            raise permanent_failure(f"{url!r} is not a usable URL: {err}") from None
        _raise_for_status(response, what)
        return response


class WebhookChannel(_HttpChannel):
    """A signed JSON POST (``Escalate-Signature``, ``Idempotency-Key``), answered as any HTTP
    channel's (see ``_HttpChannel``)."""

    name = "webhook"

    def __init__(self, secret: str | None, timeout: float) -> None:
        super().__init__(timeout)
        self.secret = secret

    def payload(self, note: Notification, message: RenderedMessage) -> bytes:
        body = WebhookPayload(
            idempotency_key=note.idempotency_key,
            kind=note.kind,
            incident={
                "key": note.incident_key,
                "policy": note.policy,
                "priority": note.priority,
                "summary": note.summary,
                "tier": note.tier,
                "tier_name": note.tier_name,
                "ack_by": note.ack_by.isoformat() if note.ack_by else None,
            },
            person=note.person,
            subject=message.subject,
            text=message.text,
            acknowledge=f"escalate ack {note.incident_key} --by {note.person}",
            sent_at=datetime.now().astimezone(),
        )
        return body.model_dump_json().encode()

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery:
        body = self.payload(note, message)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": note.idempotency_key,
            "User-Agent": "escalate",
        }
        if self.secret:
            headers["Escalate-Signature"] = sign(self.secret, int(time.time()), body)
        response = await self.post(note.address, "the webhook", content=body, headers=headers)
        return Delivery(channel=self.name, outcome="delivered", detail=f"HTTP {response.status_code}")


_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
_SLACK_RETRYABLE = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


def slack_blocks(message: RenderedMessage) -> list[dict[str, object]]:
    """The message as Slack blocks: the subject and body in a section, the footer as context."""
    body, _, footer = message.text.rstrip().rpartition("\n\n")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{message.subject}*\n{body or footer}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": footer if body else ""}]},
    ]


class SlackChannel:
    """Slack: a person's own incoming-webhook URL, or their handle through the Web API (bot
    token) or, failing that, a mention in the shared incoming webhook's channel."""

    name = "chat"

    def __init__(self, token: str | None, webhook_url: str | None, api_url: str, timeout: float) -> None:
        self.token = token
        self.webhook_url = webhook_url
        self.api_url = api_url
        self.timeout = timeout

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery:
        address = note.address
        blocks = slack_blocks(message)
        if address.startswith(("http://", "https://")):
            return await asyncio.to_thread(self._post_webhook, address, message.subject, blocks, "their webhook")
        if self.token:
            return await asyncio.to_thread(self._post_message, address, message.subject, blocks)
        if self.webhook_url:
            mention = f"<@{address}>" if _SLACK_USER_ID.match(address) else address
            text = f"{mention} {message.subject}"
            return await asyncio.to_thread(self._post_webhook, self.webhook_url, text, blocks, "the shared webhook")
        return Delivery(
            channel=self.name,
            outcome="not_configured",
            detail="set ESCALATE_SLACK_TOKEN or ESCALATE_SLACK_WEBHOOK_URL to reach chat handles",
        )

    def _post_webhook(self, url: str, text: str, blocks: list[dict[str, object]], which: str) -> Delivery:
        try:
            response = WebhookClient(url, timeout=int(self.timeout) or 1).send(text=text, blocks=blocks)
        except OSError as err:
            raise transient_failure(f"cannot reach Slack ({which}): {err}") from None
        status = response.status_code
        if 200 <= status < 300:
            return Delivery(channel=self.name, outcome="delivered", detail=f"Slack webhook ({which})")
        detail = f"Slack ({which}) answered HTTP {status}: {str(response.body)[:200]}"
        if status >= 500 or status in RETRYABLE_STATUS:
            raise transient_failure(detail, _retry_after(_header(response.headers, "Retry-After")))
        raise permanent_failure(detail)

    def _post_message(self, channel: str, text: str, blocks: list[dict[str, object]]) -> Delivery:
        client = WebClient(token=self.token, base_url=self.api_url, timeout=int(self.timeout) or 1)
        try:
            client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except SlackApiError as err:
            error = err.response.get("error") if err.response is not None else None
            status = err.response.status_code if err.response is not None else 0
            detail = f"Slack chat.postMessage to {channel} failed: {error or status}"
            if error in _SLACK_RETRYABLE or status >= 500 or status == 429:
                retry = _header(err.response.headers, "Retry-After") if err.response is not None else None
                raise transient_failure(detail, _retry_after(retry)) from None
            raise permanent_failure(detail) from None
        except OSError as err:
            raise transient_failure(f"cannot reach the Slack API: {err}") from None
        return Delivery(channel=self.name, outcome="delivered", detail=f"Slack message to {channel}")


def adaptive_card(note: Notification, message: RenderedMessage, status_url: str) -> dict[str, Any]:
    """A Teams message: an Adaptive Card with the page, and buttons to acknowledge and to look."""
    actions = []
    if message.ack_link:
        actions.append({"type": "Action.OpenUrl", "title": "Acknowledge", "url": message.ack_link})
    if status_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open the incident", "url": status_url})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": message.subject, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": message.body or message.text, "wrap": True},
            {"type": "TextBlock", "text": f"To acknowledge: escalate ack {note.incident_key} --by {note.person}",
             "isSubtle": True, "wrap": True},
        ],
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}],
    }


_TEAMS_WRAPPED_ERROR = re.compile(r"Microsoft Teams endpoint returned HTTP error (\d{3})")


def _raise_for_teams_failure(response: httpx.Response) -> None:
    """Office 365 connector webhooks answer 200 even when Teams refused the message, with the
    refusal in the body ("Webhook message delivery failed with error: Microsoft Teams endpoint
    returned HTTP error 429 with ContextId …"): such an answer is not a delivery."""
    text = response.text[:1000].strip()
    if "delivery failed" not in text.lower() and not _TEAMS_WRAPPED_ERROR.search(text):
        return
    match = _TEAMS_WRAPPED_ERROR.search(text)
    message = f"the Teams webhook answered HTTP {response.status_code} but did not deliver: {text[:200]}"
    status = int(match.group(1)) if match else 0
    if not match or status >= 500 or status in RETRYABLE_STATUS:
        raise transient_failure(message)
    raise permanent_failure(message)


class TeamsChannel(_HttpChannel):
    """Microsoft Teams incoming webhooks (the address is the webhook URL)."""

    name = "teams"

    def __init__(self, timeout: float, api_url: str) -> None:
        super().__init__(timeout)
        self.api_url = api_url

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery:
        status_url = f"{self.api_url.rstrip('/')}/v1/incidents/{note.incident_key}/review?format=html"
        response = await self.post(note.address, "the Teams webhook", json=adaptive_card(note, message, status_url))
        _raise_for_teams_failure(response)
        return Delivery(channel=self.name, outcome="delivered", detail=f"HTTP {response.status_code}")


NTFY_PRIORITY = {"P1": "5", "P2": "4", "P3": "3", "P4": "2", "P5": "1"}


def _header_text(text: str) -> str:
    """A header value ntfy reads: plain ASCII as it is, anything else as RFC 2047 UTF-8."""
    try:
        text.encode("ascii")
        return text
    except UnicodeEncodeError:
        return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


class PushChannel(_HttpChannel):
    """ntfy-compatible push (self-hosted, no vendor cloud): POST the message to <server>/<topic>
    with a title, a priority and an action button (the one-click acknowledge link)."""

    name = "push"

    def __init__(self, timeout: float, api_url: str, token: str | None) -> None:
        super().__init__(timeout)
        self.api_url = api_url
        self.token = token

    async def send(self, note: Notification, message: RenderedMessage) -> Delivery:
        link = message.ack_link or f"{self.api_url.rstrip('/')}/v1/incidents/{note.incident_key}"
        label = "Acknowledge" if message.ack_link else "Open the incident"
        # An outcome wakes nobody: "it is fixed" goes at low priority, whatever the incident's.
        paging = traits(note.kind).wakes
        headers = {
            "Title": _header_text(message.subject),
            "Priority": NTFY_PRIORITY.get(note.priority, "3") if paging else "2",
            "Tags": ("rotating_light" if note.priority in ("P1", "P2") else "warning") if paging else "information_source",
            "Actions": f"view, {label}, {link}, clear=true",
            "X-Escalate-Idempotency-Key": note.idempotency_key,
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = await self.post(note.address, "the push server", content=(message.body or message.text).encode(), headers=headers)
        return Delivery(channel=self.name, outcome="delivered", detail=f"HTTP {response.status_code}")
