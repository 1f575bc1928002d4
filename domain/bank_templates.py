"""The bank message formats Keeper ships, and an example of each.

These are the rows the migration seeds into ``bank_templates`` (PostgreSQL is where admins
edit them afterwards, in the console); the examples are what the unit tests and the
simulated device of the end-to-end run replay. Patterns are RE2 syntax (``\\x{00A0}`` is a
no-break space), read by :func:`domain.bank_messages.parse`.
"""

# ruff: noqa: RUF001 - the bank messages are Cyrillic on purpose

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from domain.bank_messages import MessageKind, Template

#: An amount with a comma as decimal mark, grouped by (no-break) spaces: ``1 500,00``.
AMOUNT_COMMA: Final = r"\d[\d \x{00A0}\x{202F}]*(?:,\d+)?"
#: An amount with a dot as decimal mark, grouped by spaces: ``23 710.44``.
AMOUNT_DOT_SPACED: Final = r"\d[\d \x{00A0}]*(?:\.\d+)?"
#: An amount with a dot as decimal mark, grouped by commas: ``2,500.00``.
AMOUNT_DOT: Final = r"\d[\d,]*(?:\.\d+)?"

_SP: Final = r"[ \x{00A0}]?"

SBER_SENDERS: Final = ("900", "SBERBANK", "ru.sberbankmobile")
TBANK_SENDERS: Final = ("T-Bank", "Tinkoff", "com.idamob.tinkoff.android")

SHIPPED: Final[tuple[Template, ...]] = (
    Template(
        template_id="sber-credit-ru",
        bank="Sber",
        kind=MessageKind.CREDIT,
        senders=SBER_SENDERS,
        decimal_sep=".",
        currency="RUB",
        priority=10,
        pattern=(
            r"(?:СЧ[ЁЕ]Т|MIR-|VISA|ECMC)(?P<tail>\d{4}) \d{2}:\d{2} "
            r"(?:[Зз]ачисление|[Пп]еревод(?: из [^+]*?)?) \+?"
            rf"(?P<amount>{AMOUNT_DOT_SPACED})(?P<currency>р|₽)"
            rf"(?: от (?P<counterparty>.+?))? Баланс: (?P<balance>{AMOUNT_DOT_SPACED})р"
        ),
    ),
    Template(
        template_id="sber-debit-ru",
        bank="Sber",
        kind=MessageKind.DEBIT,
        senders=SBER_SENDERS,
        decimal_sep=".",
        currency="RUB",
        priority=20,
        pattern=(
            r"(?:СЧ[ЁЕ]Т|MIR-|VISA|ECMC)(?P<tail>\d{4}) \d{2}:\d{2} "
            r"(?:[Пп]окупка|[Сс]писание|[Оо]плата) "
            rf"(?P<amount>{AMOUNT_DOT_SPACED})(?P<currency>р|₽)"
            rf" (?P<counterparty>.+?) Баланс: (?P<balance>{AMOUNT_DOT_SPACED})р"
        ),
    ),
    Template(
        template_id="tbank-credit-ru",
        bank="T-Bank",
        kind=MessageKind.CREDIT,
        senders=TBANK_SENDERS,
        decimal_sep=",",
        currency="RUB",
        priority=10,
        pattern=(
            rf"Пополнение(?: на)? \+?(?P<amount>{AMOUNT_COMMA}){_SP}(?P<currency>₽|RUB|р\.?),? "
            r"(?:карта|сч[её]т) \*(?P<tail>\d{4})\.?"
            r"(?: (?:[Оо]т|Отправитель:?) (?P<counterparty>[^.]+)\.)?"
            rf" Доступно:? (?P<balance>{AMOUNT_COMMA}){_SP}₽"
        ),
    ),
    Template(
        template_id="tbank-refused-ru",
        bank="T-Bank",
        kind=MessageKind.REFUSED,
        senders=TBANK_SENDERS,
        decimal_sep=",",
        currency="RUB",
        priority=20,
        pattern=(
            r"Отказ[.:] (?:[Пп]еревод|[Пп]окупка|[Пп]ополнение) "
            rf"(?P<amount>{AMOUNT_COMMA}){_SP}(?P<currency>₽|RUB),? карта \*(?P<tail>\d{{4}})"
        ),
    ),
    Template(
        template_id="alfa-credit-en",
        bank="Alfa-Bank",
        kind=MessageKind.CREDIT,
        senders=("Alfa-Bank", "AlfaBank", "ru.alfabank.mobile.android"),
        decimal_sep=".",
        priority=10,
        pattern=(
            r"Card \*(?P<tail>\d{4}): (?:credit|incoming transfer) "
            rf"(?P<currency>[A-Z]{{3}}) (?P<amount>{AMOUNT_DOT})"
            r"(?: from (?P<counterparty>[^.]+))?\. "
            rf"Balance: [A-Z]{{3}} (?P<balance>{AMOUNT_DOT})"
        ),
    ),
    Template(
        template_id="vtb-debit-en",
        bank="VTB",
        kind=MessageKind.DEBIT,
        senders=("VTB", "ru.vtb24.mobilebanking.android"),
        decimal_sep=".",
        priority=10,
        pattern=(
            rf"VTB: debit (?P<currency>[A-Z]{{3}}) (?P<amount>{AMOUNT_DOT}), "
            rf"card \*(?P<tail>\d{{4}}), balance [A-Z]{{3}} (?P<balance>{AMOUNT_DOT})"
        ),
    ),
    Template(
        template_id="any-refused-en",
        bank="any",
        kind=MessageKind.REFUSED,
        decimal_sep=".",
        priority=90,
        pattern=(
            rf"Transfer of (?P<currency>[A-Z]{{3}}) (?P<amount>{AMOUNT_DOT}) "
            r"to card \*(?P<tail>\d{4}) (?:declined|refused|rejected)"
        ),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """A message as a phone receives it, and what the template must read from it."""

    template_id: str
    sender: str
    text: str
    kind: MessageKind
    amount_minor: int
    currency: str
    tail: str
    balance_minor: int | None = None
    counterparty: str | None = None


EXAMPLES: Final[tuple[Example, ...]] = (
    Example(
        template_id="sber-credit-ru",
        sender="900",
        text="MIR-4417 09:12 зачисление 1500р Баланс: 23 710.44р",
        kind=MessageKind.CREDIT,
        amount_minor=150_000,
        currency="RUB",
        tail="4417",
        balance_minor=2_371_044,
    ),
    Example(
        template_id="sber-credit-ru",
        sender="900",
        text="СЧЁТ4417 18:03 Перевод из Т-Банк +2 350.50р от ИВАН П. Баланс: 26 060.94р",
        kind=MessageKind.CREDIT,
        amount_minor=235_050,
        currency="RUB",
        tail="4417",
        balance_minor=2_606_094,
        counterparty="ИВАН П",
    ),
    Example(
        template_id="sber-debit-ru",
        sender="900",
        text="MIR-4417 12:40 Покупка 700р MAGNIT MM Баланс: 25 360.94р",
        kind=MessageKind.DEBIT,
        amount_minor=70_000,
        currency="RUB",
        tail="4417",
        balance_minor=2_536_094,
        counterparty="MAGNIT MM",
    ),
    Example(
        template_id="tbank-credit-ru",
        sender="T-Bank",
        text="Пополнение на 1\u00a0500,00\u00a0₽, карта *4417. Доступно 12\u00a0345,67\u00a0₽",
        kind=MessageKind.CREDIT,
        amount_minor=150_000,
        currency="RUB",
        tail="4417",
        balance_minor=1_234_567,
    ),
    Example(
        template_id="tbank-credit-ru",
        sender="com.idamob.tinkoff.android",
        text="Пополнение +12 000 ₽, счёт *4417. От Анна К. Доступно 24 345,67 ₽",
        kind=MessageKind.CREDIT,
        amount_minor=1_200_000,
        currency="RUB",
        tail="4417",
        balance_minor=2_434_567,
        counterparty="Анна К",
    ),
    Example(
        template_id="tbank-refused-ru",
        sender="Tinkoff",
        text="Отказ: перевод 1 500,00 ₽, карта *4417. Недостаточно средств",
        kind=MessageKind.REFUSED,
        amount_minor=150_000,
        currency="RUB",
        tail="4417",
    ),
    Example(
        template_id="alfa-credit-en",
        sender="Alfa-Bank",
        text="Card *4417: credit RUB 1500.00 from IVAN PETROV. Balance: RUB 24,210.44",
        kind=MessageKind.CREDIT,
        amount_minor=150_000,
        currency="RUB",
        tail="4417",
        balance_minor=2_421_044,
        counterparty="IVAN PETROV",
    ),
    Example(
        template_id="vtb-debit-en",
        sender="VTB",
        text="VTB: debit RUB 2,500.00, card *4417, balance RUB 9,845.67",
        kind=MessageKind.DEBIT,
        amount_minor=250_000,
        currency="RUB",
        tail="4417",
        balance_minor=984_567,
    ),
    Example(
        template_id="any-refused-en",
        sender="+79001234567",
        text="Transfer of RUB 1500.00 to card *4417 declined",
        kind=MessageKind.REFUSED,
        amount_minor=150_000,
        currency="RUB",
        tail="4417",
    ),
)
