"""Signed, expiring one-click links for acknowledging or resolving from an email or chat message.

A link names the incident, the action and the person, and carries an expiry, all signed with
HMAC-SHA256 under ``ESCALATE_LINK_SECRET``: it cannot be forged, altered or used after it expires.
Opening it shows a confirmation page (mail scanners open links on their own); confirming acts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ValidationError

from workflows.durations import format_time

LinkAction = Literal["ack", "resolve"]


class LinkError(ValueError):
    """A link that cannot be used: ``expired`` tells an old link from a forged or broken one."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class Link(BaseModel):
    key: str
    action: LinkAction
    by: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def make_token(secret: str, key: str, action: LinkAction, by: str, ttl: timedelta, now: datetime | None = None) -> str:
    expires = (now or datetime.now(UTC)) + ttl
    body = json.dumps({"k": key, "a": action, "b": by, "e": int(expires.timestamp())}, separators=(",", ":"))
    payload = _b64(body.encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_token(secret: str, token: str, now: datetime | None = None) -> Link:
    """The link's contents, once its signature and expiry are checked."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or not hmac.compare_digest(_mac(secret, payload).encode(), signature.encode()):
        raise LinkError("this link is not valid: it was changed, cut short or not made by this server")
    try:
        fields = json.loads(_unb64(payload))
        link = Link(key=fields["k"], action=fields["a"], by=fields["b"], expires=datetime.fromtimestamp(fields["e"], UTC))
    except (ValueError, KeyError, TypeError, ValidationError):
        raise LinkError("this link is not valid: its contents cannot be read") from None
    if (now or datetime.now(UTC)) >= link.expires:
        raise LinkError(
            f"this link expired at {format_time(link.expires)}: use the CLI or the API instead", expired=True
        )
    return link


def link_url(api_url: str, token: str) -> str:
    return f"{api_url.rstrip('/')}/v1/links/{token}"
