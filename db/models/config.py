"""Configuration edited by people: card pools, partners and their terms, receiving cards.

These rows carry an optimistic-lock ``version`` (``version_id_col``): two admins editing one
card cannot silently overwrite each other, and the version travels on the config topics so
agents can tell a newer configuration from an older one.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import (
    CARD_STATUSES,
    CURRENCY_PATTERN,
    PAN_MASKED_PATTERN,
    PARTNER_STATUSES,
    SLUG_PATTERN,
    Base,
    CreatedAt,
    Currency,
    Money,
    UpdatedAt,
    matches,
    one_of,
)

if TYPE_CHECKING:
    from db.models.access import PartnerApiKey


class CardPool(Base):
    """A named group of cards that partners are routed to."""

    __tablename__ = "card_pools"
    __table_args__ = (
        CheckConstraint(matches("id", SLUG_PATTERN), name="id_slug"),
        CheckConstraint("match_policy IN ('auto', 'suggest')", name="match_policy"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    description: Mapped[str | None]
    #: What a bank notification matching one open deposit does (ADR 0010): ``auto`` approves
    #: it, ``suggest`` shows the match in the operator queue.
    match_policy: Mapped[str] = mapped_column(server_default="suggest")

    cards: Mapped[list[Card]] = relationship(back_populates="pool", lazy="raise")
    partners: Mapped[list[Partner]] = relationship(back_populates="pool", lazy="raise")


class Partner(Base):
    """A merchant integrating with Keeper; fees are basis points of the order amount."""

    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint(matches("id", SLUG_PATTERN), name="id_slug"),
        CheckConstraint(one_of("status", PARTNER_STATUSES), name="status"),
        CheckConstraint("deposit_fee_bp BETWEEN 0 AND 10000", name="deposit_fee_bp_range"),
        CheckConstraint("withdrawal_fee_bp BETWEEN 0 AND 10000", name="withdrawal_fee_bp_range"),
        CheckConstraint(matches("callback_url", "^https?://"), name="callback_url_http"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="active")
    deposit_fee_bp: Mapped[int]
    withdrawal_fee_bp: Mapped[int]
    callback_url: Mapped[str | None]
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("card_pools.id"), index=True)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    version: Mapped[int] = mapped_column(server_default=text("1"))

    pool: Mapped[CardPool | None] = relationship(back_populates="partners", lazy="raise")
    api_keys: Mapped[list[PartnerApiKey]] = relationship(back_populates="partner", lazy="raise")

    __mapper_args__ = {"version_id_col": version}


class Card(Base):
    """A receiving card. The PAN is stored encrypted; ``pan_fingerprint`` (a keyed hash of the
    PAN) is UNIQUE so one physical card can never be registered twice, even across pools.
    """

    __tablename__ = "cards"
    __table_args__ = (
        CheckConstraint(matches("pan_masked", PAN_MASKED_PATTERN), name="pan_masked_format"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint(one_of("status", CARD_STATUSES), name="status"),
        CheckConstraint(
            "daily_limit_minor >= 0 AND monthly_limit_minor >= 0"
            " AND daily_count_limit >= 0 AND monthly_count_limit >= 0"
            " AND min_order_minor >= 0 AND max_order_minor >= 0",
            name="limits_non_negative",
        ),
        CheckConstraint("min_order_minor <= max_order_minor", name="order_range"),
        CheckConstraint(
            "daily_limit_minor <= monthly_limit_minor AND daily_count_limit <= monthly_count_limit",
            name="daily_within_monthly",
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_cards_pool_id_status", "pool_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    pool_id: Mapped[str] = mapped_column(ForeignKey("card_pools.id"))
    pan_encrypted: Mapped[bytes]
    pan_masked: Mapped[str]
    pan_fingerprint: Mapped[bytes] = mapped_column(unique=True)
    bank: Mapped[str]
    holder: Mapped[str]
    currency: Mapped[Currency]
    expires_on: Mapped[date]
    status: Mapped[str] = mapped_column(server_default="active")
    daily_limit_minor: Mapped[Money]
    monthly_limit_minor: Mapped[Money]
    daily_count_limit: Mapped[int]
    monthly_count_limit: Mapped[int]
    min_order_minor: Mapped[Money]
    max_order_minor: Mapped[Money]
    holiday_until: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    version: Mapped[int] = mapped_column(server_default=text("1"))

    pool: Mapped[CardPool] = relationship(back_populates="cards", lazy="raise")

    __mapper_args__ = {"version_id_col": version}
