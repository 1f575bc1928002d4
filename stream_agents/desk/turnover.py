"""The desk's turnover part, the card monitor: windows per card, limit alerts, holidays.

(docs/card-monitoring.md, decisions 0002 and 0005.) When the desk approves a deposit on one
of its cards, the pool part hands this part a ``card.movement`` (the approval's amount, at the
approval's time). It counts the movement into the card's hour, day and month buckets (entry
``turnover/<card>`` of the desk's table, each bucket with the order ids it counted) through
the pure :func:`domain.turnover.add_movement`, and publishes in one record every window it
changed (``card.turnover_windows`` on ``card-turnover``), every limit share newly reached
(``card.alert`` on ``card-alerts``) and every holiday a rule starts: a ``holiday_started``
alert, and a ``card.pause`` handed to the pool part at once.

At least once: a redelivered movement counts nowhere; it re-publishes the current state of
its windows and the alerts and holidays already decided for them, with the same ids, so a
crash between the table write and the sends loses nothing and downstream drops the copies.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from domain.cards import Card
from domain.errors import DomainError
from domain.turnover import (
    HOUR_MS,
    Applied,
    Bucket,
    CardTurnover,
    Crossing,
    Holiday,
    HolidayReason,
    HolidayRules,
    Movement,
    Outcome,
    Retention,
    WindowKind,
    add_movement,
    crossings,
    forget,
    holidays_due,
    reached_now,
)
from schemas import cards as wc
from schemas import turnover as wt
from schemas.topics import CARD_ALERTS, CARD_TURNOVER
from stream_agents.desk.pool import card_from_config
from stream_agents.settings import AgentSettings
from stream_agents.wire import TO_POOL, Out, message_id

log = logging.getLogger(__name__)

#: Namespace of alert ids: uuid5 of the facts an alert states.
ALERT_NAMESPACE: Final = uuid.UUID("1c6f0b8e-5d7a-4c1e-9b3f-7a2d4e6f8091")

Stored = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MonitorRules:
    """What the monitor needs from the settings, as domain values."""

    tz: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
    thresholds_pct: tuple[int, ...] = (80, 100)
    holidays: HolidayRules = field(default_factory=HolidayRules)
    retention: Retention = field(default_factory=Retention)

    @property
    def tz_name(self) -> str:
        return str(self.tz)

    @classmethod
    def from_settings(cls, settings: AgentSettings) -> MonitorRules:
        day_ms = 24 * HOUR_MS
        return cls(
            tz=ZoneInfo(settings.card_time_zone),
            thresholds_pct=tuple(settings.card_alert_pct),
            holidays=HolidayRules(
                on_daily_limit_ms=round(settings.holiday_on_daily_limit_h * HOUR_MS),
                after_orders=settings.holiday_after_orders,
                after_orders_ms=round(settings.holiday_after_orders_h * HOUR_MS),
                streak_window=WindowKind(settings.holiday_streak_window),
            ),
            retention=Retention(
                hour_ms=settings.turnover_keep_hours_h * HOUR_MS,
                day_ms=settings.turnover_keep_days_d * day_ms,
                month_ms=settings.turnover_keep_months_d * day_ms,
            ),
        )


# --- the table entry as JSON --------------------------------------------------------------


def turnover_to_json(turnover: CardTurnover, holidays: Iterable[list[Any]]) -> Stored:
    buckets = [
        [b.kind.value, b.start_ms, b.end_ms, b.in_minor, b.in_count, b.version, sorted(b.uids)]
        for b in sorted(turnover.buckets.values(), key=lambda b: (b.kind, b.start_ms))
    ]
    return {"buckets": buckets, "dropped_late": turnover.dropped_late, "holidays": list(holidays)}


def turnover_from_json(stored: Stored | None) -> CardTurnover:
    if not stored:
        return CardTurnover()
    buckets = {}
    for kind, start, end, in_minor, in_count, version, uids in stored["buckets"]:
        bucket = Bucket(
            kind=WindowKind(kind),
            start_ms=start,
            end_ms=end,
            in_minor=in_minor,
            in_count=in_count,
            version=version,
            uids=frozenset(uids),
        )
        buckets[(bucket.kind, start)] = bucket
    return CardTurnover(buckets, stored.get("dropped_late", 0))


# --- outgoing messages --------------------------------------------------------------------


def alert_id(card_id: str, *facts: object) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, ":".join(str(part) for part in (card_id, *facts)))


def _window(
    card_id: str, pool_id: str | None, currency: str, bucket: Bucket, tz_name: str
) -> wt.TurnoverUpdated:
    return wt.TurnoverUpdated(
        card_id=card_id,
        pool_id=pool_id,
        currency=currency,
        window_kind=bucket.kind,
        window_start_ms=bucket.start_ms,
        window_end_ms=bucket.end_ms,
        time_zone=tz_name,
        in_minor=bucket.in_minor,
        in_count=bucket.in_count,
        version=bucket.version,
    )


def _windows_out(card_id: str, windows: list[wt.TurnoverUpdated], at_ms: int) -> list[Out]:
    """One record for every window one movement changed; its id names their versions, so a
    re-publication is identical."""
    if not windows:
        return []
    update = wt.TurnoverWindows(card_id=card_id, windows=windows)
    facts = [(w.window_kind.value, w.window_start_ms, w.version) for w in windows]
    return [Out(CARD_TURNOVER.name, update, message_id(card_id, update.TYPE, *facts), at_ms)]


def _limit_alert(card: Card, crossing: Crossing, at_ms: int) -> Out:
    ident = alert_id(
        card.card_id,
        wt.AlertKind.LIMIT_SHARE,
        crossing.metric,
        crossing.window_start_ms,
        crossing.threshold_pct,
    )
    alert = wt.CardAlerted(
        card_id=card.card_id,
        alert_id=ident,
        kind=wt.AlertKind.LIMIT_SHARE,
        pool_id=card.pool_id,
        at_ms=at_ms,
        metric=crossing.metric,
        threshold_pct=crossing.threshold_pct,
        used=crossing.used,
        limit=crossing.limit,
        window_kind=crossing.window_kind,
        window_start_ms=crossing.window_start_ms,
    )
    return Out(CARD_ALERTS.name, alert, ident, at_ms)


def holiday_outputs(card: Card, holiday: Holiday, at_ms: int) -> list[Out]:
    """The pause for the pool's desk and the alert for people, for one decided holiday."""
    ident = alert_id(
        card.card_id, wt.AlertKind.HOLIDAY_STARTED, holiday.reason, holiday.window_start_ms
    )
    pause = wc.PauseCard(
        pool_id=card.pool_id,
        card_id=card.card_id,
        until_ms=holiday.until_ms,
        reason=holiday.reason.value,
    )
    alert = wt.CardAlerted(
        card_id=card.card_id,
        alert_id=ident,
        kind=wt.AlertKind.HOLIDAY_STARTED,
        pool_id=card.pool_id,
        at_ms=at_ms,
        window_kind=holiday.window_kind,
        window_start_ms=holiday.window_start_ms,
        holiday_reason=holiday.reason,
        holiday_until_ms=holiday.until_ms,
    )
    return [
        Out(TO_POOL, pause, message_id(ident, pause.TYPE), at_ms),
        Out(CARD_ALERTS.name, alert, ident, at_ms),
    ]


def _holiday_json(holiday: Holiday) -> list[Any]:
    return [
        holiday.reason.value,
        holiday.window_kind.value,
        holiday.window_start_ms,
        holiday.until_ms,
    ]


def _holiday_from_json(item: list[Any]) -> Holiday:
    reason, kind, start, until = item
    return Holiday(
        reason=HolidayReason(reason),
        window_kind=WindowKind(kind),
        window_start_ms=start,
        until_ms=until,
    )


# --- the handler --------------------------------------------------------------------------


def _card(config: dict[str, Any] | None) -> Card | None:
    if config is None:
        return None
    try:
        return card_from_config(config)
    except DomainError as exc:
        log.warning("card %s: configuration skipped: %s", config.get("card_id"), exc.code)
        return None


def handle_movement(
    stored: Stored | None,
    message: wt.CardMovement,
    config: dict[str, Any] | None,
    rules: MonitorRules,
    now_ms: int,
) -> tuple[Stored | None, list[Out]]:
    """Count one movement; returns the new entry (``None``: unchanged) and what to send.

    Without a known card configuration the windows are still counted, but nothing is
    compared with limits (there are none to compare with).
    """
    movement = Movement(
        uid=str(message.uid),
        card_id=message.card_id,
        amount_minor=message.amount_minor,
        currency=message.currency,
        at_ms=message.occurred_at_ms,
    )
    applied = add_movement(turnover_from_json(stored), movement, now_ms, rules.tz, rules.retention)
    card = _card(config)
    kept = {
        (h[1], h[2]): h
        for h in (stored or {}).get("holidays", [])
        if (WindowKind(h[1]), h[2]) in applied.turnover.buckets
    }
    counted = applied.changed
    if not counted:
        return _not_counted(stored, applied, card, message, kept, rules)
    at_ms = movement.at_ms
    pool_id = card.pool_id if card else None
    windows = [
        _window(movement.card_id, pool_id, movement.currency, b, rules.tz_name) for b in counted
    ]
    outputs = _windows_out(movement.card_id, windows, at_ms)
    if card is not None:
        for bucket in counted:
            before = applied.before[bucket.kind]
            outputs += [
                _limit_alert(card, crossing, at_ms)
                for crossing in crossings(card, before, bucket, rules.thresholds_pct)
            ]
        for holiday in holidays_due(rules.holidays, card, applied, at_ms):
            kept[(holiday.window_kind.value, holiday.window_start_ms)] = _holiday_json(holiday)
            outputs += holiday_outputs(card, holiday, at_ms)
    return turnover_to_json(applied.turnover, kept.values()), outputs


def _not_counted(
    stored: Stored | None,
    applied: Applied,
    card: Card | None,
    message: wt.CardMovement,
    kept: dict[tuple[str, int], list[Any]],
    rules: MonitorRules,
) -> tuple[Stored | None, list[Out]]:
    """A duplicate re-publishes its windows' current state; a too-late movement is counted
    in ``dropped_late`` and logged."""
    new_state = turnover_to_json(applied.turnover, kept.values())
    if all(outcome is Outcome.TOO_LATE for outcome in applied.outcomes.values()):
        log.warning(
            "card %s: movement %s at %d is older than every kept window: dropped (late)",
            message.card_id,
            message.uid,
            message.occurred_at_ms,
        )
        return new_state, []
    at_ms = message.occurred_at_ms
    pool_id = card.pool_id if card else None
    windows, outputs = [], []
    for kind, outcome in applied.outcomes.items():
        if outcome is not Outcome.DUPLICATE:
            continue
        bucket = applied.after[kind]
        windows.append(_window(message.card_id, pool_id, message.currency, bucket, rules.tz_name))
        if card is not None:
            outputs += [
                _limit_alert(card, c, at_ms)
                for c in reached_now(card, bucket, rules.thresholds_pct)
            ]
            holiday = kept.get((kind.value, bucket.start_ms))
            if holiday is not None:
                outputs += holiday_outputs(card, _holiday_from_json(holiday), at_ms)
    return (new_state if new_state != stored else None), _windows_out(
        message.card_id, windows, at_ms
    ) + outputs


def forget_orders(stored: Stored | None, uids: Iterable[str]) -> Stored | None:
    """The card's entry without the ids of ``uids`` (orders that left the desk, ADR 0008);
    ``None`` when none of them is there."""
    if not stored:
        return None
    turnover = turnover_from_json(stored)
    kept = forget(turnover, uids)
    if kept is turnover:
        return None
    return turnover_to_json(kept, stored.get("holidays", []))
