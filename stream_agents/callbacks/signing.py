"""Keeper's side of callback signing: the headers of one delivery attempt.

The scheme is defined (and verified) in :mod:`stream_agents.callbacks.verify`; this module
only assembles headers, one ``v1`` signature per active callback secret of the partner.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Final

from stream_agents.callbacks.verify import SCHEME, compute_signature

USER_AGENT: Final = "Keeper-Callbacks/1"


class NoSigningSecretError(RuntimeError):
    """The partner has no active callback secret: nothing can be signed, so nothing is sent."""


def signature_header(secrets: Sequence[bytes], timestamp: int, body: bytes) -> str:
    """``v1=<hex>[,v1=<hex>...]``, one entry per secret, in the order given."""
    if not secrets:
        raise NoSigningSecretError("no active callback secret")
    return ",".join(f"{SCHEME}={compute_signature(s, timestamp, body)}" for s in secrets)


def callback_headers(
    *,
    delivery_id: uuid.UUID,
    event_type: str,
    attempt: int,
    timestamp: int,
    body: bytes,
    secrets: Sequence[bytes],
) -> dict[str, str]:
    """Every header of one attempt; only the timestamp and signatures change per attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Keeper-Delivery-Id": str(delivery_id),
        "Keeper-Event": event_type,
        "Keeper-Attempt": str(attempt),
        "Keeper-Timestamp": str(timestamp),
        "Keeper-Signature": signature_header(secrets, timestamp, body),
    }
