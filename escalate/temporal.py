"""Connecting to Temporal: envconfig for the address and credentials, pydantic for payloads."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

DEFAULT_ADDRESS = "localhost:7233"


def connect_config(address: str | None = None) -> dict[str, Any]:
    """``Client.connect`` arguments from the Temporal profile and ``TEMPORAL_*`` variables."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return config


async def connect(address: str | None = None) -> Client:
    return await Client.connect(**connect_config(address), data_converter=pydantic_data_converter)


def unreachable_message(err: BaseException, address: str | None = None) -> str:
    """What to tell a user whose Temporal connection failed (the core's error is a Rust dump)."""
    target = connect_config(address)["target_host"]
    first_line = (str(err).splitlines() or [""])[0][:160]
    return (
        f"cannot reach Temporal at {target}: is `escalate dev` (or your Temporal server) running? "
        f"Set TEMPORAL_ADDRESS to point elsewhere. ({first_line})"
    )
