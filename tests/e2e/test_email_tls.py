"""The email channel over TLS against a real SMTP server (aiosmtpd on 127.0.0.1), nothing mocked.

The server's certificate comes from a throw-away test CA (trustme); the client trusts it only
through ``?cafile=`` in ``ESCALATE_SMTP_URL``, as an operator would configure a relay with a
private CA. Covered: STARTTLS (with and without AUTH), implicit TLS (``smtps://``), certificates
the client does not trust, and servers whose TLS needs differ from what the URL asks for.

Failures are checked where the workflow sees them: through the ``notify`` activity, which turns
a channel's error into ``DeliveryFailed`` (transient: retried with the same idempotency key) or
``PermanentDeliveryFailure`` (non-retryable: falls over to the person's next channel).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trustme
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import EscalationActivities
from activities.channels import SmtpSettings
from activities.messages import render
from tests.support.mailbox import PASSWORD, SENDER, USER, Mailbox, SmtpServer, check_password, email_channel, parts, smtp_server
from tests.support.net import LOOPBACK
from tests.support.notifications import email_note
from tests.support.temporal import make_settings
from workflows.model import Delivery, Notification

CREDENTIALS = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"

# ── a test CA and server certificates ────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Pki:
    cafile: Path
    """The test CA's certificate (PEM): what ``?cafile=`` points at."""
    server_context: ssl.SSLContext
    """Presents a certificate for 127.0.0.1 and localhost, signed by the test CA."""
    wrong_name_context: ssl.SSLContext
    """Presents a certificate signed by the same CA, but for another host name."""

    @property
    def query(self) -> str:
        return f"cafile={quote(str(self.cafile), safe='/')}"


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = trustme.CA(organization_name="escalate test CA")
    cafile = tmp_path_factory.mktemp("pki") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return Pki(
        cafile=cafile,
        server_context=_server_context(ca, LOOPBACK, "localhost"),
        wrong_name_context=_server_context(ca, "mail.elsewhere.test"),
    )


# ── a mailbox that records how each message reached it ───────────────────────────────────────


@dataclass(frozen=True)
class Seen:
    tls_version: str | None
    """The TLS version of the connection the message came over (None: plain text)."""
    via_starttls: bool
    """True when the connection was upgraded by STARTTLS, False for TLS from the first byte."""


class TlsMailbox(Mailbox):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        transport = server.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        with self.lock:
            self.seen.append(Seen(ssl_object.version() if ssl_object else None, session.ssl is not None))
        return await super().handle_DATA(server, session, envelope)


@dataclass
class TlsServer:
    server: SmtpServer

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def mailbox(self) -> TlsMailbox:
        assert isinstance(self.server.mailbox, TlsMailbox)
        return self.server.mailbox


@contextmanager
def serve(**options: Any) -> Iterator[TlsServer]:
    with smtp_server(TlsMailbox(), **options) as server:
        yield TlsServer(server)


@pytest.fixture
def starttls_server(pki: Pki) -> Iterator[TlsServer]:
    """Offers STARTTLS and refuses mail until the client has used it (RFC 3207)."""
    with serve(tls_context=pki.server_context, require_starttls=True) as server:
        yield server


@pytest.fixture
def starttls_auth_server(pki: Pki) -> Iterator[TlsServer]:
    """STARTTLS required, and AUTH required; aiosmtpd refuses AUTH before TLS (its default
    ``auth_require_tls=True``), so a successful login proves the password went over TLS."""
    with serve(
        tls_context=pki.server_context,
        require_starttls=True,
        authenticator=check_password,
        auth_required=True,
        auth_require_tls=True,
    ) as server:
        yield server


@pytest.fixture
def smtps_server(pki: Pki) -> Iterator[TlsServer]:
    """Implicit TLS (SMTPS, as on port 465): TLS from the first byte."""
    with serve(ssl_context=pki.server_context) as server:
        yield server


@pytest.fixture
def smtps_auth_server(pki: Pki) -> Iterator[TlsServer]:
    with serve(
        ssl_context=pki.server_context, authenticator=check_password, auth_required=True, auth_require_tls=False
    ) as server:
        yield server


async def notify_via_activity(url: str, notification: Notification) -> Delivery:
    """What the worker does: the ``notify`` activity with ``ESCALATE_SMTP_URL`` set to ``url``."""
    settings = make_settings(smtp_url=url, smtp_from=SENDER, smtp_timeout_seconds=5)
    activities = EscalationActivities(settings)
    return await ActivityEnvironment().run(activities.notify, notification)


def assert_delivered_over_tls(server: TlsServer, *, starttls: bool) -> None:
    [received] = server.mailbox.received
    [seen] = server.mailbox.seen
    assert received.rcpt_tos == ["erin@example.com"]
    assert received.mail_from == SENDER
    assert seen.tls_version is not None and seen.tls_version.startswith("TLSv1."), (
        f"the message came over plain text: {seen}"
    )
    assert seen.tls_version in ("TLSv1.2", "TLSv1.3"), f"an outdated TLS version: {seen.tls_version}"
    assert seen.via_starttls is starttls
    text, html = parts(received.message)
    assert "escalate ack db-disk-full-1 --by erin" in text
    assert "escalate ack db-disk-full-1 --by erin" in html


# ── the URL ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", None), ("?starttls=1", True), ("?starttls=true", True), ("?starttls=0", False), ("?starttls=no", False)],
)
def test_starttls_in_the_url(query: str, expected: bool | None) -> None:
    """Unset: upgrade when the server offers STARTTLS (aiosmtplib's default); 1: required; 0: never."""
    smtp = SmtpSettings(f"smtp://{LOOPBACK}:2525{query}", SENDER, 5)
    assert smtp.start_tls is expected
    assert smtp.use_tls is False
    assert smtp.tls_context is None


def test_cafile_in_the_url_makes_a_verifying_tls_context(pki: Pki) -> None:
    smtp = SmtpSettings(f"smtps://{LOOPBACK}?{pki.query}", SENDER, 5)
    assert (smtp.use_tls, smtp.port) == (True, 465)
    assert smtp.tls_context is not None
    assert smtp.tls_context.verify_mode == ssl.CERT_REQUIRED
    assert smtp.tls_context.check_hostname is True


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_an_unusable_cafile_fails_when_the_worker_starts_naming_it(tmp_path: Path, content: str | None) -> None:
    cafile = tmp_path / "ca.pem"
    if content is not None:
        cafile.write_text(content)

    with pytest.raises(ValueError) as caught:
        EscalationActivities(make_settings(smtp_url=f"smtps://{CREDENTIALS}@{LOOPBACK}?cafile={cafile}"))

    assert str(cafile) in str(caught.value), f"the error does not name the file: {caught.value}"
    assert quote(PASSWORD, safe="") not in str(caught.value) and PASSWORD not in str(caught.value)


def test_smtps_with_starttls_is_refused_when_the_worker_starts() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SmtpSettings(f"smtps://{LOOPBACK}?starttls=1", SENDER, 5)


# ── 1. STARTTLS ──────────────────────────────────────────────────────────────────────────────


async def test_starttls_delivers_over_tls(starttls_server: TlsServer, pki: Pki) -> None:
    url = f"smtp://{LOOPBACK}:{starttls_server.port}?starttls=1&{pki.query}"
    notification = email_note("page")

    delivery = await email_channel(url).send(notification, render(notification))

    assert (delivery.channel, delivery.outcome) == ("email", "delivered")
    assert_delivered_over_tls(starttls_server, starttls=True)


async def test_starttls_with_auth_logs_in_over_tls(starttls_auth_server: TlsServer, pki: Pki) -> None:
    url = f"smtp://{CREDENTIALS}@{LOOPBACK}:{starttls_auth_server.port}?starttls=1&{pki.query}"
    notification = email_note("page")

    delivery = await notify_via_activity(url, notification)

    assert delivery.outcome == "delivered"
    assert_delivered_over_tls(starttls_auth_server, starttls=True)
    [received] = starttls_auth_server.mailbox.received
    assert received.authenticated is True
    assert received.login == USER.encode()


# ── 2. SMTPS (implicit TLS) ──────────────────────────────────────────────────────────────────


async def test_smtps_delivers_over_implicit_tls(smtps_server: TlsServer, pki: Pki) -> None:
    url = f"smtps://{LOOPBACK}:{smtps_server.port}?{pki.query}"
    notification = email_note("page")

    delivery = await notify_via_activity(url, notification)

    assert (delivery.channel, delivery.outcome) == ("email", "delivered")
    assert delivery.detail == f"via {LOOPBACK}:{smtps_server.port}"
    assert_delivered_over_tls(smtps_server, starttls=False)


# aiosmtpd counts only STARTTLS as TLS for ``auth_require_tls``; over SMTPS the whole session is
# TLS already, so the warning it gives for ``auth_require_tls=False`` does not apply here.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_smtps_with_auth(smtps_auth_server: TlsServer, pki: Pki) -> None:
    url = f"smtps://{CREDENTIALS}@{LOOPBACK}:{smtps_auth_server.port}?{pki.query}"
    notification = email_note("page")

    delivery = await notify_via_activity(url, notification)

    assert delivery.outcome == "delivered"
    assert_delivered_over_tls(smtps_auth_server, starttls=False)
    [received] = smtps_auth_server.mailbox.received
    assert (received.authenticated, received.login) == (True, USER.encode())


# ── 3. a certificate the client does not trust ───────────────────────────────────────────────

UNTRUSTED = {
    # no cafile: the test CA is not among the system's trusted CAs
    "starttls": (dict(require_starttls=True), "smtp", "?starttls=1", "unable to get local issuer certificate"),
    "smtps": ({}, "smtps", "", "unable to get local issuer certificate"),
    # cafile given, but the certificate is for another host name
    "wrong-name": (dict(require_starttls=True), "smtp", "?starttls=1&{cafile}", "IP address mismatch"),
}


@contextmanager
def untrusted_server(pki: Pki, case: str) -> Iterator[tuple[TlsServer, str, str]]:
    """The server of one case, the URL the client uses for it, and why its certificate fails."""
    options, scheme, query, why = UNTRUSTED[case]
    context = pki.wrong_name_context if case == "wrong-name" else pki.server_context
    tls = {"ssl_context": context} if scheme == "smtps" else {"tls_context": context}
    with serve(**tls, **options) as server:
        yield server, f"{scheme}://{LOOPBACK}:{server.port}" + query.format(cafile=pki.query), why


@pytest.mark.parametrize("case", list(UNTRUSTED))
async def test_untrusted_certificate_fails_naming_certificate_verification(pki: Pki, case: str) -> None:
    with untrusted_server(pki, case) as (server, url, why):
        with pytest.raises(ApplicationError) as caught:
            await notify_via_activity(url, email_note("page"))
        assert server.mailbox.received == [], "nothing may be sent to a server whose certificate failed"

    message = caught.value.message
    assert "certificate verify failed" in message, f"the error does not say the certificate failed: {message!r}"
    assert why in message, f"the error does not say why the certificate failed: {message!r}"


@pytest.mark.parametrize("case", list(UNTRUSTED))
async def test_untrusted_certificate_is_a_permanent_failure(pki: Pki, case: str) -> None:
    with untrusted_server(pki, case) as (server, url, _):
        with pytest.raises(ApplicationError) as caught:
            await notify_via_activity(url, email_note("page"))

    error = caught.value
    assert error.type == "PermanentDeliveryFailure", f"retried as {error.type}: {error.message}"
    assert error.non_retryable
    assert "certificate verify failed" in error.message
    assert f"{LOOPBACK}" in error.message and str(server.port) in error.message, (
        f"the error should name the server: {error.message!r}"
    )


# ── 4. the server and the URL disagree about STARTTLS ────────────────────────────────────────


async def test_server_requiring_starttls_refuses_a_url_that_turns_it_off(starttls_server: TlsServer, pki: Pki) -> None:
    url = f"smtp://{LOOPBACK}:{starttls_server.port}?starttls=0&{pki.query}"

    with pytest.raises(ApplicationError) as caught:
        await notify_via_activity(url, email_note("page"))

    error = caught.value
    assert "530" in error.message and "STARTTLS" in error.message, f"the error does not name the problem: {error.message!r}"
    assert error.type == "PermanentDeliveryFailure", "the server will keep refusing: no point retrying"
    assert error.non_retryable
    assert starttls_server.mailbox.received == []


async def test_url_without_starttls_upgrades_when_the_server_offers_it(starttls_server: TlsServer, pki: Pki) -> None:
    """``?starttls`` unset: the client takes STARTTLS when offered (and verifies the certificate)."""
    url = f"smtp://{LOOPBACK}:{starttls_server.port}?{pki.query}"
    notification = email_note("page")

    delivery = await email_channel(url).send(notification, render(notification))

    assert delivery.outcome == "delivered"
    assert_delivered_over_tls(starttls_server, starttls=True)


async def test_url_without_starttls_or_cafile_fails_on_the_servers_certificate(starttls_server: TlsServer) -> None:
    """The plain ``smtp://host:port`` a user might write for a relay that requires STARTTLS with a
    private CA: the client upgrades on its own and the error says the certificate was not trusted."""
    url = f"smtp://{LOOPBACK}:{starttls_server.port}"

    with pytest.raises(ApplicationError) as caught:
        await notify_via_activity(url, email_note("page"))

    assert "certificate verify failed" in caught.value.message
    assert starttls_server.mailbox.received == []


async def test_url_demanding_starttls_of_a_server_without_it_names_starttls(pki: Pki) -> None:
    with smtp_server(TlsMailbox()) as plain:
        url = f"smtp://{LOOPBACK}:{plain.port}?starttls=1&{pki.query}"
        with pytest.raises(ApplicationError) as caught:
            await notify_via_activity(url, email_note("page"))
        assert plain.mailbox.received == [], "nothing may go out in plain text when the URL demands TLS"

    assert "STARTTLS" in caught.value.message, f"the error does not name the problem: {caught.value.message!r}"


async def test_smtps_url_to_a_starttls_server_fails_fast_and_clearly(starttls_server: TlsServer, pki: Pki) -> None:
    """``smtps://`` pointed at a STARTTLS port (587 vs 465 mix-up): a TLS handshake against a plain
    text greeting fails; it must not hang until the timeout and must say it is about TLS/SSL."""
    url = f"smtps://{LOOPBACK}:{starttls_server.port}?{pki.query}"

    with pytest.raises(ApplicationError) as caught:
        await notify_via_activity(url, email_note("page"))

    message = caught.value.message
    assert str(starttls_server.port) in message, f"the error should name the server: {message!r}"
    assert "SSL" in message or "TLS" in message or "timed out" in message.lower(), message
    assert starttls_server.mailbox.received == []
