"""Connecting to Temporal: envconfig for the address and credentials, pydantic for payloads."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from escalate.settings import Settings, get_settings

DEFAULT_ADDRESS = "localhost:7233"


def connect_config(address: str | None = None) -> dict[str, Any]:
    """``Client.connect`` arguments from the Temporal profile and ``TEMPORAL_*`` variables."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return config


def data_converter(settings: Settings | None = None) -> DataConverter:
    """Pydantic payloads, encrypted when ``ESCALATE_ENCRYPTION_KEY`` is set."""
    from escalate.codec import codec_from

    settings = settings or get_settings()
    codec = codec_from(
        settings.encryption_key.get_secret_value() if settings.encryption_key else None,
        settings.encryption_key_id,
        settings.encryption_old_keys.get_secret_value() if settings.encryption_old_keys else None,
    )
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec) if codec else pydantic_data_converter


async def connect(address: str | None = None, runtime: Runtime | None = None, settings: Settings | None = None) -> Client:
    """A client of the Temporal service (``address``, or the configured one), with our payloads."""
    return await Client.connect(**connect_config(address), data_converter=data_converter(settings), runtime=runtime)


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics (the SDK's and ours) on ``bind_address``."""
    from workflows.metrics import TIME_TO_ACKNOWLEDGE, TIME_TO_ACKNOWLEDGE_BUCKETS

    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=bind_address,
                    histogram_bucket_overrides={TIME_TO_ACKNOWLEDGE: [float(b) for b in TIME_TO_ACKNOWLEDGE_BUCKETS]},
                )
            )
        )
    except Exception as err:  # the core reports a port it cannot bind as a plain exception
        raise OSError(
            f"cannot serve metrics on {bind_address} ({err}): is the port in use? Set ESCALATE_METRICS_ADDR "
            "(or escalate dev --metrics-port)"
        ) from None


def unreachable_message(err: BaseException, address: str | None = None) -> str:
    """What to tell a user whose Temporal connection failed (the core's error is a Rust dump)."""
    target = connect_config(address)["target_host"]
    first_line = (str(err).splitlines() or [""])[0][:160]
    return (
        f"cannot reach Temporal at {target}: is `escalate dev` (or your Temporal server) running? "
        f"Set TEMPORAL_ADDRESS to point elsewhere. ({first_line})"
    )


class SearchAttributesMissing(RuntimeError):
    pass


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the incident search attributes that the namespace lacks; the names added.

    Incidents publish them from the first workflow task, and a namespace without them would
    fail every such task: so workers call this before they start."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    from workflows import search

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server: add them all
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={key.name: key.indexed_value_type.value for key in search.ALL},  # type: ignore[misc]
                )
            )
            return [key.name for key in search.ALL]
        raise SearchAttributesMissing(
            f"cannot list the search attributes of namespace {client.namespace!r} ({err.message}): "
            f"register them once with `escalate setup` as an admin, or on Temporal Cloud with "
            f"`tcld namespace search-attributes add` ({_wanted(search.ALL)})"
        ) from None
    known = {**listed.system_attributes, **listed.custom_attributes}
    wrong = [
        f"{key.name} is {IndexedValueType.Name(known[key.name])}, not {key.indexed_value_type.name}"
        for key in search.ALL
        if key.name in known and known[key.name] != key.indexed_value_type.value
    ]
    if wrong:
        raise SearchAttributesMissing(
            f"namespace {client.namespace!r} already has search attributes of the same names but other types: "
            + "; ".join(wrong)
        )
    missing = {key.name: key.indexed_value_type.value for key in search.ALL if key.name not in known}
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)  # type: ignore[arg-type]
        )
    except RPCError as err:
        raise SearchAttributesMissing(
            f"namespace {client.namespace!r} lacks the search attributes {', '.join(missing)} and this client "
            f"may not add them ({err.message}): register them once with `escalate setup` as an admin, or on "
            f"Temporal Cloud with `tcld namespace search-attributes add` ({_wanted(search.ALL)})"
        ) from None
    return sorted(missing)


def _wanted(keys: tuple[object, ...]) -> str:
    return ", ".join(f"{key.name}={key.indexed_value_type.name.title()}" for key in keys)  # type: ignore[attr-defined]
