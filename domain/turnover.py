"""Card turnover over hour, day and month windows; limit alerts, holiday rules and expiry.

A card's turnover is the sum and count of the approved movements it received, bucketed by
**event time** (when the order was approved) into calendar windows of a time zone ``tz``:
the hour, the day and the month that contain the event. Late and out-of-order events land in
the bucket of their own time, as long as that bucket is still kept (:class:`Retention`);
older ones are refused (``TOO_LATE``) so that a bucket already pruned is never resurrected
with a partial sum.

Delivery is at least once, so every bucket remembers the order ids it has counted: a
redelivered movement is a ``DUPLICATE`` and changes nothing. The ids leave with their bucket.

Only money IN is tracked per card: a deposit is paid to one of Keeper's cards; a withdrawal
is paid out from outside Keeper's card model and names no platform card.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from domain import _checks
from domain.cards import Card, day_bounds_ms, local_date, month_bounds_ms
from domain.errors import DomainError
from domain.money import validate_amount

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS


class WindowKind(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class Outcome(StrEnum):
    """What adding a movement did to one window kind."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"


class LimitMetric(StrEnum):
    DAILY_AMOUNT = "daily_amount"
    DAILY_COUNT = "daily_count"
    MONTHLY_AMOUNT = "monthly_amount"
    MONTHLY_COUNT = "monthly_count"


class HolidayReason(StrEnum):
    DAILY_LIMIT_REACHED = "daily_limit_reached"
    ORDER_STREAK = "order_streak"


class ExpiryState(StrEnum):
    OK = "ok"
    EXPIRING_SOON = "expiring_soon"
    EXPIRED = "expired"


#: The limit metrics measured on each window kind (hours carry no limit).
METRICS: Final = MappingProxyType(
    {
        WindowKind.HOUR: (),
        WindowKind.DAY: (LimitMetric.DAILY_AMOUNT, LimitMetric.DAILY_COUNT),
        WindowKind.MONTH: (LimitMetric.MONTHLY_AMOUNT, LimitMetric.MONTHLY_COUNT),
    }
)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def window_bounds_ms(kind: WindowKind, at_ms: int, tz: tzinfo = UTC) -> tuple[int, int]:
    """``[start, end)`` of the ``kind`` window of ``tz`` that contains ``at_ms``.

    Hours are wall-clock hours of ``tz`` (in a zone with a half-hour offset they start at
    half past in UTC); days and months are the calendar periods of :mod:`domain.cards`, so
    the monitor and the pool agent's limits speak of the same period.
    """
    if kind is WindowKind.DAY:
        return day_bounds_ms(at_ms, tz)
    if kind is WindowKind.MONTH:
        return month_bounds_ms(at_ms, tz)
    local = (_EPOCH + at_ms * _MS).astimezone(tz)
    start = _ms(local.replace(minute=0, second=0, microsecond=0))
    return start, start + HOUR_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How long after its end a window is kept (and late events for it are still counted).

    Defaults: hours 48 h, days 62 d, months 400 d (13 months and a bit).
    """

    hour_ms: int = 48 * HOUR_MS
    day_ms: int = 62 * DAY_MS
    month_ms: int = 400 * DAY_MS

    def keep_ms(self, kind: WindowKind) -> int:
        return {WindowKind.HOUR: self.hour_ms, WindowKind.DAY: self.day_ms}.get(kind, self.month_ms)

    def kept(self, kind: WindowKind, end_ms: int, now_ms: int) -> bool:
        return end_ms > now_ms - self.keep_ms(kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Movement:
    """One approved order's money on a card: ``uid`` is the order id, ``at_ms`` its time."""

    uid: str
    card_id: str
    amount_minor: int
    currency: str
    at_ms: int

    def __post_init__(self) -> None:
        _checks.text("uid", self.uid, 64)
        _checks.text("card_id", self.card_id, 64)
        validate_amount(self.amount_minor)
        _checks.epoch_ms("at_ms", self.at_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    """One window of one card. ``version`` grows by one per counted movement."""

    kind: WindowKind
    start_ms: int
    end_ms: int
    in_minor: int = 0
    in_count: int = 0
    version: int = 0
    uids: frozenset[str] = frozenset()

    def add(self, movement: Movement) -> Bucket:
        assert movement.uid not in self.uids, "a movement is counted once per window"
        assert self.start_ms <= movement.at_ms < self.end_ms, "movement outside its window"
        return replace(
            self,
            in_minor=self.in_minor + movement.amount_minor,
            in_count=self.in_count + 1,
            version=self.version + 1,
            uids=self.uids | {movement.uid},
        )


BucketKey = tuple[WindowKind, int]


@dataclass(frozen=True, slots=True)
class CardTurnover:
    """Every kept bucket of one card, plus how many movements came too late to count."""

    buckets: Mapping[BucketKey, Bucket] = field(default_factory=dict)
    dropped_late: int = 0

    def bucket(self, kind: WindowKind, at_ms: int, tz: tzinfo = UTC) -> Bucket | None:
        return self.buckets.get((kind, window_bounds_ms(kind, at_ms, tz)[0]))


@dataclass(frozen=True, slots=True)
class Applied:
    """The result of :func:`add_movement`: the new turnover and, per window kind, the bucket
    before and after (``None`` before: a new bucket) and what happened."""

    turnover: CardTurnover
    outcomes: Mapping[WindowKind, Outcome]
    before: Mapping[WindowKind, Bucket | None]
    after: Mapping[WindowKind, Bucket]

    @property
    def changed(self) -> tuple[Bucket, ...]:
        return tuple(
            self.after[kind] for kind, done in self.outcomes.items() if done is Outcome.COUNTED
        )


def prune(turnover: CardTurnover, now_ms: int, retention: Retention) -> CardTurnover:
    """Drop the buckets (and the ids they remember) that left retention."""
    kept = {
        key: bucket
        for key, bucket in turnover.buckets.items()
        if retention.kept(bucket.kind, bucket.end_ms, now_ms)
    }
    if len(kept) == len(turnover.buckets):
        return turnover
    return replace(turnover, buckets=kept)


def forget(turnover: CardTurnover, uids: Iterable[str]) -> CardTurnover:
    """``turnover`` without the ids of ``uids`` in its buckets (their sums stay).

    For orders that have left the desk (ADR 0008): an order that is gone can send no
    movement again, so its id is no longer needed to spot a repeat.
    """
    gone = frozenset(uids)
    if not any(bucket.uids & gone for bucket in turnover.buckets.values()):
        return turnover
    buckets = {
        key: replace(bucket, uids=bucket.uids - gone) if bucket.uids & gone else bucket
        for key, bucket in turnover.buckets.items()
    }
    return replace(turnover, buckets=buckets)


def add_movement(
    turnover: CardTurnover,
    movement: Movement,
    now_ms: int,
    tz: tzinfo = UTC,
    retention: Retention | None = None,
) -> Applied:
    """Count ``movement`` in the hour, day and month windows of its event time.

    Each window kind is decided on its own: a movement already counted there is a
    duplicate; one whose window has left retention is too late (the hour may be too late
    while the day and month still count it). ``dropped_late`` grows when *no* kind counted a
    movement that was not a duplicate anywhere.
    """
    retention = retention or Retention()
    turnover = prune(turnover, now_ms, retention)
    buckets = dict(turnover.buckets)
    outcomes: dict[WindowKind, Outcome] = {}
    before: dict[WindowKind, Bucket | None] = {}
    after: dict[WindowKind, Bucket] = {}
    for kind in WindowKind:
        start, end = window_bounds_ms(kind, movement.at_ms, tz)
        current = buckets.get((kind, start))
        before[kind] = current
        if current is not None and movement.uid in current.uids:
            outcomes[kind], after[kind] = Outcome.DUPLICATE, current
        elif not retention.kept(kind, end, now_ms):
            outcomes[kind] = Outcome.TOO_LATE
            after[kind] = current or Bucket(kind=kind, start_ms=start, end_ms=end)
        else:
            empty = Bucket(kind=kind, start_ms=start, end_ms=end)
            buckets[(kind, start)] = after[kind] = (current or empty).add(movement)
            outcomes[kind] = Outcome.COUNTED
    dropped = turnover.dropped_late
    if all(done is Outcome.TOO_LATE for done in outcomes.values()):
        dropped += 1
    return Applied(CardTurnover(buckets, dropped), outcomes, before, after)


def brute_force(
    movements: Iterable[Movement], kind: WindowKind, tz: tzinfo = UTC
) -> dict[int, tuple[int, int]]:
    """Window start to ``(sum, count)`` over distinct movements: the reference for tests."""
    seen: dict[str, Movement] = {}
    for movement in movements:
        seen.setdefault(movement.uid, movement)
    totals: dict[int, tuple[int, int]] = {}
    for movement in seen.values():
        start = window_bounds_ms(kind, movement.at_ms, tz)[0]
        total, count = totals.get(start, (0, 0))
        totals[start] = (total + movement.amount_minor, count + 1)
    return totals


# --- limits and alerts --------------------------------------------------------------------


def limit_of(card: Card, metric: LimitMetric) -> int:
    return {
        LimitMetric.DAILY_AMOUNT: card.daily_limit_minor,
        LimitMetric.DAILY_COUNT: card.daily_count_limit,
        LimitMetric.MONTHLY_AMOUNT: card.monthly_limit_minor,
        LimitMetric.MONTHLY_COUNT: card.monthly_count_limit,
    }[metric]


def used_of(bucket: Bucket | None, metric: LimitMetric) -> int:
    if bucket is None:
        return 0
    amount = metric in (LimitMetric.DAILY_AMOUNT, LimitMetric.MONTHLY_AMOUNT)
    return bucket.in_minor if amount else bucket.in_count


def reached(used: int, limit: int, threshold_pct: int) -> bool:
    """``used`` is at least ``threshold_pct`` % of ``limit`` (exact integer arithmetic).

    A limit of zero means the card takes nothing: any use reaches every threshold.
    """
    if used <= 0:
        return False
    return used * 100 >= threshold_pct * limit


@dataclass(frozen=True, slots=True, kw_only=True)
class Crossing:
    """A window's turnover reached ``threshold_pct`` % of a limit with this movement."""

    metric: LimitMetric
    threshold_pct: int
    used: int
    limit: int
    window_kind: WindowKind
    window_start_ms: int


def check_thresholds(thresholds_pct: Iterable[int]) -> tuple[int, ...]:
    values = tuple(sorted(set(thresholds_pct)))
    if not values or any(not 1 <= value <= 1000 for value in values):
        raise DomainError("alert thresholds must be percentages between 1 and 1000")
    return values


def crossings(
    card: Card,
    before: Bucket | None,
    after: Bucket,
    thresholds_pct: Iterable[int],
) -> list[Crossing]:
    """The thresholds that ``after`` reaches and ``before`` did not, for ``after``'s limits."""
    found = []
    for metric in METRICS[after.kind]:
        limit = limit_of(card, metric)
        old, new = used_of(before, metric), used_of(after, metric)
        for pct in check_thresholds(thresholds_pct):
            if reached(new, limit, pct) and not reached(old, limit, pct):
                found.append(
                    Crossing(
                        metric=metric,
                        threshold_pct=pct,
                        used=new,
                        limit=limit,
                        window_kind=after.kind,
                        window_start_ms=after.start_ms,
                    )
                )
    return found


def reached_now(card: Card, bucket: Bucket, thresholds_pct: Iterable[int]) -> list[Crossing]:
    """Every threshold ``bucket`` has reached (used to re-publish after a redelivery)."""
    return crossings(card, None, bucket, thresholds_pct)


# --- holidays -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HolidayRules:
    """Automatic rest. ``0`` switches a rule off.

    * ``on_daily_limit_ms``: when a day window reaches 100 % of the daily amount or count
      limit, rest that long;
    * ``after_orders``: when the ``streak_window`` (an hour by default) counts that many
      approved orders, rest ``after_orders_ms``.
    """

    on_daily_limit_ms: int = 0
    after_orders: int = 0
    after_orders_ms: int = HOUR_MS
    streak_window: WindowKind = WindowKind.HOUR

    def __post_init__(self) -> None:
        _checks.int_in("on_daily_limit_ms", self.on_daily_limit_ms, 0, 366 * DAY_MS)
        _checks.int_in("after_orders_ms", self.after_orders_ms, 0, 366 * DAY_MS)
        _checks.int_in("after_orders", self.after_orders, 0, 1_000_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Holiday:
    """Rest until ``until_ms``, decided by ``reason`` in the window starting at
    ``window_start_ms`` (which names the decision: one holiday per rule and window)."""

    reason: HolidayReason
    until_ms: int
    window_kind: WindowKind
    window_start_ms: int


def holidays_due(rules: HolidayRules, card: Card, applied: Applied, at_ms: int) -> list[Holiday]:
    """The holidays that the movement counted in ``applied`` (at event time ``at_ms``) starts.

    The rest is measured from the event's time, so a replay decides the same holiday; a
    movement that arrives late may therefore start a holiday that is already over.
    """
    due = []
    if rules.on_daily_limit_ms and applied.outcomes[WindowKind.DAY] is Outcome.COUNTED:
        day_before, day = applied.before[WindowKind.DAY], applied.after[WindowKind.DAY]
        full = any(
            reached(used_of(day, metric), limit_of(card, metric), 100)
            and not reached(used_of(day_before, metric), limit_of(card, metric), 100)
            for metric in METRICS[WindowKind.DAY]
        )
        if full:
            until = at_ms + rules.on_daily_limit_ms
            due.append(
                Holiday(
                    reason=HolidayReason.DAILY_LIMIT_REACHED,
                    until_ms=until,
                    window_kind=WindowKind.DAY,
                    window_start_ms=day.start_ms,
                )
            )
    kind = rules.streak_window
    if rules.after_orders and rules.after_orders_ms and applied.outcomes[kind] is Outcome.COUNTED:
        old, new = applied.before[kind], applied.after[kind]
        if (old.in_count if old else 0) < rules.after_orders <= new.in_count:
            until = at_ms + rules.after_orders_ms
            due.append(
                Holiday(
                    reason=HolidayReason.ORDER_STREAK,
                    until_ms=until,
                    window_kind=kind,
                    window_start_ms=new.start_ms,
                )
            )
    return due


# --- expiry -------------------------------------------------------------------------------


def expiry_state(expires_on: date, now_ms: int, horizon_days: int, tz: tzinfo = UTC) -> ExpiryState:
    """``expires_on`` is the card's last working day (as in :class:`domain.cards.Card`)."""
    _checks.int_in("horizon_days", horizon_days, 0, 3660)
    today = local_date(now_ms, tz)
    if today > expires_on:
        return ExpiryState.EXPIRED
    if (expires_on - today).days <= horizon_days:
        return ExpiryState.EXPIRING_SOON
    return ExpiryState.OK
