"""Money as integers of minor units, ISO 4217 currencies, and the one fee rounding rule.

Amounts never touch floats: every amount is an ``int`` of the currency's minor unit
(kopecks, cents ...), and its currency travels beside it. A fee is a rate in basis points
(1 bp = 0.01 %) turned into minor units by :func:`fee_minor`, the only place that rounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from domain.errors import InvalidAmount, InvalidCurrency, InvalidFee, UnknownCurrency

#: Largest amount of a single order, in minor units (10 billion major units). It keeps
#: sums of many orders and ``amount * fee_bp`` far from a signed 64-bit column's limit.
MAX_AMOUNT_MINOR: Final = 10**12

#: 100 % in basis points: a fee can take the whole amount, never more.
MAX_FEE_BP: Final = 10_000

#: ISO 4217 codes Keeper settles, with their minor-unit exponent (2: 1 unit = 100 minor).
#: Only ISO currencies: stablecoins and other tokens have no ISO code and no place here.
KNOWN_CURRENCIES: Final = MappingProxyType(
    {
        "AMD": 2,
        "AZN": 2,
        "BYN": 2,
        "EUR": 2,
        "GEL": 2,
        "KGS": 2,
        "KZT": 2,
        "RUB": 2,
        "TJS": 2,
        "TRY": 2,
        "UAH": 2,
        "USD": 2,
        "UZS": 2,
    }
)

_CODE = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class Currency:
    """A supported currency and the exponent of its minor unit."""

    code: str
    exponent: int

    @classmethod
    def of(cls, code: object) -> Currency:
        """Look a code up, refusing malformed and unsupported ones."""
        valid = validate_currency(code)
        return cls(code=valid, exponent=KNOWN_CURRENCIES[valid])


def validate_currency(code: object) -> str:
    """Return ``code`` if it is a supported ISO 4217 code.

    Malformed codes (``"rub"``, ``"RUBX"``) and unsupported ones (``"XAU"``) fail with
    different errors: the first is a client bug, the second a product question.
    """
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        raise InvalidCurrency(f"currency must be three uppercase letters, got {code!r}")
    if code not in KNOWN_CURRENCIES:
        raise UnknownCurrency(code)
    return code


def validate_amount(amount_minor: object) -> int:
    """Return ``amount_minor`` if it is a positive ``int`` no larger than the cap.

    ``bool`` is refused although it subclasses ``int``: ``True`` is never an amount.
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidAmount(f"amount must be an integer of minor units, got {amount_minor!r}")
    if amount_minor <= 0:
        raise InvalidAmount(f"amount must be positive, got {amount_minor}")
    if amount_minor > MAX_AMOUNT_MINOR:
        raise InvalidAmount(f"amount {amount_minor} exceeds the cap {MAX_AMOUNT_MINOR}")
    return amount_minor


def validate_fee_bp(fee_bp: object) -> int:
    """Return ``fee_bp`` if it is an ``int`` in ``0..MAX_FEE_BP``."""
    if isinstance(fee_bp, bool) or not isinstance(fee_bp, int):
        raise InvalidFee(f"fee must be an integer of basis points, got {fee_bp!r}")
    if not 0 <= fee_bp <= MAX_FEE_BP:
        raise InvalidFee(f"fee must be within 0..{MAX_FEE_BP} bp, got {fee_bp}")
    return fee_bp


def fee_minor(amount_minor: int, fee_bp: int) -> int:
    """The fee on ``amount_minor`` at ``fee_bp``, rounded half up to the minor unit.

    ``(amount_minor * fee_bp + 5000) // 10000``: exact integer arithmetic, and a fee of
    exactly half a minor unit rounds up (1 kopeck at 5000 bp costs 1 kopeck). Half up on
    non-negative numbers is also half away from zero, so no sign question arises. Because
    ``fee_bp <= 10000`` the result never exceeds ``amount_minor``; at 10000 bp it equals it.
    """
    validate_amount(amount_minor)
    validate_fee_bp(fee_bp)
    return (amount_minor * fee_bp + MAX_FEE_BP // 2) // MAX_FEE_BP
