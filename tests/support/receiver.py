"""A real HTTP receiver on 127.0.0.1 for webhooks (and the Slack, Teams and ntfy fakes built on
it), and what a receiver is told to check of an escalate webhook.

A receiver is a stdlib ``ThreadingHTTPServer`` in a thread that answers each path from a script
(503, 503, 200…; a Retry-After; no answer at all) and keeps every request it got, raw body and
headers included. The ``receiver`` fixture (tests/conftest.py) gives a test one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.net import LOOPBACK

SECRET = "whsec_9f2c61d0c8a34b7e"
TOLERANCE_SECONDS = 300


# ── what the README tells a receiver to do ───────────────────────────────────────────────────


def verify_escalate_signature(
    secret: str, header: str, raw_body: bytes, *, tolerance: int = 300, now: float | None = None
) -> bool:
    """Check ``Escalate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``.

    Verify the raw bytes as received (before any JSON parsing), compare in constant time, and
    refuse a signature older or newer than ``tolerance`` seconds (a replayed request).
    """
    try:
        fields = dict(part.strip().split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        received = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


# ── a real HTTP receiver ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Reply:
    """One answer of a receiver. ``delay`` longer than the sender's timeout: no answer in time."""

    status: int = 200
    body: bytes | str | dict[str, Any] = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode(), "application/json; charset=utf-8"
        raw = self.body.encode() if isinstance(self.body, str) else self.body
        return raw, "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Message
    """Case-insensitive, as a receiver's framework would give them."""
    body: bytes
    """The raw body, byte for byte: what the signature covers."""
    at: float
    """Wall-clock time of arrival (``time.time()``)."""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def kind(self) -> str | None:
        """The message kind of an escalate webhook (page, unreachable, resolved, …)."""
        try:
            kind = self.json().get("kind")
        except ValueError:
            return None
        return kind if isinstance(kind, str) else None


Script = Reply | Callable[[Received], Reply]


class Receiver:
    """Each path answers from its script: the replies in order, the last one repeating; a reply
    may also be a function of the request. Every request is kept, answered or not."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.scripts: dict[str, list[Script]] = {}
        self.served: dict[str, int] = {}
        self._received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received("POST", self.path, self.headers, self.rfile.read(length), time.time())
                reply = receiver._take(request)
                if reply.delay and receiver.closing.wait(reply.delay):
                    return
                raw, content_type = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(raw)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the sender gave up waiting (a timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, name="receiver", daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def route(self, path: str, *script: Script) -> str:
        """Answer ``path`` with ``script`` (200 "ok" if empty); returns the full URL."""
        with self.lock:
            self.scripts[path] = list(script) or [Reply()]
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def _take(self, request: Received) -> Reply:
        with self.lock:
            self._received.append(request)
            script = self.scripts.get(request.path, [Reply(404, "no such hook")])
            index = self.served.get(request.path, 0)
            self.served[request.path] = index + 1
            step = script[min(index, len(script) - 1)]
        return step(request) if callable(step) else step

    def requests(self, path: str | None = None, *, kind: str | None = None) -> list[Received]:
        with self.lock:
            found = list(self._received)
        return [r for r in found if (path is None or r.path == path) and (kind is None or r.kind == kind)]

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()  # wakes any reply that is still "not answering"
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# ── what receivers got ───────────────────────────────────────────────────────────────────────


def at_wall(received: Received) -> datetime:
    """When the request arrived, as a UTC time."""
    return datetime.fromtimestamp(received.at, UTC)


def notices(receiver: Receiver, key: str) -> dict[tuple[str, str, int], list[Received]]:
    """The requests about incident ``key``, by (person, message kind, tier)."""
    found: dict[tuple[str, str, int], list[Received]] = {}
    for request in receiver.requests():
        body = request.json()
        if body["incident"]["key"] == key:
            found.setdefault((body["person"], body["kind"], body["incident"]["tier"]), []).append(request)
    return found


def got(receiver: Receiver, key: str) -> list[tuple[str, str, int]]:
    """What reached the receiver about incident ``key``: (person, message kind, tier), in order."""
    found = []
    for request in receiver.requests():
        body = request.json()
        if body["incident"]["key"] == key:
            found.append((body["person"], body["kind"], body["incident"]["tier"]))
    return found


def check_same_key(requests: list[Received], what: str) -> str:
    """Every copy of one notification carries the same Idempotency-Key (also in its body) and a
    valid signature; the key."""
    keys = {r.headers["Idempotency-Key"] for r in requests}
    assert len(keys) == 1, f"{what}: duplicates carry different idempotency keys: {keys}"
    [key] = keys
    for request in requests:
        assert request.json()["idempotency_key"] == key, f"{what}: the body's idempotency key differs from the header"
        assert verify_escalate_signature(SECRET, request.headers["Escalate-Signature"], request.body), (
            f"{what}: bad signature"
        )
    return key
