"""Deterministic order ids: the same partner order always gets the same Keeper uid.

``order_uid`` is a keyed HMAC-SHA256 of the partner id and the partner's order id, shaped
as a UUID. Deterministic, so a partner's retried request lands on the same order (and the
same Kafka partition) without a lookup; keyed, so nobody without the secret can predict or
enumerate uids from guessable partner order ids. The fields are length-prefixed, so no
choice of ids can make two different pairs collide by concatenation ("a"+"bc" vs "ab"+"c").
The result is a UUIDv8 (RFC 9562 "custom" layout): version nibble 8, RFC variant bits.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Final

#: Domain separation: a uid can never equal an HMAC computed for another purpose with the
#: same secret. Bump the suffix if the encoding ever changes (and migrate stored uids).
_CONTEXT: Final = b"keeper/order-uid/v1"

#: 128 bits of key, the floor for an HMAC secret that guards against enumeration.
MIN_SECRET_BYTES: Final = 16


def _field(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


def order_uid(secret: bytes, partner_id: str, partner_order_id: str) -> str:
    """The uid of ``partner_id``'s order ``partner_order_id``, as a lowercase UUID string.

    Raises ``ValueError`` for a short secret or empty ids: those are configuration or
    programming errors, not business refusals.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"order uid secret must have at least {MIN_SECRET_BYTES} bytes")
    if not partner_id or not partner_order_id:
        raise ValueError("partner_id and partner_order_id must be non-empty")
    message = b"".join(
        _field(part) for part in (_CONTEXT, partner_id.encode(), partner_order_id.encode())
    )
    digest = bytearray(hmac.new(secret, message, hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant 10xx (RFC 9562)
    return str(uuid.UUID(bytes=bytes(digest)))
