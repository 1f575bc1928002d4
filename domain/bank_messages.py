"""Bank messages: templates as data, and the parse of a notification's text into facts.

A phone that holds a platform card forwards the bank's SMS and push notifications. Each bank
writes them its own way, so the way is data, not code: a :class:`Template` names the bank,
the senders it comes from (an SMS short code, an app package), the kind of movement it
announces (credit, debit, refused transfer) and a pattern with named fields:

- ``amount`` (required): the amount as the bank prints it (``1 500,00``, ``1,500.00``);
- ``currency``: the currency as printed (``₽``, ``р.``, ``RUB``), else the template's own;
- ``tail``: the card's or account's last digits;
- ``balance``: the balance after the movement;
- ``counterparty``: who sent or received it.

The core never runs a regular expression engine itself: it takes a :class:`RegexEngine`, and
the one Keeper uses is linear-time (RE2, :mod:`db.regex_engine`), so no template an admin
types can make the parser run forever. :func:`parse` tries the templates in priority order
and returns the first match, or :data:`ParseStatus.UNPARSED` (the text is kept, never
dropped). Amounts become integer minor units; more decimals than the currency has is an
error (:class:`AmountPrecision`), never a rounding.
"""

# ruff: noqa: RUF001, RUF002, N818 - Cyrillic bank messages and signs on purpose; errors are
# named for what they refuse, as in domain.errors

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Protocol

from domain.errors import DomainError
from domain.money import KNOWN_CURRENCIES, MAX_AMOUNT_MINOR


class MessageKind(StrEnum):
    """What a bank message announces about the card."""

    CREDIT = "credit"
    DEBIT = "debit"
    REFUSED = "refused"


class ParseStatus(StrEnum):
    PARSED = "parsed"
    UNPARSED = "unparsed"


class TemplateError(DomainError):
    """A template that cannot be used: bad pattern, no ``amount`` field, unknown currency."""

    code = "invalid_template"


class AmountFormat(DomainError):
    """A matched amount that is not a number as banks print them."""

    code = "invalid_amount_format"


class AmountPrecision(DomainError):
    """A matched amount with more decimals than its currency has (``1 500,005``)."""

    code = "invalid_amount_precision"


class UnknownBankCurrency(DomainError):
    """A currency sign or code no alias maps to a supported ISO 4217 code."""

    code = "unknown_bank_currency"


#: The fields a pattern may name; ``amount`` is required.
FIELDS: Final = frozenset({"amount", "currency", "tail", "balance", "counterparty"})

#: Longest pattern an admin may save, and longest text the parser reads (a push or SMS is a
#: few hundred characters; the API refuses more before it gets here).
MAX_PATTERN_CHARS: Final = 2000
MAX_TEXT_CHARS: Final = 4000

#: Signs and codes banks print, by ISO 4217 code (compared case-insensitively, without dots).
CURRENCY_ALIASES: Final = MappingProxyType(
    {
        "₽": "RUB",
        "р": "RUB",
        "руб": "RUB",
        "rub": "RUB",
        "rur": "RUB",
        "$": "USD",
        "usd": "USD",
        "€": "EUR",
        "eur": "EUR",
        "₸": "KZT",
        "тг": "KZT",
        "kzt": "KZT",
        "₴": "UAH",
        "грн": "UAH",
        "uah": "UAH",
    }
)

#: Thousands separators: space, no-break space, narrow no-break space, thin space, apostrophe.
GROUP_SEPARATORS: Final = " \u00a0\u202f\u2009'"

_DIGITS: Final = re.compile(r"[0-9]+")


class CompiledPattern(Protocol):
    """A compiled pattern: the named groups of its first match in ``text``, or ``None``."""

    def search(self, text: str) -> Mapping[str, str | None] | None: ...


class RegexEngine(Protocol):
    """Compiles patterns; raises :class:`TemplateError` for one it refuses."""

    def compile(self, pattern: str) -> CompiledPattern: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """One bank message format. ``decimal_sep`` is the bank's decimal mark (``,`` or ``.``);
    with ``.`` a comma is a thousands separator too (``1,500.00``)."""

    template_id: str
    bank: str
    kind: MessageKind
    pattern: str
    senders: tuple[str, ...] = ()
    decimal_sep: str = ","
    currency: str | None = None
    priority: int = 100
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.template_id or len(self.template_id) > 64:
            raise TemplateError("template_id must be 1..64 characters")
        if not isinstance(self.kind, MessageKind):
            raise TemplateError(f"unknown kind {self.kind!r}")
        if self.decimal_sep not in (",", "."):
            raise TemplateError("decimal_sep must be ',' or '.'")
        if self.currency is not None and self.currency not in KNOWN_CURRENCIES:
            raise TemplateError(f"currency {self.currency!r} is not supported")
        if not self.pattern or len(self.pattern) > MAX_PATTERN_CHARS:
            raise TemplateError(f"pattern must be 1..{MAX_PATTERN_CHARS} characters")
        if "(?P<amount>" not in self.pattern:
            raise TemplateError("pattern must name an amount field: (?P<amount>...)")

    def accepts_sender(self, sender: str) -> bool:
        return not self.senders or sender.casefold() in {s.casefold() for s in self.senders}


@dataclass(frozen=True, slots=True)
class Compiled:
    """A template with its compiled pattern."""

    template: Template
    pattern: CompiledPattern


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """The facts one template read from a message."""

    template_id: str
    kind: MessageKind
    amount_minor: int
    currency: str
    tail: str | None = None
    balance_minor: int | None = None
    counterparty: str | None = None


@dataclass(frozen=True, slots=True)
class ParseResult:
    status: ParseStatus
    parsed: Parsed | None = None


UNPARSED: Final = ParseResult(ParseStatus.UNPARSED)


def compile_templates(templates: Iterable[Template], engine: RegexEngine) -> list[Compiled]:
    """The enabled templates compiled, highest priority (lowest number) first. Raises
    :class:`TemplateError` for the first pattern the engine refuses."""
    chosen = sorted((t for t in templates if t.enabled), key=lambda t: (t.priority, t.template_id))
    return [Compiled(t, engine.compile(t.pattern)) for t in chosen]


def normalise(text: str) -> str:
    """Line breaks and tabs as single spaces (no-break spaces are kept: amounts use them)."""
    return re.sub(r"[\r\n\t]+", " ", text).strip()


def parse(text: str, sender: str, templates: Sequence[Compiled]) -> ParseResult:
    """The first template of ``sender`` that matches ``text`` and whose fields are valid.

    A template whose amount is malformed raises: :class:`AmountPrecision` (three decimals)
    or :class:`AmountFormat`, :class:`UnknownBankCurrency`, so the caller can refuse the
    message with the reason; nothing matching at all is :data:`UNPARSED`.
    """
    body = normalise(text[:MAX_TEXT_CHARS])
    for compiled in templates:
        if not compiled.template.accepts_sender(sender):
            continue
        groups = compiled.pattern.search(body)
        if groups is None:
            continue
        return ParseResult(ParseStatus.PARSED, read_fields(compiled.template, groups))
    return UNPARSED


def read_fields(template: Template, groups: Mapping[str, str | None]) -> Parsed:
    """The template's named fields as facts (amounts in minor units)."""
    currency = currency_of(groups.get("currency"), template.currency)
    exponent = KNOWN_CURRENCIES[currency]
    amount = groups.get("amount")
    if not amount:
        raise AmountFormat("the amount field matched nothing")
    balance = groups.get("balance")
    return Parsed(
        template_id=template.template_id,
        kind=template.kind,
        amount_minor=parse_amount(amount, template.decimal_sep, exponent),
        currency=currency,
        tail=_clean(groups.get("tail")),
        balance_minor=parse_amount(balance, template.decimal_sep, exponent) if balance else None,
        counterparty=_clean(groups.get("counterparty")),
    )


def currency_of(printed: str | None, default: str | None) -> str:
    """The ISO code of a printed sign or code, else the template's currency."""
    if printed is None or not printed.strip():
        if default is None:
            raise UnknownBankCurrency("the template names no currency and none was printed")
        return default
    token = printed.strip().rstrip(".").casefold()
    code = CURRENCY_ALIASES.get(token) or (
        token.upper() if token.upper() in KNOWN_CURRENCIES else None
    )
    if code is None:
        raise UnknownBankCurrency(f"currency {printed.strip()!r} is not known")
    return code


def parse_amount(printed: str, decimal_sep: str, exponent: int = 2) -> int:
    """``printed`` (``1 500,00``, ``1,500.00``, ``1500``) as integer minor units.

    Thousands separators must group by three; more decimals than ``exponent`` raise
    :class:`AmountPrecision`; anything else not a positive amount raises
    :class:`AmountFormat`.
    """
    text = printed.strip()
    separators = GROUP_SEPARATORS + ("," if decimal_sep == "." else "")
    whole, mark, fraction = text.partition(decimal_sep)
    if mark and not fraction:
        raise AmountFormat(f"amount {text!r} ends with its decimal mark")
    groups = re.split(f"[{re.escape(separators)}]", whole)
    if not all(_DIGITS.fullmatch(g) for g in groups):
        raise AmountFormat(f"amount {text!r} is not a number")
    if len(groups) > 1 and (len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:])):
        raise AmountFormat(f"amount {text!r} is not grouped by thousands")
    if fraction and not _DIGITS.fullmatch(fraction):
        raise AmountFormat(f"amount {text!r} has a malformed fraction")
    if len(fraction) > exponent:
        raise AmountPrecision(f"amount {text!r} has more than {exponent} decimal places")
    minor = int("".join(groups) + fraction.ljust(exponent, "0"))
    if not 0 < minor <= MAX_AMOUNT_MINOR:
        raise AmountFormat(f"amount {text!r} is outside 0..{MAX_AMOUNT_MINOR} minor units")
    return minor


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip(" \u00a0.,")
    return stripped[:200] or None
