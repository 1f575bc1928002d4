"""Card monitoring: turnover windows per card and the alerts raised on them.

Both tables are projections of the card monitor's topics (``card-turnover``,
``card-alerts``; see docs/card-monitoring.md): ``card_turnover`` is a versioned upsert per
(card, window kind, window start) -- a row only moves forward -- and ``card_alerts`` is one
row per alert id, kept for analysts.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import (
    CURRENCY_PATTERN,
    Base,
    CreatedAt,
    Currency,
    Money,
    UpdatedAt,
    matches,
    one_of,
)

WINDOW_KINDS = ("hour", "day", "month")
ALERT_KINDS = ("limit_share", "holiday_started", "expiring_soon", "expired")
LIMIT_METRICS = ("daily_amount", "daily_count", "monthly_amount", "monthly_count")
HOLIDAY_REASONS = ("daily_limit_reached", "order_streak")


class CardTurnover(Base):
    """Money IN on one card in one window (hour, day or month of ``time_zone``)."""

    __tablename__ = "card_turnover"
    __table_args__ = (
        CheckConstraint(one_of("window_kind", WINDOW_KINDS), name="window_kind"),
        CheckConstraint("window_end > window_start", name="window_order"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint("in_minor >= 0 AND in_count >= 0", name="turnover_non_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_card_turnover_window_kind_window_start", "window_kind", "window_start"),
    )

    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cards.id"), primary_key=True)
    window_kind: Mapped[str] = mapped_column(primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    window_end: Mapped[datetime]
    time_zone: Mapped[str]
    currency: Mapped[Currency]
    in_minor: Mapped[Money]
    in_count: Mapped[int]
    version: Mapped[int]
    updated_at: Mapped[UpdatedAt]


class CardAlert(Base):
    """One alert about a card; the columns used depend on ``kind``."""

    __tablename__ = "card_alerts"
    __table_args__ = (
        CheckConstraint(one_of("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(one_of("metric", LIMIT_METRICS), name="metric"),
        CheckConstraint(one_of("window_kind", WINDOW_KINDS), name="window_kind"),
        CheckConstraint(one_of("holiday_reason", HOLIDAY_REASONS), name="holiday_reason"),
        CheckConstraint("threshold_pct BETWEEN 1 AND 1000", name="threshold_pct_range"),
        CheckConstraint(
            "kind <> 'limit_share' OR (metric IS NOT NULL AND threshold_pct IS NOT NULL)",
            name="limit_share_facts",
        ),
        CheckConstraint(
            "kind <> 'holiday_started' OR holiday_until IS NOT NULL", name="holiday_facts"
        ),
        Index("ix_card_alerts_card_id_at", "card_id", "at"),
        Index("ix_card_alerts_at", "at"),
    )

    alert_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cards.id"))
    kind: Mapped[str]
    at: Mapped[datetime]
    metric: Mapped[str | None]
    threshold_pct: Mapped[int | None]
    used: Mapped[int | None] = mapped_column(BigInteger)
    ceiling: Mapped[int | None] = mapped_column(BigInteger)
    window_kind: Mapped[str | None]
    window_start: Mapped[datetime | None]
    holiday_reason: Mapped[str | None]
    holiday_until: Mapped[datetime | None]
    expires_on: Mapped[date | None]
    recorded_at: Mapped[CreatedAt]
