"""TOTP secrets and codes with ``pyotp`` (RFC 6238: HMAC-SHA1, 6 digits, 30 s), for the
rules of :mod:`domain.totp`."""

from __future__ import annotations

from collections.abc import Callable

import pyotp

from domain.totp import DIGITS, STEP_S


def new_secret() -> str:
    """A fresh 160-bit secret, base32 (RFC 4226 recommends 160 bits)."""
    return pyotp.random_base32(32)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)


def code_at(secret: str, step: int) -> str:
    """The code of ``step`` (what an authenticator app shows during it)."""
    return _totp(secret).at(step * STEP_S)


def codes_of(secret: str) -> Callable[[int], str]:
    """The secret's code of any step, as :func:`domain.totp.matching_step` asks for it."""
    generator = _totp(secret)
    return lambda step: generator.at(step * STEP_S)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


__all__ = ["code_at", "codes_of", "new_secret", "provisioning_uri"]
