"""Card eligibility (one test per reason and boundary) and least-loaded card choice."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cards import (
    Card,
    CardLoad,
    CardStatus,
    Ineligibility,
    choose_card,
    daily_load_share,
    day_bounds_ms,
    ineligibility,
    local_date,
    month_bounds_ms,
    rejections,
    require_card,
)
from domain.errors import InvalidAmount, InvalidCard, NoEligibleCard

MSK = timezone(timedelta(hours=3))


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: tzinfo = UTC) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()) * 1000


NOW = ms(2026, 11, 28, 12, 0)
Why = Ineligibility


def card(card_id: str = "card-1", **overrides: Any) -> Card:
    fields: dict[str, Any] = {
        "card_id": card_id,
        "pool_id": "main",
        "pan_masked": "220220******1234",
        "currency": "RUB",
        "status": CardStatus.ACTIVE,
        "expires_on": date(2028, 5, 31),
        "daily_limit_minor": 1_000_000,
        "monthly_limit_minor": 10_000_000,
        "daily_count_limit": 10,
        "monthly_count_limit": 100,
        "min_order_minor": 1_000,
        "max_order_minor": 500_000,
    }
    return Card(**(fields | overrides))


def load(**fields: Any) -> CardLoad:
    return CardLoad(**fields)


CASES: list[tuple[str, Card, CardLoad, int, Why | None]] = [
    ("fresh card", card(), load(), 100_000, None),
    ("blocked", card(status=CardStatus.BLOCKED), load(), 100_000, Why.BLOCKED),
    ("retired", card(status=CardStatus.RETIRED), load(), 100_000, Why.RETIRED),
    ("currency", card(currency="KZT"), load(), 100_000, Why.CURRENCY),
    ("expired", card(expires_on=date(2026, 11, 27)), load(), 100_000, Why.EXPIRED),
    ("last valid day", card(expires_on=date(2026, 11, 28)), load(), 100_000, None),
    ("holiday", card(holiday_until_ms=NOW + 1), load(), 100_000, Why.ON_HOLIDAY),
    ("holiday over", card(holiday_until_ms=NOW), load(), 100_000, None),
    ("below min", card(), load(), 999, Why.BELOW_MIN),
    ("at min", card(), load(), 1_000, None),
    ("above max", card(), load(), 500_001, Why.ABOVE_MAX),
    ("at max", card(), load(), 500_000, None),
    (
        "same amount open",
        card(),
        load(open_orders=(("o1", 100_000),)),
        100_000,
        Why.SAME_AMOUNT_OPEN,
    ),
    ("other amount open", card(), load(open_orders=(("o1", 100_001),)), 100_000, None),
    ("daily count full", card(), load(day_count=10, month_count=10), 100_000, Why.DAILY_COUNT),
    ("daily count last", card(), load(day_count=9, month_count=9), 100_000, None),
    (
        "open orders count",
        card(),
        load(day_count=8, month_count=8, open_orders=(("o1", 5_000), ("o2", 6_000))),
        100_000,
        Why.DAILY_COUNT,
    ),
    ("monthly count", card(), load(day_count=0, month_count=100), 100_000, Why.MONTHLY_COUNT),
    ("daily limit", card(), load(day_turnover_minor=900_001), 100_000, Why.DAILY_LIMIT),
    ("daily limit exact", card(), load(day_turnover_minor=900_000), 100_000, None),
    (
        "open orders turnover",
        card(),
        load(day_turnover_minor=800_000, open_orders=(("o1", 100_001),)),
        100_000,
        Why.DAILY_LIMIT,
    ),
    ("monthly limit", card(), load(month_turnover_minor=9_900_001), 100_000, Why.MONTHLY_LIMIT),
    ("monthly limit exact", card(), load(month_turnover_minor=9_900_000), 100_000, None),
    ("zero limit", card(daily_limit_minor=0), load(), 100_000, Why.DAILY_LIMIT),
]


@pytest.mark.parametrize(
    ("the_card", "the_load", "amount", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_ineligibility(the_card: Card, the_load: CardLoad, amount: int, reason: Why | None) -> None:
    assert ineligibility(the_card, the_load, amount, "RUB", NOW) is reason


def test_first_reason_wins() -> None:
    worst = card(status=CardStatus.BLOCKED, currency="USD", expires_on=date(2020, 1, 31))
    assert ineligibility(worst, load(), 1, "RUB", NOW) is Why.BLOCKED


def test_expiry_follows_the_time_zone() -> None:
    last_day = card(expires_on=date(2026, 11, 30))
    late_evening_utc = ms(2026, 11, 30, 21, 30)  # already 1 December in Moscow
    assert ineligibility(last_day, load(), 100_000, "RUB", late_evening_utc) is None
    assert ineligibility(last_day, load(), 100_000, "RUB", late_evening_utc, MSK) is Why.EXPIRED


def test_amount_is_validated() -> None:
    with pytest.raises(InvalidAmount):
        ineligibility(card(), load(), 0, "RUB", NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"card_id": ""},
        {"pool_id": ""},
        {"pan_masked": "2202201234561234"},
        {"currency": "rub"},
        {"daily_limit_minor": -1},
        {"monthly_count_limit": True},
        {"min_order_minor": 0},
        {"max_order_minor": 10**13},
        {"min_order_minor": 600_000},
        {"holiday_until_ms": -5},
        {"status": "frozen"},
    ],
)
def test_card_configuration_is_checked(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidCard) as caught:
        card(**change)
    assert caught.value.code == "invalid_card"


def test_least_loaded_share_wins_not_least_turnover() -> None:
    big = card("big", daily_limit_minor=10_000_000)
    small = card("small", daily_limit_minor=1_000_000)
    pool = [(big, load(day_turnover_minor=3_000_000)), (small, load(day_turnover_minor=500_000))]
    # 30 % of big's limit beats 50 % of small's, although big took more money.
    assert choose_card(pool, 100_000, "RUB", NOW) is big


def test_open_orders_count_toward_the_load() -> None:
    a = card("a")
    b = card("b")
    pool = [(a, load(day_turnover_minor=100_000)), (b, load(open_orders=(("o", 150_000),)))]
    assert daily_load_share(b, pool[1][1]) == daily_load_share(a, pool[0][1]) * 3 / 2
    assert choose_card(pool, 10_000, "RUB", NOW) is a


def test_ties_go_to_the_smallest_card_id_whatever_the_input_order() -> None:
    pool = [(card(cid), load()) for cid in ("c", "a", "b")]
    for perm in itertools.permutations(pool):
        chosen = choose_card(perm, 100_000, "RUB", NOW)
        assert chosen is not None
        assert chosen.card_id == "a"


def test_ineligible_cards_are_skipped() -> None:
    pool = [(card("a", status=CardStatus.BLOCKED), load()), (card("b"), load(day_count=5))]
    chosen = require_card(pool, 100_000, "RUB", NOW)
    assert chosen.card_id == "b"
    assert rejections(pool, 100_000, "RUB", NOW) == {"a": Why.BLOCKED}


def test_no_eligible_card() -> None:
    pool = [(card("a", status=CardStatus.BLOCKED), load()), (card("b", currency="USD"), load())]
    assert choose_card(pool, 100_000, "RUB", NOW) is None
    assert choose_card([], 100_000, "RUB", NOW) is None
    assert rejections(pool, 100_000, "RUB", NOW) == {"a": Why.BLOCKED, "b": Why.CURRENCY}
    with pytest.raises(NoEligibleCard) as caught:
        require_card(iter(pool), 100_000, "RUB", NOW)  # a one-shot iterator is fine too
    assert caught.value.reasons == {"a": "blocked", "b": "currency"}


def test_zero_limit_card_counts_as_full() -> None:
    assert daily_load_share(card(daily_limit_minor=0), load()) == 1


def test_day_and_month_bounds() -> None:
    assert day_bounds_ms(NOW) == (ms(2026, 11, 28), ms(2026, 11, 29))
    assert month_bounds_ms(NOW) == (ms(2026, 11, 1), ms(2026, 12, 1))
    december = ms(2026, 12, 31, 23, 59)
    assert month_bounds_ms(december) == (ms(2026, 12, 1), ms(2027, 1, 1))
    # 22:30 UTC on 28 Nov is 01:30 on 29 Nov in Moscow.
    evening = ms(2026, 11, 28, 22, 30)
    assert local_date(evening, MSK) == date(2026, 11, 29)
    assert day_bounds_ms(evening, MSK) == (ms(2026, 11, 29, tz=MSK), ms(2026, 11, 30, tz=MSK))
    assert month_bounds_ms(ms(2026, 11, 30, 22), MSK) == (
        ms(2026, 12, 1, tz=MSK),
        ms(2027, 1, 1, tz=MSK),
    )


cards_strategy = st.lists(
    st.builds(
        lambda cid, limit, turnover, status: (
            card(f"c{cid}", daily_limit_minor=limit, status=status),
            load(day_turnover_minor=turnover),
        ),
        st.integers(0, 20),
        st.integers(0, 2_000_000),
        st.integers(0, 2_000_000),
        st.sampled_from(list(CardStatus)),
    ),
    max_size=8,
    unique_by=lambda entry: entry[0].card_id,
)


@settings(max_examples=150, deadline=None)
@given(cards_strategy, st.integers(1_000, 500_000), st.permutations(range(8)))
def test_choice_is_eligible_minimal_and_order_independent(
    pool: list[tuple[Card, CardLoad]], amount: int, order: list[int]
) -> None:
    shuffled = [pool[i] for i in order if i < len(pool)]
    chosen = choose_card(pool, amount, "RUB", NOW)
    assert choose_card(shuffled, amount, "RUB", NOW) == chosen
    eligible = [(c, ld) for c, ld in pool if ineligibility(c, ld, amount, "RUB", NOW) is None]
    if not eligible:
        assert chosen is None
        return
    assert chosen is not None
    assert chosen.card_id == min((daily_load_share(c, ld), c.card_id) for c, ld in eligible)[1]


def test_replace_keeps_cards_checked() -> None:
    with pytest.raises(InvalidCard):
        replace(card(), max_order_minor=1)
