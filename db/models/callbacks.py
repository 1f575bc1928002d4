"""Partner callbacks: the delivery log and the partners' callback signing secrets.

A delivery is one terminal order event owed to a partner. Its ``delivery_id`` follows from
``(order uid, event type)`` (``schemas.callbacks.delivery_id``), so a
redelivered Kafka record can never create a second delivery; ``body`` is the exact JSON sent
(text, not JSONB, so the bytes the partner verifies never change). ``partner_id`` carries no
foreign key, like ``order_events``: the log must accept whatever the event stream says.

A callback secret is the HMAC key a partner verifies callbacks with, sealed by
:class:`~db.crypto.SecretBox` (signing needs the secret itself). While a partner rotates,
several are active and every callback carries one signature per active secret.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, CreatedAt, one_of

DELIVERY_STATUSES = ("pending", "delivered", "dead", "skipped")


class CallbackDelivery(Base):
    """One terminal event owed to a partner, and how its delivery is going."""

    __tablename__ = "callback_deliveries"
    __table_args__ = (
        UniqueConstraint("order_uid", "event_type"),
        CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("order_version >= 1", name="order_version_positive"),
        CheckConstraint(
            "status <> 'delivered' OR delivered_at IS NOT NULL", name="delivered_at_if_delivered"
        ),
        Index(
            "ix_callback_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_callback_deliveries_partner_id_created_at", "partner_id", "created_at"),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_uid: Mapped[uuid.UUID]
    event_type: Mapped[str]
    #: The order's version in the event: sent only once ``orders`` has caught up to it.
    order_version: Mapped[int] = mapped_column(BigInteger)
    partner_id: Mapped[str]
    body: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    give_up_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None]
    last_url: Mapped[str | None]
    created_at: Mapped[CreatedAt]
    delivered_at: Mapped[datetime | None]
    parked_at: Mapped[datetime | None]


class CallbackSecret(Base):
    """A partner's callback signing secret (sealed); revoked ones are kept for the record."""

    __tablename__ = "callback_secrets"
    __table_args__ = (
        CheckConstraint("active = (revoked_at IS NULL)", name="revoked_at_iff_inactive"),
    )

    secret_id: Mapped[str] = mapped_column(primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    secret_encrypted: Mapped[bytes]
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None]
