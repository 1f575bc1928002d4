"""The projection of the order event stream: one row per order, plus its events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import (
    CURRENCY_PATTERN,
    ORDER_DIRECTIONS,
    ORDER_STATUSES,
    PAN_MASKED_PATTERN,
    Base,
    CreatedAt,
    Currency,
    Money,
    UpdatedAt,
    matches,
    one_of,
)

if TYPE_CHECKING:
    from db.models.config import Card, Partner


class Order(Base):
    """Projection of an order's event stream (the events, not this row, are the truth).

    ``version`` is the version of the newest event folded into the row; projectors write with
    ``INSERT .. ON CONFLICT (uid) DO UPDATE .. WHERE orders.version < excluded.version`` so a
    replayed or reordered event can never roll an order back.
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_order_id"),
        CheckConstraint(one_of("direction", ORDER_DIRECTIONS), name="direction"),
        CheckConstraint(one_of("status", ORDER_STATUSES), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("fee_minor >= 0", name="fee_non_negative"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint(
            "length(partner_order_id) BETWEEN 1 AND 128", name="partner_order_id_length"
        ),
        CheckConstraint(
            matches("payer_card_masked", PAN_MASKED_PATTERN), name="payer_card_masked_format"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_partner_id_created_at", "partner_id", "created_at"),
        Index("ix_orders_card_id_created_at", "card_id", "created_at"),
    )

    uid: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    partner_order_id: Mapped[str]
    direction: Mapped[str]
    status: Mapped[str]
    amount_minor: Mapped[Money]
    fee_minor: Mapped[Money] = mapped_column(server_default=text("0"))
    currency: Mapped[Currency]
    card_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cards.id"))
    payer_card_masked: Mapped[str | None]
    # Withdrawals only: the payer's full card, sealed by db.crypto.SecretBox (never in clear).
    payer_card_encrypted: Mapped[str | None]
    decline_reason: Mapped[str | None]
    decided_by: Mapped[str | None]
    decision_reason: Mapped[str | None]
    callback_url: Mapped[str | None]
    expires_at: Mapped[datetime]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    version: Mapped[int] = mapped_column(BigInteger)

    partner: Mapped[Partner] = relationship(lazy="raise")
    card: Mapped[Card | None] = relationship(lazy="raise")


class OrderEvent(Base):
    """Append-only copy of an order's events. ``event_id`` as primary key makes a redelivered
    Kafka message a no-op (``ON CONFLICT DO NOTHING``); ``(order_uid, seq)`` keeps one history.

    No foreign key to ``orders``: events are recorded by a different agent than the projector
    and may arrive first.
    """

    __tablename__ = "order_events"
    __table_args__ = (
        UniqueConstraint("order_uid", "seq"),
        CheckConstraint("seq >= 0", name="seq_non_negative"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_uid: Mapped[uuid.UUID]
    seq: Mapped[int]
    type: Mapped[str]
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
