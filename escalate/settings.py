"""The one settings object. Every ``ESCALATE_*`` variable is read here and nowhere else.

Temporal's own connection settings (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, TLS, API key,
profiles) are read by ``temporalio.envconfig`` in ``escalate.temporal``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.durations import Duration

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICIES = REPO_ROOT / "examples" / "policies"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "escalate"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESCALATE_", extra="ignore")

    policy_dir: Path = EXAMPLE_POLICIES
    """Folder of ``*.yaml`` policies and ``directory.yaml``."""
    data_dir: Path = _default_data_dir()
    """Where ``escalate dev`` keeps its SQLite file and logs."""
    smtp_url: str | None = None
    """``smtp://user:pass@host:port`` (``smtps://`` for TLS, ``?starttls=1``); unset: no email channel
    (a person's next channel is used, and the worker log when none of theirs is configured)."""
    smtp_from: str = "escalate@localhost"
    """The sender address of emails."""
    smtp_timeout_seconds: float = 10.0
    """How long connecting to and talking with the SMTP server may take."""
    webhook_secret: SecretStr | None = None
    """Signs webhooks (``Escalate-Signature``); unset: webhooks go out unsigned (with a warning)."""
    webhook_timeout_seconds: float = 10.0
    """How long a webhook, Slack, Teams or ntfy call may take before it counts as failed and is retried."""
    slack_token: SecretStr | None = None
    """A Slack bot token: chat messages go to the person's chat handle by ``chat.postMessage``."""
    slack_webhook_url: str | None = None
    """A Slack incoming webhook: chat messages to handles go to its channel, mentioning them."""
    slack_api_url: str = "https://slack.com/api/"
    """The Slack Web API base URL (``chat.postMessage`` is called under it)."""
    ntfy_token: SecretStr | None = None
    """An ntfy access token, for push topics that need one."""
    template_dir: Path | None = None
    """A folder of message templates that override the built-in ones (same file names)."""
    api_token: SecretStr | None = None
    """The bearer token the HTTP API requires on every route but the links and ``/healthz``, when set."""
    api_url: str = "http://127.0.0.1:8000"
    """Where responders reach the HTTP API: the base of the links that messages carry (one-click
    links, the buttons of Teams cards and ntfy notifications)."""
    link_secret: SecretStr | None = None
    """Signs one-click acknowledge/resolve links; unset: messages carry no links."""
    link_ttl: Duration = timedelta(hours=24)
    """How long a one-click link stays usable."""
    encryption_key: SecretStr | None = None
    """Base64 AES-256 key: when set, every payload escalate writes to Temporal is encrypted."""
    encryption_key_id: str = "key-1"
    """The id stored with every payload encrypted with ``ESCALATE_ENCRYPTION_KEY``; change it with the key when rotating."""
    encryption_old_keys: SecretStr | None = None
    """Keys retired by a rotation, still needed to read older histories: ``id:base64,…``."""
    codec_cors_origins: str = "http://localhost:8080,http://localhost:8233"
    """Origins (the Temporal UI) allowed to call the codec endpoint from a browser."""
    alertmanager_policy: str | None = None
    """The policy for Alertmanager alerts without an ``escalate_policy`` label."""
    alertmanager_priority: str = "P3"
    """The priority for alerts with neither an ``escalate_priority`` nor a known ``severity`` label."""
    metrics_addr: str = "127.0.0.1:9464"
    """Where the worker serves Prometheus metrics (``escalate dev --metrics-port`` sets the port)."""
    task_queue: str = "escalations"
    """The Temporal task queue the workers poll and incidents are started on."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto`` (readable in a terminal, JSON lines otherwise), ``json`` or ``console``."""
    log_level: str = "INFO"
    """The lowest level logged (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
