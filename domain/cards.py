"""Platform cards that receive deposits: who may take an order now, and which one should.

A deposit is paid by the payer to one of Keeper's cards. Banks cap what a card may receive
per day and per month (in amount and in count), cards expire, get blocked, or rest on a
"holiday" after a bank's suspicion. :func:`ineligibility` says why a card cannot take an
order (or ``None`` if it can); :func:`choose_card` spreads orders over the eligible cards.

Time zone. "Today" and "this month" are calendar periods in a time zone ``tz`` that the
caller passes (UTC by default); a pool whose bank counts limits in Moscow time passes that
zone. Use :func:`day_bounds_ms`/:func:`month_bounds_ms` with the same ``tz`` to compute the
turnover in :class:`CardLoad`, so the limits and the load speak of the same period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from fractions import Fraction
from typing import Final

from domain import _checks
from domain.errors import DomainError, InvalidCard, NoEligibleCard
from domain.money import validate_amount, validate_currency

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


class CardStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    RETIRED = "retired"


class Ineligibility(StrEnum):
    """Why a card cannot take an order, in the order :func:`ineligibility` checks."""

    BLOCKED = "blocked"
    RETIRED = "retired"
    CURRENCY = "currency"
    EXPIRED = "expired"
    ON_HOLIDAY = "on_holiday"
    BELOW_MIN = "below_min"
    ABOVE_MAX = "above_max"
    SAME_AMOUNT_OPEN = "same_amount_open"
    DAILY_COUNT = "daily_count"
    MONTHLY_COUNT = "monthly_count"
    DAILY_LIMIT = "daily_limit"
    MONTHLY_LIMIT = "monthly_limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Card:
    """A card's configuration. A limit of zero means the card takes nothing in that period.

    ``expires_on`` is the last day the card works (the end of the month printed on it);
    ``holiday_until_ms`` pauses the card until that instant.
    """

    card_id: str
    pool_id: str
    pan_masked: str
    currency: str
    status: CardStatus
    expires_on: date
    daily_limit_minor: int
    monthly_limit_minor: int
    daily_count_limit: int
    monthly_count_limit: int
    min_order_minor: int
    max_order_minor: int
    holiday_until_ms: int | None = None

    def __post_init__(self) -> None:
        try:
            _checks.text("card_id", self.card_id, 64)
            _checks.text("pool_id", self.pool_id, 64)
            _checks.masked_pan(self.pan_masked)
            validate_currency(self.currency)
            for name in (
                "daily_limit_minor",
                "monthly_limit_minor",
                "daily_count_limit",
                "monthly_count_limit",
            ):
                _checks.int_in(name, getattr(self, name), 0)
            validate_amount(self.min_order_minor)
            validate_amount(self.max_order_minor)
            if self.holiday_until_ms is not None:
                _checks.epoch_ms("holiday_until_ms", self.holiday_until_ms)
        except DomainError as exc:  # any field error is a bad card configuration
            raise InvalidCard(f"card {self.card_id!r}: {exc}") from exc
        if not isinstance(self.status, CardStatus):
            raise InvalidCard(f"card {self.card_id!r}: unknown status {self.status!r}")
        if self.min_order_minor > self.max_order_minor:
            raise InvalidCard(f"card {self.card_id!r}: min order above max order")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardLoad:
    """What a card already took: finished turnover today and this month (the month's
    figures include today's), plus its open orders as ``(uid, amount_minor)`` pairs.

    Open orders count toward every limit: their payers may pay at any moment, and a card
    must not be promised to more money than the bank will let it receive.
    """

    day_turnover_minor: int = 0
    day_count: int = 0
    month_turnover_minor: int = 0
    month_count: int = 0
    open_orders: tuple[tuple[str, int], ...] = ()

    @property
    def open_minor(self) -> int:
        return sum(amount for _, amount in self.open_orders)

    @property
    def open_count(self) -> int:
        return len(self.open_orders)


def local_date(now_ms: int, tz: tzinfo = UTC) -> date:
    return (_EPOCH + now_ms * _MS).astimezone(tz).date()


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def day_bounds_ms(now_ms: int, tz: tzinfo = UTC) -> tuple[int, int]:
    """``[start, end)`` of the calendar day containing ``now_ms`` in ``tz``."""
    today = local_date(now_ms, tz)
    start = datetime(today.year, today.month, today.day, tzinfo=tz)
    tomorrow = today + timedelta(days=1)
    end = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz)
    return _ms(start), _ms(end)


def month_bounds_ms(now_ms: int, tz: tzinfo = UTC) -> tuple[int, int]:
    """``[start, end)`` of the calendar month containing ``now_ms`` in ``tz``."""
    today = local_date(now_ms, tz)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    start = datetime(today.year, today.month, 1, tzinfo=tz)
    return _ms(start), _ms(datetime(year, month, 1, tzinfo=tz))


def ineligibility(
    card: Card,
    load: CardLoad,
    amount_minor: int,
    currency: str,
    now_ms: int,
    tz: tzinfo = UTC,
) -> Ineligibility | None:
    """Why ``card`` cannot take ``amount_minor`` now, or ``None`` if it can.

    Reasons are checked from the most permanent to the most passing, and the first one
    found is returned. ``same_amount_open``: operators match an incoming transfer to its
    order by card and amount, so two open orders of one amount on one card are ambiguous.
    """
    validate_amount(amount_minor)
    if card.status is CardStatus.BLOCKED:
        return Ineligibility.BLOCKED
    if card.status is CardStatus.RETIRED:
        return Ineligibility.RETIRED
    if card.currency != currency:
        return Ineligibility.CURRENCY
    if local_date(now_ms, tz) > card.expires_on:
        return Ineligibility.EXPIRED
    if card.holiday_until_ms is not None and now_ms < card.holiday_until_ms:
        return Ineligibility.ON_HOLIDAY
    if amount_minor < card.min_order_minor:
        return Ineligibility.BELOW_MIN
    if amount_minor > card.max_order_minor:
        return Ineligibility.ABOVE_MAX
    if any(amount == amount_minor for _, amount in load.open_orders):
        return Ineligibility.SAME_AMOUNT_OPEN
    return _over_limit(card, load, amount_minor)


def _over_limit(card: Card, load: CardLoad, amount_minor: int) -> Ineligibility | None:
    count = load.open_count + 1
    if load.day_count + count > card.daily_count_limit:
        return Ineligibility.DAILY_COUNT
    if load.month_count + count > card.monthly_count_limit:
        return Ineligibility.MONTHLY_COUNT
    pending = load.open_minor + amount_minor
    if load.day_turnover_minor + pending > card.daily_limit_minor:
        return Ineligibility.DAILY_LIMIT
    if load.month_turnover_minor + pending > card.monthly_limit_minor:
        return Ineligibility.MONTHLY_LIMIT
    return None


def daily_load_share(card: Card, load: CardLoad) -> Fraction:
    """Today's turnover including open orders, as an exact share of the daily limit."""
    if card.daily_limit_minor == 0:
        return Fraction(1)
    return Fraction(load.day_turnover_minor + load.open_minor, card.daily_limit_minor)


def rejections(
    candidates: Iterable[tuple[Card, CardLoad]],
    amount_minor: int,
    currency: str,
    now_ms: int,
    tz: tzinfo = UTC,
) -> dict[str, Ineligibility]:
    """Card id to reason, for every candidate that cannot take the order."""
    reasons: dict[str, Ineligibility] = {}
    for card, load in candidates:
        reason = ineligibility(card, load, amount_minor, currency, now_ms, tz)
        if reason is not None:
            reasons[card.card_id] = reason
    return reasons


def choose_card(
    candidates: Iterable[tuple[Card, CardLoad]],
    amount_minor: int,
    currency: str,
    now_ms: int,
    tz: tzinfo = UTC,
) -> Card | None:
    """The least loaded eligible card, or ``None`` if no card can take the order.

    "Least loaded" is the lowest :func:`daily_load_share`, so cards with different limits
    fill up evenly; ties go to the smallest ``card_id``, so the choice does not depend on
    the order of ``candidates`` and a replay picks the same card.
    """
    eligible = [
        (daily_load_share(card, load), card.card_id, card)
        for card, load in candidates
        if ineligibility(card, load, amount_minor, currency, now_ms, tz) is None
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda entry: (entry[0], entry[1]))[2]


def require_card(
    candidates: Iterable[tuple[Card, CardLoad]],
    amount_minor: int,
    currency: str,
    now_ms: int,
    tz: tzinfo = UTC,
) -> Card:
    """Like :func:`choose_card`, but raise :class:`NoEligibleCard` with every reason."""
    pool = list(candidates)
    card = choose_card(pool, amount_minor, currency, now_ms, tz)
    if card is None:
        raise NoEligibleCard(rejections(pool, amount_minor, currency, now_ms, tz))
    return card
