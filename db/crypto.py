"""Data at rest that must stay secret: card numbers (PANs) and partner API key secrets.

One key, ``KEEPER_DATA_KEY`` (32 bytes, URL-safe base64, as ``Fernet.generate_key()`` prints),
seals values with Fernet (AES-128-CBC + HMAC-SHA256, authenticated: a changed byte is refused,
never decrypted into garbage). A second key is *derived* from it with HKDF for
:meth:`SecretBox.pan_fingerprint`, so one secret needs managing while encryption and
fingerprinting never share a key.

Why a keyed fingerprint rather than a plain hash: PANs have little entropy (a BIN, a check
digit, a few unknown digits), so an unkeyed SHA-256 of a PAN could be reversed by brute force
from a copy of the database. The fingerprint is deterministic, so ``cards.pan_fingerprint``
can be UNIQUE. Rotating the data key therefore means re-sealing and re-fingerprinting.

Card-number helpers (:func:`normalise_pan`, :func:`mask_pan`, :func:`luhn_valid`) live here
too so every edge validates PANs one way. No message raised from this module ever contains a
PAN, a key or a plaintext: they end up in logs and HTTP responses.
"""

# Error names describe what was refused ("card number error"), like domain/errors.py.
# ruff: noqa: N818

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import ClassVar, Final, Literal

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Development-only data key (32 bytes, URL-safe base64). Anything sealed with it is public.
DEV_DATA_KEY: Final = base64.urlsafe_b64encode(b"keeper-dev-data-key-NOT-A-SECRET").decode()

_FINGERPRINT_INFO: Final = b"keeper/pan-fingerprint/v1"
PAN_MIN_DIGITS: Final = 13
PAN_MAX_DIGITS: Final = 19
#: Characters people type inside a card number; they are dropped, anything else is refused.
_PAN_SEPARATORS: Final = frozenset(" -")


class DataKeyError(ValueError):
    """The data key is missing, malformed, or the development key outside development."""


class SealError(ValueError):
    """A sealed value was altered, truncated, or sealed with another key."""


class CardNumberError(ValueError):
    """A card number was refused. ``code`` is stable and machine-readable; the message says
    what is wrong and never repeats the number."""

    code: ClassVar[str] = "invalid_card_number"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CardNumberCharacters(CardNumberError):
    code = "card_number_characters"


class CardNumberLength(CardNumberError):
    code = "card_number_length"


class CardNumberChecksum(CardNumberError):
    code = "card_number_checksum"


class DataKeySettings(BaseSettings):
    """The environment this key is read from (``KEEPER_ENV``, ``KEEPER_DATA_KEY``).

    The key is validated by :meth:`SecretBox.from_settings`, not by a pydantic validator:
    pydantic echoes the offending input in its error text, and that input is the key.
    """

    model_config = SettingsConfigDict(env_prefix="KEEPER_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    data_key: SecretStr = SecretStr(DEV_DATA_KEY)


def _decode_key(encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded.strip().encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DataKeyError("KEEPER_DATA_KEY is not URL-safe base64") from None
    if len(raw) != 32:
        raise DataKeyError(f"KEEPER_DATA_KEY must decode to 32 bytes, not {len(raw)}")
    return raw


class SecretBox:
    """Seals and opens short secrets, and fingerprints PANs, with one data key."""

    def __init__(self, key: str) -> None:
        raw = _decode_key(key)
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))
        self._fingerprint_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_FINGERPRINT_INFO
        ).derive(raw)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @classmethod
    def from_settings(cls, settings: DataKeySettings | None = None) -> SecretBox:
        """The box of this process; refuses the development key unless ``KEEPER_ENV`` is
        ``development``, so a forgotten variable can never seal real cards with a public key.
        """
        settings = settings or DataKeySettings()
        key = settings.data_key.get_secret_value()
        if not key.strip():
            raise DataKeyError("KEEPER_DATA_KEY is empty")
        if key.strip() == DEV_DATA_KEY and settings.env != "development":
            raise DataKeyError(
                f"KEEPER_DATA_KEY must be set when KEEPER_ENV={settings.env}: the built-in "
                "key is for development only (generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            )
        return cls(key)

    def seal(self, plaintext: str) -> str:
        """Encrypt and authenticate ``plaintext``; the result is URL-safe ASCII."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, ciphertext: str) -> str:
        """The plaintext sealed in ``ciphertext``; :class:`SealError` if it was tampered with
        or sealed under another key."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SealError("sealed value is corrupt or was sealed with another key") from None

    def pan_fingerprint(self, pan: str) -> str:
        """Keyed HMAC-SHA256 of the normalised PAN, as 64 hex digits (equal cards, equal
        fingerprints; unforgeable and irreversible without the data key)."""
        digits = normalise_pan(pan)
        return hmac.new(self._fingerprint_key, digits.encode("ascii"), hashlib.sha256).hexdigest()


def luhn_valid(pan: str) -> bool:
    """The Luhn (mod 10) check every payment card number satisfies; ``False`` for non-digits."""
    if not pan or not pan.isascii() or not pan.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(pan)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def normalise_pan(text: str) -> str:
    """The card number in ``text`` as digits only: spaces and dashes dropped, 13-19 digits,
    Luhn-valid. Anything else raises a :class:`CardNumberError` subclass."""
    if not isinstance(text, str):
        raise CardNumberCharacters("card number must be text")
    kept = [char for char in text.strip() if char not in _PAN_SEPARATORS]
    if not all("0" <= char <= "9" for char in kept):
        raise CardNumberCharacters("card number may hold only digits, spaces and dashes")
    if not PAN_MIN_DIGITS <= len(kept) <= PAN_MAX_DIGITS:
        raise CardNumberLength(
            f"card number must have {PAN_MIN_DIGITS}-{PAN_MAX_DIGITS} digits, not {len(kept)}"
        )
    digits = "".join(kept)
    if not luhn_valid(digits):
        raise CardNumberChecksum("card number fails the Luhn check; is a digit mistyped?")
    return digits


def mask_pan(pan: str) -> str:
    """First six and last four digits, the middle starred: the only form shown or logged."""
    if not pan.isascii() or not pan.isdigit():
        raise CardNumberCharacters("only a digits-only card number can be masked")
    if not PAN_MIN_DIGITS <= len(pan) <= PAN_MAX_DIGITS:
        raise CardNumberLength(
            f"card number must have {PAN_MIN_DIGITS}-{PAN_MAX_DIGITS} digits, not {len(pan)}"
        )
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


__all__ = [
    "DEV_DATA_KEY",
    "CardNumberCharacters",
    "CardNumberChecksum",
    "CardNumberError",
    "CardNumberLength",
    "DataKeyError",
    "DataKeySettings",
    "SealError",
    "SecretBox",
    "luhn_valid",
    "mask_pan",
    "normalise_pan",
]
