"""Temporal's remote codec protocol (``--codec-endpoint`` of the Temporal UI and CLI): the UI sends
encrypted payloads here and shows what comes back, so that authorised users read incidents
that are stored encrypted."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from fastapi import APIRouter
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload

from escalate.temporal import data_converter
from starter.web.bodies import CodecPayload, CodecPayloads
from starter.web.deps import Authorised, SettingsDep
from starter.web.problems import Problem, problems

router = APIRouter(tags=["codec"], dependencies=[Authorised], responses=problems(400, 401, 404, 413, 422))


def _bytes(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def to_payload(payload: CodecPayload) -> Payload:
    return Payload(metadata={name: _bytes(value) for name, value in payload.metadata.items()}, data=_bytes(payload.data))


def from_payload(payload: Payload) -> CodecPayload:
    return CodecPayload(metadata={name: _text(value) for name, value in payload.metadata.items()}, data=_text(payload.data))


@router.post("/codec/{direction}", response_model=CodecPayloads, response_model_exclude_defaults=True)
async def codec(direction: Literal["encode", "decode"], body: CodecPayloads, settings: SettingsDep) -> CodecPayloads:
    """Encode (encrypt) or decode (decrypt) payloads in Temporal's JSON form."""
    codec = data_converter(settings).payload_codec
    if codec is None:
        raise Problem(404, "Encryption is off", "ESCALATE_ENCRYPTION_KEY is not set: payloads are not encrypted")
    try:
        payloads = [to_payload(payload) for payload in body.payloads]
    except binascii.Error as err:  # the pattern lets through no bad base64; kept as a guard
        raise Problem(400, "Malformed payloads", f"a payload is not base64: {err}") from None
    try:
        done = await (codec.encode if direction == "encode" else codec.decode)(payloads)
    except (ValueError, DecodeError) as err:
        raise Problem(422, "Cannot decode", str(err)) from None
    return CodecPayloads(payloads=[from_payload(payload) for payload in done])
