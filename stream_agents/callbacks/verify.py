"""Verify a Keeper callback, as a partner does: standard library only, copy it freely.

Every callback carries::

    Keeper-Delivery-Id: 5f0c...        the id to dedupe on (same for every retry)
    Keeper-Timestamp:   1767225600     unix seconds when this attempt was signed
    Keeper-Signature:   v1=<64 hex>[,v1=<64 hex>...]

Each ``v1`` is HMAC-SHA256(key = a callback secret's UTF-8 bytes, message =
``<timestamp> "." <raw body bytes>``), in lowercase hex. While the partner rotates its
callback secrets Keeper signs with every active one, so the header may hold several ``v1``
entries; a callback is genuine when *any* of them matches *any* secret the partner holds.
Entries of other schemes (``v2=...``) are ignored, so new schemes can be added without
breaking verifiers.

Always verify the raw body bytes, before parsing JSON, and refuse timestamps outside the
tolerance window: that stops an old captured callback from being replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

SCHEME = "v1"
TOLERANCE_S = 300


class CallbackVerificationError(ValueError):
    """A callback that must not be trusted; ``code`` says why (stable, machine-readable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def compute_signature(secret: bytes | str, timestamp: int | str, body: bytes) -> str:
    """The ``v1`` signature: lowercase hex HMAC-SHA256 over ``b"<timestamp>." + body``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def parse_signatures(header: str) -> list[str]:
    """The ``v1`` signatures of a ``Keeper-Signature`` header (other schemes dropped)."""
    found = []
    for part in header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SCHEME and value:
            found.append(value.strip())
    return found


def verify_callback(
    secrets: Iterable[bytes | str],
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Return if the callback is genuine and fresh; raise :class:`CallbackVerificationError`.

    ``secrets``: every callback secret the partner currently accepts (old and new while
    rotating). ``timestamp`` and ``signature_header``: the ``Keeper-Timestamp`` and
    ``Keeper-Signature`` header values. Codes: ``missing_header``, ``malformed_timestamp``,
    ``stale_timestamp``, ``no_signature``, ``bad_signature``.
    """
    if not timestamp or not signature_header:
        raise CallbackVerificationError(
            "missing_header", "Keeper-Timestamp and Keeper-Signature are required"
        )
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise CallbackVerificationError("malformed_timestamp", "timestamp is not unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        raise CallbackVerificationError(
            "stale_timestamp", f"timestamp is more than {tolerance_s}s away from now"
        )
    offered = parse_signatures(signature_header)
    if not offered:
        raise CallbackVerificationError("no_signature", f"no {SCHEME} signature in the header")
    matched = False
    for secret in secrets:
        expected = compute_signature(secret, timestamp, body)
        for candidate in offered:
            # Compare every pair (no early exit) in constant time per comparison.
            matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise CallbackVerificationError("bad_signature", "no signature matches a known secret")
