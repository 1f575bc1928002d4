"""Page cursors a partner cannot forge or share: the repository's cursor, signed.

``GET /v1/orders`` hands out ``next_after`` = ``<position>.<tag>``, where ``<position>`` is
the repository's keyset cursor (:func:`db.repositories.orders.encode_cursor`) and ``<tag>``
an HMAC-SHA256 (128 bits, hex) over the position *and the partner's id*, keyed with the
server's order-id secret under its own context (so a tag is never a valid order uid, nor the
reverse). A hand-made, edited or truncated cursor, or one issued to another partner, fails
the tag and is refused as ``invalid_cursor`` before any query runs. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from ingest_api.errors import ApiError

#: Domain separation from the order uid (domain/ids.py) that shares the secret.
_CONTEXT: Final = b"keeper/page-cursor/v1"
_TAG_HEX: Final = 32  # 128 bits
_SEPARATOR: Final = "."


def _field(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


def _tag(secret: bytes, partner_id: str, position: str) -> str:
    message = b"".join(_field(part) for part in (_CONTEXT, partner_id.encode(), position.encode()))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:_TAG_HEX]


def sign_cursor(secret: bytes, partner_id: str, position: str) -> str:
    """The cursor a partner gets for ``position``: only this partner can use it."""
    return f"{position}{_SEPARATOR}{_tag(secret, partner_id, position)}"


def invalid_cursor() -> ApiError:
    return ApiError(422, "invalid_cursor", "after is not a cursor Keeper issued to you")


def open_cursor(secret: bytes, partner_id: str, cursor: str) -> str:
    """The position inside ``cursor``, or ``422 invalid_cursor`` unless it was issued by
    :func:`sign_cursor` to this partner with this secret."""
    position, separator, tag = cursor.rpartition(_SEPARATOR)
    if not separator or not position.isascii() or not tag.isascii():
        raise invalid_cursor()
    expected = _tag(secret, partner_id, position)
    if not hmac.compare_digest(expected.encode(), tag.encode()):
        raise invalid_cursor()
    return position


__all__ = ["invalid_cursor", "open_cursor", "sign_cursor"]
