"""Card monitoring: approved movements per card, turnover windows and alerts.

* ``card-movements`` (key: card id): :class:`CardMovement`, an approved deposit re-keyed by
  its card so that one card's windows live in one partition of the monitor's table;
* ``card-turnover`` (key: card id): :class:`TurnoverUpdated`, the new state of one window
  after a movement was counted (``version`` grows by one per counted movement);
* ``card-alerts`` (key: card id): :class:`CardAlerted`, a limit share reached, an automatic
  holiday, a card expiring soon or expired. ``alert_id`` is derived from the facts it
  states, so a re-publication is recognisably the same alert.

Times are epoch milliseconds; amounts are integer minor units.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictInt

from domain.turnover import HolidayReason, LimitMetric, WindowKind
from schemas.envelope import AmountMinor, Currency, Message, NonNegativeMinor
from schemas.orders import EpochMs, PoolId
from schemas.registry import register

CardId = Annotated[str, Field(min_length=1, max_length=64)]
Count = Annotated[StrictInt, Field(ge=0)]

__all__ = ["HolidayReason", "LimitMetric", "WindowKind"]  # re-exported for wire users


class AlertKind(StrEnum):
    LIMIT_SHARE = "limit_share"
    HOLIDAY_STARTED = "holiday_started"
    EXPIRING_SOON = "expiring_soon"
    EXPIRED = "expired"


class _CardMessage(Message):
    card_id: CardId

    def message_key(self) -> str:
        return self.card_id


@register
class CardMovement(_CardMessage):
    """Money IN on a card: an approved deposit, at the time it was approved."""

    TYPE = "card.movement"

    uid: uuid.UUID
    amount_minor: AmountMinor
    currency: Currency
    occurred_at_ms: EpochMs


@register
class TurnoverUpdated(_CardMessage):
    """One window of one card after a counted movement (a versioned upsert downstream)."""

    TYPE = "card.turnover_updated"

    pool_id: PoolId | None = None
    currency: Currency
    window_kind: WindowKind
    window_start_ms: EpochMs
    window_end_ms: EpochMs
    time_zone: str = Field(min_length=1, max_length=64)
    in_minor: NonNegativeMinor
    in_count: Count
    version: Annotated[StrictInt, Field(ge=1)]


@register
class TurnoverWindows(_CardMessage):
    """Every window of one card that one counted movement changed (hour, day and month), in
    one message: the desk publishes one record per approval, not one per window (ADR 0005).
    The card projector writes each window as a versioned upsert, like
    :class:`TurnoverUpdated`, which logs written before ADR 0005 still carry."""

    TYPE = "card.turnover_windows"

    windows: list[TurnoverUpdated] = Field(min_length=1, max_length=len(WindowKind))


@register
class CardAlerted(_CardMessage):
    """Something about a card an operator should know; the facts depend on ``kind``."""

    TYPE = "card.alert"

    alert_id: uuid.UUID
    kind: AlertKind
    pool_id: PoolId | None = None
    at_ms: EpochMs
    metric: LimitMetric | None = None
    threshold_pct: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    used: Count | None = None
    limit: Count | None = None
    window_kind: WindowKind | None = None
    window_start_ms: EpochMs | None = None
    holiday_reason: HolidayReason | None = None
    holiday_until_ms: EpochMs | None = None
    expires_on: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
