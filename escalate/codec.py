"""Optional payload encryption: AES-256-GCM over every payload escalate writes to Temporal
(incident details, notes, policy snapshots, timelines), with the key from the environment.

Temporal then stores only ciphertext; the worker, the CLI and the API decrypt with the same key,
and the Temporal UI can decode through the API's codec endpoint (``/codec``) for users who hold
the API token. Keys rotate: payloads name the key that encrypted them, and old keys stay
readable through ``ESCALATE_ENCRYPTION_OLD_KEYS``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


class CodecKeyError(ValueError):
    pass


def parse_key(text: str, name: str = "ESCALATE_ENCRYPTION_KEY") -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise CodecKeyError(f"{name} is not base64: make one with openssl rand -base64 32") from None
    if len(key) != 32:
        raise CodecKeyError(f"{name} is {len(key)} bytes; AES-256 needs 32: make one with openssl rand -base64 32")
    return key


class EncryptionCodec(PayloadCodec):
    def __init__(self, key_id: str, key: bytes, old_keys: dict[str, bytes] | None = None) -> None:
        self.key_id = key_id
        self.encryptor = AESGCM(key)
        self.decryptors = {key_id: self.encryptor, **{kid: AESGCM(k) for kid, k in (old_keys or {}).items()}}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(
                metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()},
                data=self._encrypt(payload.SerializeToString()),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_now(payloads)

    def decode_now(self, payloads: Sequence[Payload]) -> list[Payload]:
        """``decode`` without the event loop (decryption does no I/O)."""
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding", b"") != ENCODING:
                decoded.append(payload)  # written before encryption was turned on
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            decryptor = self.decryptors.get(key_id)
            if decryptor is None:
                raise CodecKeyError(
                    f"a payload was encrypted with key {key_id!r}, which this process does not have: "
                    "add it to ESCALATE_ENCRYPTION_OLD_KEYS as id:base64"
                )
            try:
                plain = decryptor.decrypt(payload.data[:12], payload.data[12:], None)
            except InvalidTag:
                raise CodecKeyError(
                    f"a payload encrypted with key {key_id!r} does not decrypt with this process's key of that id: "
                    "the key is not the one it was written with (or the payload was altered)"
                ) from None
            decoded.append(Payload.FromString(plain))
        return decoded

    def _encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self.encryptor.encrypt(nonce, data, None)


def codec_from(key: str | None, key_id: str, old_keys: str | None) -> EncryptionCodec | None:
    """The codec the settings ask for, or None when encryption is off."""
    if not key:
        return None
    olds: dict[str, bytes] = {}
    for entry in (old_keys or "").split(","):
        if entry.strip():
            kid, _, text = entry.strip().partition(":")
            if not text:
                raise CodecKeyError("ESCALATE_ENCRYPTION_OLD_KEYS: write id:base64-key[,id:base64-key…]")
            if kid == key_id:
                raise CodecKeyError(
                    f"ESCALATE_ENCRYPTION_OLD_KEYS has a key with id {kid!r}, the id of the current key: "
                    "give the new key a new ESCALATE_ENCRYPTION_KEY_ID"
                )
            olds[kid] = parse_key(text, f"ESCALATE_ENCRYPTION_OLD_KEYS ({kid})")
    return EncryptionCodec(key_id, parse_key(key), olds)
