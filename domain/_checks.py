"""Small field checks shared by commands and value objects (private to the package).

They raise :class:`~domain.errors.InvalidCommand` so that a malformed value is refused where
it enters the core, and no half-valid object can exist further in.
"""

from __future__ import annotations

import re

from domain.errors import InvalidCommand, InvalidPayerCard

#: Same shape as the wire schema: first six and last four digits, the middle starred.
#: Refusing anything else keeps a full card number (PCI data) out of the core entirely.
_MASKED_PAN = re.compile(r"\d{6}\*+\d{4}")

#: Partner ids are slugs (same rule as the wire schema), so they are safe in account names.
_PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def text(name: str, value: object, max_len: int) -> str:
    """A non-empty string of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value:
        raise InvalidCommand(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise InvalidCommand(f"{name} is longer than {max_len} characters")
    return value


def short_text(name: str, value: object, max_len: int) -> str:
    """A possibly empty string of at most ``max_len`` characters (free-text reasons)."""
    if not isinstance(value, str):
        raise InvalidCommand(f"{name} must be a string, got {value!r}")
    if len(value) > max_len:
        raise InvalidCommand(f"{name} is longer than {max_len} characters")
    return value


def partner_id(value: object) -> str:
    if not isinstance(value, str) or _PARTNER_ID.fullmatch(value) is None:
        raise InvalidCommand(f"partner_id must be a lowercase slug, got {value!r}")
    return value


def int_in(name: str, value: object, low: int, high: int | None = None) -> int:
    """An ``int`` (never a ``bool``) within ``low..high`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCommand(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise InvalidCommand(f"{name}={value} is outside {low}..{high}")
    return value


def epoch_ms(name: str, value: object) -> int:
    """Milliseconds since the Unix epoch; negative instants are a bug, not history."""
    return int_in(name, value, 0)


def masked_pan(value: object) -> str:
    if not isinstance(value, str) or _MASKED_PAN.fullmatch(value) is None:
        raise InvalidPayerCard("card must be masked as 6 digits, stars, 4 digits")
    return value
