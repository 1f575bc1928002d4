"""Amounts and card numbers as the payer reads them (pure functions, no I/O)."""

from __future__ import annotations

from typing import Final

from domain.money import KNOWN_CURRENCIES
from ingest_api.payform.i18n import Lang

NBSP: Final = "\u00a0"
NNBSP: Final = "\u202f"  # narrow no-break space: Russian thousands separator

#: Signs that read unambiguously in both languages; other currencies show their ISO code.
SYMBOLS: Final = {
    "RUB": "\u20bd",
    "USD": "$",
    "EUR": "\u20ac",
    "KZT": "\u20b8",
    "UAH": "\u20b4",
    "TRY": "\u20ba",
}


def _grouped(whole: int, separator: str) -> str:
    digits = str(whole)
    groups = []
    while digits:
        groups.append(digits[-3:])
        digits = digits[:-3]
    return separator.join(reversed(groups))


def format_amount(amount_minor: int, currency: str, lang: Lang) -> str:
    """``150000, "RUB"`` → ``"1 500,00 ₽"`` (ru) or ``"₽1,500.00"`` (en)."""
    exponent = KNOWN_CURRENCIES.get(currency, 2)
    sign = "-" if amount_minor < 0 else ""
    whole, minor = divmod(abs(amount_minor), 10**exponent)
    symbol = SYMBOLS.get(currency)
    if lang == "ru":
        number = _grouped(whole, NNBSP)
        if exponent:
            number += "," + str(minor).zfill(exponent)
        return f"{sign}{number}{NBSP}{symbol or currency}"
    number = _grouped(whole, ",")
    if exponent:
        number += "." + str(minor).zfill(exponent)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number}{NBSP}{currency}"


def group_card(number: str) -> str:
    """A card number in groups of four: ``"4111 1111 1111 1111"`` (any spacing is redone)."""
    digits = "".join(char for char in number if char.isdigit())
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def short_ref(uid: str) -> str:
    """The first block of an order id, enough for the payer to quote to support."""
    return uid.split("-", 1)[0].upper()
