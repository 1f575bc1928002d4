"""Turnover windows, limit alerts, holiday rules and expiry: the pure core of card monitoring."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cards import Card, CardStatus
from domain.errors import DomainError
from domain.turnover import (
    DAY_MS,
    HOUR_MS,
    CardTurnover,
    ExpiryState,
    HolidayReason,
    HolidayRules,
    LimitMetric,
    Movement,
    Outcome,
    Retention,
    WindowKind,
    add_movement,
    brute_force,
    check_thresholds,
    crossings,
    expiry_state,
    holidays_due,
    reached,
    window_bounds_ms,
)

MSK = ZoneInfo("Europe/Moscow")
KOLKATA = ZoneInfo("Asia/Kolkata")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def ms(*args: int, tz: ZoneInfo | None = None) -> int:
    return int(datetime(*args, tzinfo=tz or UTC).timestamp() * 1000)  # type: ignore[misc]


def card(**overrides: object) -> Card:
    fields: dict[str, object] = {
        "card_id": "card-1",
        "pool_id": "pool-1",
        "pan_masked": "220220******1234",
        "currency": "RUB",
        "status": CardStatus.ACTIVE,
        "expires_on": date(2099, 12, 31),
        "daily_limit_minor": 1_000_000,
        "monthly_limit_minor": 10_000_000,
        "daily_count_limit": 10,
        "monthly_count_limit": 100,
        "min_order_minor": 100,
        "max_order_minor": 500_000,
    }
    return Card(**(fields | overrides))  # type: ignore[arg-type]


def move(uid: str, amount: int, at_ms: int) -> Movement:
    return Movement(uid=uid, card_id="card-1", amount_minor=amount, currency="RUB", at_ms=at_ms)


# --- windows ------------------------------------------------------------------------------


def test_windows_are_calendar_periods_of_the_time_zone() -> None:
    at = ms(2025, 12, 31, 22, 30)  # 01:30 on 1 January in Moscow (UTC+3)
    assert window_bounds_ms(WindowKind.HOUR, at) == (ms(2025, 12, 31, 22), ms(2025, 12, 31, 23))
    assert window_bounds_ms(WindowKind.DAY, at)[0] == ms(2025, 12, 31)
    assert window_bounds_ms(WindowKind.DAY, at, MSK) == (
        ms(2026, 1, 1, tz=MSK),
        ms(2026, 1, 2, tz=MSK),
    )
    assert window_bounds_ms(WindowKind.MONTH, at, MSK) == (
        ms(2026, 1, 1, tz=MSK),
        ms(2026, 2, 1, tz=MSK),
    )
    # Hours are wall-clock hours: at half past in UTC for a +05:30 zone.
    start, end = window_bounds_ms(WindowKind.HOUR, ms(2026, 1, 1, 10, 45), KOLKATA)
    assert (start, end - start) == (ms(2026, 1, 1, 10, 30), HOUR_MS)


def test_days_around_a_dst_change_are_23_and_25_hours_long() -> None:
    spring = window_bounds_ms(WindowKind.DAY, ms(2026, 3, 29, 12), BERLIN)
    autumn = window_bounds_ms(WindowKind.DAY, ms(2026, 10, 25, 12), BERLIN)
    assert spring[1] - spring[0] == 23 * HOUR_MS
    assert autumn[1] - autumn[0] == 25 * HOUR_MS


@given(st.integers(40 * DAY_MS, 4_102_444_800_000), st.sampled_from([UTC, MSK, KOLKATA, BERLIN]))
def test_every_instant_lies_in_its_windows(at_ms: int, tz: ZoneInfo) -> None:
    for kind in WindowKind:
        start, end = window_bounds_ms(kind, at_ms, tz)
        assert start <= at_ms < end
        assert window_bounds_ms(kind, start, tz) == (start, end)


# --- counting -----------------------------------------------------------------------------


def test_a_movement_counts_once_in_each_window() -> None:
    at = NOW - HOUR_MS
    first = add_movement(CardTurnover(), move("a", 500, at), NOW)
    assert set(first.outcomes.values()) == {Outcome.COUNTED}
    again = add_movement(first.turnover, move("a", 500, at), NOW)
    assert set(again.outcomes.values()) == {Outcome.DUPLICATE}
    assert again.turnover == first.turnover
    assert again.changed == ()
    day = first.turnover.bucket(WindowKind.DAY, at)
    assert day is not None
    assert (day.in_minor, day.in_count, day.version) == (500, 1, 1)


def test_late_events_count_where_their_window_is_kept_and_are_dropped_beyond() -> None:
    retention = Retention()
    three_days_ago = NOW - 3 * DAY_MS
    applied = add_movement(CardTurnover(), move("a", 700, three_days_ago), NOW, UTC, retention)
    assert applied.outcomes == {
        WindowKind.HOUR: Outcome.TOO_LATE,  # hours are kept 48 h
        WindowKind.DAY: Outcome.COUNTED,
        WindowKind.MONTH: Outcome.COUNTED,
    }
    assert applied.turnover.dropped_late == 0
    ancient = add_movement(applied.turnover, move("b", 700, NOW - 500 * DAY_MS), NOW)
    assert set(ancient.outcomes.values()) == {Outcome.TOO_LATE}
    assert ancient.turnover.dropped_late == 1


def test_buckets_and_their_ids_leave_with_retention() -> None:
    applied = add_movement(CardTurnover(), move("a", 700, NOW - HOUR_MS), NOW)
    later = add_movement(applied.turnover, move("b", 100, NOW + 3 * DAY_MS), NOW + 3 * DAY_MS)
    kinds = sorted(kind for kind, _ in later.turnover.buckets)
    assert kinds.count(WindowKind.HOUR) == 1  # the old hour is gone, the new one is there
    assert all("a" not in b.uids for b in later.turnover.buckets.values() if b.kind == "hour")


movements = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 10_000), st.integers(0, 40 * DAY_MS)),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(movements, st.randoms(use_true_random=False), st.sampled_from([UTC, MSK, KOLKATA]))
def test_windows_equal_a_brute_force_recount_whatever_the_order_and_repeats(
    raw: list[tuple[int, int, int]], rnd: object, tz: ZoneInfo
) -> None:
    """Shuffled, repeated deliveries give exactly the sums of the distinct movements."""
    now = NOW + 40 * DAY_MS
    by_uid = {f"o{uid}": move(f"o{uid}", amount, NOW + offset) for uid, amount, offset in raw}
    delivered = list(by_uid.values()) * 2
    rnd.shuffle(delivered)  # type: ignore[attr-defined]
    turnover = CardTurnover()
    for movement in delivered:
        turnover = add_movement(turnover, movement, now, tz).turnover
    retention = Retention()
    for kind in WindowKind:
        expected = {
            start: totals
            for start, totals in brute_force(by_uid.values(), kind, tz).items()
            if retention.kept(kind, window_bounds_ms(kind, start, tz)[1], now)
        }
        got = {
            b.start_ms: (b.in_minor, b.in_count)
            for b in turnover.buckets.values()
            if b.kind is kind
        }
        assert got == expected
    for bucket in turnover.buckets.values():
        assert bucket.version == bucket.in_count == len(bucket.uids)


# --- limits and alerts --------------------------------------------------------------------


def test_thresholds_are_reached_exactly() -> None:
    assert reached(80, 100, 80)
    assert not reached(79, 100, 80)
    assert reached(1, 0, 100)  # a zero limit is full with the first use
    assert not reached(0, 0, 100)
    with pytest.raises(DomainError):
        check_thresholds([0])


def test_crossing_alerts_once_per_threshold_and_window() -> None:
    the_card = card(daily_limit_minor=1_000, daily_count_limit=10)
    turnover = CardTurnover()
    seen = []
    for n, amount in enumerate([500, 300, 150, 50, 10]):
        applied = add_movement(turnover, move(f"o{n}", amount, NOW + n), NOW + 10)
        turnover = applied.turnover
        day = applied.after[WindowKind.DAY]
        seen += [
            (c.metric, c.threshold_pct, c.used)
            for c in crossings(the_card, applied.before[WindowKind.DAY], day, (80, 100))
        ]
    assert seen == [
        (LimitMetric.DAILY_AMOUNT, 80, 800),
        (LimitMetric.DAILY_AMOUNT, 100, 1_000),
    ]


# --- holidays -----------------------------------------------------------------------------


def test_a_full_daily_limit_starts_one_holiday() -> None:
    rules = HolidayRules(on_daily_limit_ms=6 * HOUR_MS)
    the_card = card(daily_count_limit=2)
    first = add_movement(CardTurnover(), move("a", 100, NOW), NOW)
    assert holidays_due(rules, the_card, first, NOW) == []
    second = add_movement(first.turnover, move("b", 100, NOW + 5), NOW + 5)
    [holiday] = holidays_due(rules, the_card, second, NOW + 5)
    assert (holiday.reason, holiday.until_ms) == (
        HolidayReason.DAILY_LIMIT_REACHED,
        NOW + 5 + 6 * HOUR_MS,
    )
    third = add_movement(second.turnover, move("c", 100, NOW + 9), NOW + 9)
    assert holidays_due(rules, the_card, third, NOW + 9) == []  # already full before


def test_a_streak_of_orders_starts_a_holiday_and_rules_can_be_off() -> None:
    rules = HolidayRules(after_orders=3, after_orders_ms=HOUR_MS)
    turnover, due = CardTurnover(), []
    for n in range(5):
        applied = add_movement(turnover, move(f"o{n}", 100, NOW + n), NOW + n)
        turnover = applied.turnover
        due.append(holidays_due(rules, card(), applied, NOW + n))
        assert holidays_due(HolidayRules(), card(daily_count_limit=1), applied, NOW + n) == []
    assert [len(d) for d in due] == [0, 0, 1, 0, 0]
    assert due[2][0].reason is HolidayReason.ORDER_STREAK


def test_a_duplicate_starts_no_holiday() -> None:
    rules = HolidayRules(on_daily_limit_ms=HOUR_MS)
    the_card = card(daily_count_limit=1)
    first = add_movement(CardTurnover(), move("a", 100, NOW), NOW)
    assert holidays_due(rules, the_card, first, NOW)
    again = add_movement(first.turnover, move("a", 100, NOW), NOW)
    assert holidays_due(rules, the_card, again, NOW) == []


# --- expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_on", "state"),
    [
        (date(2025, 12, 31), ExpiryState.EXPIRED),
        (date(2026, 1, 1), ExpiryState.EXPIRING_SOON),  # its last working day
        (date(2026, 1, 31), ExpiryState.EXPIRING_SOON),
        (date(2026, 2, 1), ExpiryState.OK),
    ],
)
def test_expiry_horizon(expires_on: date, state: ExpiryState) -> None:
    assert expiry_state(expires_on, NOW, horizon_days=30) is state
