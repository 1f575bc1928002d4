"""Amounts, currencies and the single fee rounding rule (round half up)."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidAmount, InvalidCurrency, InvalidFee, UnknownCurrency
from domain.money import (
    KNOWN_CURRENCIES,
    MAX_AMOUNT_MINOR,
    MAX_FEE_BP,
    Currency,
    fee_minor,
    validate_amount,
    validate_currency,
    validate_fee_bp,
)

amounts = st.integers(min_value=1, max_value=MAX_AMOUNT_MINOR)
rates = st.integers(min_value=0, max_value=MAX_FEE_BP)


@pytest.mark.parametrize(
    ("amount_minor", "fee_bp", "expected"),
    [
        (1, 0, 0),  # no fee
        (MAX_AMOUNT_MINOR, 0, 0),
        (1, 10_000, 1),  # 100 %: the whole amount, never more
        (MAX_AMOUNT_MINOR, 10_000, MAX_AMOUNT_MINOR),
        (1, 4_999, 0),  # 0.4999 -> 0
        (1, 5_000, 1),  # 0.5 -> 1: half rounds up
        (3, 5_000, 2),  # 1.5 -> 2
        (5, 5_000, 3),  # 2.5 -> 3 (banker's rounding would give 2)
        (100, 250, 3),  # 2.5 -> 3
        (4_999, 1, 0),  # 0.4999 -> 0
        (5_000, 1, 1),  # 0.5 -> 1
        (15_000, 1, 2),  # 1.5 -> 2
        (10_000, 150, 150),  # exact
        (12_345, 150, 185),  # 185.175 -> 185
        (199, 250, 5),  # 4.975 -> 5
        (150_000, 200, 3_000),
        (MAX_AMOUNT_MINOR, 1, 10**8),
    ],
)
def test_fee_rounding_table(amount_minor: int, fee_bp: int, expected: int) -> None:
    assert fee_minor(amount_minor, fee_bp) == expected


@settings(max_examples=300, deadline=None)
@given(amounts, rates)
def test_fee_is_the_exact_fee_rounded_half_up(amount_minor: int, fee_bp: int) -> None:
    exact = Fraction(amount_minor * fee_bp, MAX_FEE_BP)
    fee = fee_minor(amount_minor, fee_bp)
    assert fee == math.floor(exact + Fraction(1, 2))
    assert 0 <= fee <= amount_minor


@settings(max_examples=200, deadline=None)
@given(amounts, rates, rates)
def test_fee_grows_with_the_rate(amount_minor: int, bp1: int, bp2: int) -> None:
    low, high = sorted((bp1, bp2))
    assert fee_minor(amount_minor, low) <= fee_minor(amount_minor, high)


@pytest.mark.parametrize(("amount_minor", "fee_bp"), [(0, 100), (-5, 100), (1, True)])
def test_fee_refuses_bad_inputs(amount_minor: int, fee_bp: int) -> None:
    with pytest.raises((InvalidAmount, InvalidFee)):
        fee_minor(amount_minor, fee_bp)


@pytest.mark.parametrize("fee_bp", [-1, 10_001, True, 1.5, "100", None])
def test_fee_rate_must_be_basis_points(fee_bp: object) -> None:
    with pytest.raises(InvalidFee) as caught:
        validate_fee_bp(fee_bp)
    assert caught.value.code == "invalid_fee"


@pytest.mark.parametrize("fee_bp", [0, 1, 10_000])
def test_fee_rate_bounds_are_inclusive(fee_bp: int) -> None:
    assert validate_fee_bp(fee_bp) == fee_bp


@pytest.mark.parametrize("amount_minor", [1, 100, MAX_AMOUNT_MINOR])
def test_valid_amounts(amount_minor: int) -> None:
    assert validate_amount(amount_minor) == amount_minor


@pytest.mark.parametrize(
    "amount_minor", [0, -1, MAX_AMOUNT_MINOR + 1, True, False, 1.0, "100", None, 10**30]
)
def test_invalid_amounts(amount_minor: object) -> None:
    with pytest.raises(InvalidAmount) as caught:
        validate_amount(amount_minor)
    assert caught.value.code == "invalid_amount"


def test_currency_lookup() -> None:
    assert validate_currency("RUB") == "RUB"
    assert Currency.of("KZT") == Currency(code="KZT", exponent=2)
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in KNOWN_CURRENCIES)
    assert {"RUB", "USD", "EUR", "KZT", "UZS"} <= set(KNOWN_CURRENCIES)


@pytest.mark.parametrize("code", ["rub", "RU", "RUBX", "USDT", "", "R1B", 643, None, "ЯЯЯ"])
def test_malformed_currency(code: object) -> None:
    with pytest.raises(InvalidCurrency) as caught:
        Currency.of(code)
    assert caught.value.code == "invalid_currency"


@pytest.mark.parametrize("code", ["XAU", "XXX", "JPY"])
def test_unsupported_currency(code: str) -> None:
    with pytest.raises(UnknownCurrency) as caught:
        validate_currency(code)
    assert caught.value.currency == code
    assert caught.value.code == "unknown_currency"
