"""Bank message templates: every shipped example parses to its facts, amounts of any size
and spelling round-trip, malformed amounts are refused, and no pattern runs forever."""

# ruff: noqa: RUF001 - Cyrillic bank messages on purpose

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.regex_engine import ENGINE
from domain.bank_messages import (
    AmountFormat,
    AmountPrecision,
    MessageKind,
    ParseStatus,
    Template,
    TemplateError,
    UnknownBankCurrency,
    compile_templates,
    parse,
    parse_amount,
)
from domain.bank_templates import EXAMPLES, SHIPPED

COMPILED = compile_templates(SHIPPED, ENGINE)

amounts = st.integers(min_value=1, max_value=10**11)


def grouped(major: int, sep: str) -> str:
    return f"{major:,}".replace(",", sep)


def ru(minor: int, sep: str = " ") -> str:
    """``1 500,00`` with ``sep`` between thousands."""
    return f"{grouped(minor // 100, sep)},{minor % 100:02d}"


def en(minor: int) -> str:
    """``1,500.00``."""
    return f"{minor // 100:,}.{minor % 100:02d}"


def plain(minor: int) -> str:
    """``1500.00``."""
    return f"{minor // 100}.{minor % 100:02d}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.template_id}:{e.sender}")
def test_every_shipped_example_parses_to_its_facts(example) -> None:
    result = parse(example.text, example.sender, COMPILED)
    assert result.status is ParseStatus.PARSED
    parsed = result.parsed
    assert parsed is not None
    assert parsed.template_id == example.template_id
    assert parsed.kind is example.kind
    assert (parsed.amount_minor, parsed.currency, parsed.tail) == (
        example.amount_minor,
        example.currency,
        example.tail,
    )
    assert parsed.balance_minor == example.balance_minor
    assert parsed.counterparty == example.counterparty


def test_shipped_templates_cover_the_issue_formats() -> None:
    kinds = {t.kind for t in SHIPPED}
    assert kinds == set(MessageKind)
    assert len(SHIPPED) >= 5
    texts = [e.text for e in EXAMPLES]
    assert any("\u00a0" in t for t in texts)  # a no-break space between thousands
    assert any("1 500,00 ₽" in t for t in texts)
    assert any("RUB 1500.00" in t for t in texts)
    assert any(any("а" <= ch <= "я" for ch in t) for t in texts)  # Russian
    assert any(t.startswith(("Card", "Transfer", "VTB")) for t in texts)  # English


#: A credit message of each credit template, around any printed amount.
CREDIT_MESSAGES: dict[str, tuple[str, Callable[[int], str]]] = {
    "sber-credit-ru": (
        "900",
        lambda m: (
            f"MIR-4417 09:12 зачисление {grouped(m // 100, ' ')}.{m % 100:02d}р Баланс: 10.00р"
        ),
    ),
    "tbank-credit-ru": (
        "T-Bank",
        lambda m: f"Пополнение на {ru(m, chr(0xA0))}\u00a0₽, карта *4417. Доступно 1,00 ₽",
    ),
    "alfa-credit-en": (
        "Alfa-Bank",
        lambda m: f"Card *4417: credit RUB {en(m)}. Balance: RUB 0.01",
    ),
}


@pytest.mark.parametrize("template_id", sorted(CREDIT_MESSAGES))
@given(minor=amounts)
def test_a_credit_of_any_amount_reads_back_exactly(template_id: str, minor: int) -> None:
    sender, message = CREDIT_MESSAGES[template_id]
    result = parse(message(minor), sender, COMPILED)
    assert result.parsed is not None
    assert result.parsed.template_id == template_id
    assert result.parsed.amount_minor == minor


@given(minor=amounts, sep=st.sampled_from([" ", "\u00a0", "\u202f"]))
def test_comma_decimals_with_any_thousands_space(minor: int, sep: str) -> None:
    assert parse_amount(ru(minor, sep), ",") == minor


@given(minor=amounts)
def test_dot_decimals_with_or_without_comma_groups(minor: int) -> None:
    assert parse_amount(en(minor), ".") == minor
    assert parse_amount(plain(minor), ".") == minor


@pytest.mark.parametrize(
    ("printed", "sep", "minor"),
    [
        ("1500", ",", 150_000),
        ("1 500", ",", 150_000),
        ("0,5", ",", 50),
        ("1,500", ".", 150_000),
        ("1 500,5", ",", 150_050),
    ],
)
def test_whole_amounts_and_one_decimal(printed: str, sep: str, minor: int) -> None:
    assert parse_amount(printed, sep) == minor


@pytest.mark.parametrize(
    ("printed", "sep"), [("1 500,005", ","), ("1500.001", "."), ("1,500", ",")]
)
def test_three_decimal_places_are_refused(printed: str, sep: str) -> None:
    with pytest.raises(AmountPrecision):
        parse_amount(printed, sep)


@pytest.mark.parametrize(
    ("printed", "sep"),
    [
        ("15 00,00", ","),
        ("1.500,00", ","),
        ("1500,", ","),
        ("0,00", ","),
        ("١٥٠٠", ","),
        ("x", "."),
    ],
)
def test_malformed_amounts_are_refused(printed: str, sep: str) -> None:
    with pytest.raises(AmountFormat):
        parse_amount(printed, sep)


def test_a_message_with_three_decimals_is_refused_not_rounded() -> None:
    with pytest.raises(AmountPrecision):
        parse("Card *4417: credit RUB 1500.005. Balance: RUB 1.00", "Alfa-Bank", COMPILED)


def test_an_unknown_currency_sign_is_refused() -> None:
    with pytest.raises(UnknownBankCurrency):
        parse("Card *4417: credit XAU 15.00. Balance: XAU 1.00", "Alfa-Bank", COMPILED)


def test_text_no_template_knows_is_unparsed_not_dropped() -> None:
    assert parse("Ваш код подтверждения: 1234", "900", COMPILED).status is ParseStatus.UNPARSED
    # a known format from a sender the template does not list is not trusted either
    text = EXAMPLES[0].text
    assert parse(text, "+79990000000", COMPILED).status is ParseStatus.UNPARSED


def test_line_breaks_read_as_spaces() -> None:
    text = "Card *4417: credit RUB 1500.00.\nBalance: RUB 1.00"
    result = parse(text, "Alfa-Bank", COMPILED)
    assert result.parsed is not None
    assert result.parsed.amount_minor == 150_000


def test_priority_decides_between_two_matching_templates() -> None:
    pattern = r"credit (?P<amount>\d+) RUB"
    first = Template(
        template_id="b",
        bank="x",
        kind=MessageKind.CREDIT,
        pattern=pattern,
        currency="RUB",
        priority=1,
    )
    second = Template(
        template_id="a",
        bank="x",
        kind=MessageKind.DEBIT,
        pattern=pattern,
        currency="RUB",
        priority=2,
    )
    result = parse("credit 15 RUB", "any", compile_templates([second, first], ENGINE))
    assert result.parsed is not None
    assert result.parsed.template_id == "b"


@pytest.mark.timeout(10)
def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    # (a+)+b backtracks exponentially in a backtracking engine; RE2 answers at once
    evil = Template(
        template_id="evil",
        bank="x",
        kind=MessageKind.CREDIT,
        pattern=r"(?P<amount>(a+)+b)",
        currency="RUB",
    )
    compiled = compile_templates([evil, *SHIPPED], ENGINE)
    result = parse("a" * 3900 + "!", "900", compiled)
    assert result.status is ParseStatus.UNPARSED


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?P<amount>(\d)\2)",
        r"(?P<amount>\d+)(?=RUB)",
        r"(?P<amount>[\d",
        r"(?P<amount>\d{1,5000}){1000}",
    ],
)
def test_patterns_the_engine_refuses(pattern: str) -> None:
    template = Template(
        template_id="t", bank="x", kind=MessageKind.CREDIT, pattern=pattern, currency="RUB"
    )
    with pytest.raises(TemplateError):
        compile_templates([template], ENGINE)


@pytest.mark.parametrize(
    "fields",
    [
        {"pattern": r"credit (\d+)"},  # no amount field
        {"decimal_sep": ";"},
        {"currency": "XAU"},
        {"template_id": ""},
        {"pattern": "(?P<amount>1)" + "x" * 3000},
    ],
)
def test_malformed_templates_are_refused(fields: dict[str, str]) -> None:
    values = {
        "template_id": "t",
        "bank": "x",
        "kind": MessageKind.CREDIT,
        "pattern": r"(?P<amount>\d+)",
        "currency": "RUB",
        **fields,
    }
    with pytest.raises(TemplateError):
        Template(**values)  # type: ignore[arg-type]
