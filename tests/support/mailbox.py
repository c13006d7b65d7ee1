"""A real SMTP server (aiosmtpd on 127.0.0.1) that keeps every message, and reading what it got.

``smtp_server(Mailbox())`` serves for a ``with`` block; an ``SmtpServer`` can also be stopped
(its port closed: the mail server is down) and started again on the same port.
"""

from __future__ import annotations

import asyncio
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from activities.channels import EmailChannel, SmtpSettings
from tests.support.net import LOOPBACK, free_port

SENDER = "pager@escalate.test"
USER = "pager"
PASSWORD = "p@ss:w/rd 1"  # characters that must be percent-encoded in the URL


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated: bool | None
    login: bytes | None


class Mailbox:
    """An aiosmtpd handler that keeps every message and refuses the recipients it is told to."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = set(refuse)
        self.lock = threading.Lock()
        self._received: list[Received] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        with self.lock:
            self._received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, session.authenticated, login)
            )
        return "250 2.0.0 accepted"

    @property
    def received(self) -> list[Received]:
        with self.lock:
            return list(self._received)

    def to(self, address: str) -> list[Received]:
        return [item for item in self.received if address in item.rcpt_tos]


@dataclass
class SmtpServer:
    """aiosmtpd on a loopback port, with aiosmtpd's SMTP ``options`` (TLS, AUTH…)."""

    mailbox: Mailbox = field(default_factory=Mailbox)
    port: int = field(default_factory=free_port)
    options: dict[str, Any] = field(default_factory=dict)
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        assert self.controller is None
        self.controller = Controller(
            self.mailbox, hostname=LOOPBACK, port=self.port, server_hostname="smtp.escalate.test", **self.options
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@contextmanager
def smtp_server(mailbox: Mailbox, **options: Any) -> Iterator[SmtpServer]:
    server = SmtpServer(mailbox, options=options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def check_password(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    """aiosmtpd's authenticator: USER with PASSWORD, nobody else."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text/plain and text/html bodies of a message (both must be there)."""
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None, "no text/plain part"
    assert html is not None, "no text/html part"
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    return plain.get_content(), html.get_content()


async def mail_to(mailbox: Mailbox, address: str, count: int, *, within: float = 10.0) -> list[Received]:
    """The first ``count`` messages to ``address``, waiting for them in real time (email is real)."""
    deadline = time.monotonic() + within
    while len(mailbox.to(address)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    received = mailbox.to(address)
    assert len(received) >= count, f"{address} got {len(received)} message(s), expected {count}: {[m.message['Subject'] for m in received]}"
    return received[:count]


def email_channel(server_url: str, sender: str = SENDER, timeout: float = 5.0) -> EmailChannel:
    """The email channel as the worker makes it from ``ESCALATE_SMTP_URL``."""
    return EmailChannel(SmtpSettings(server_url, sender, timeout))
