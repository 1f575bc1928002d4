"""Disputes and their receipts (see :mod:`domain.disputes` and migration 0011)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, CreatedAt, one_of

DISPUTE_STATUSES = ("open", "accepted", "rejected")
DISPUTE_OPENERS = ("payer", "partner", "operator")
RECEIPT_TYPES = ("application/pdf", "image/png", "image/jpeg")


class Dispute(Base):
    """A claim that a closed deposit was paid; at most one per order, resolved once."""

    __tablename__ = "disputes"
    __table_args__ = (
        UniqueConstraint("order_uid"),
        UniqueConstraint("notification_id"),
        CheckConstraint(
            "(opened_by = 'operator') = (notification_id IS NOT NULL)",
            name="notification_iff_operator",
        ),
        CheckConstraint(one_of("status", DISPUTE_STATUSES), name="status"),
        CheckConstraint(one_of("opened_by", DISPUTE_OPENERS), name="opened_by"),
        CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL AND resolved_by IS NULL)",
            name="resolved_iff_not_open",
        ),
        CheckConstraint(
            "status <> 'rejected' OR length(btrim(resolution_reason)) > 0",
            name="reason_if_rejected",
        ),
        CheckConstraint("comment IS NULL OR length(comment) <= 1000", name="comment_length"),
        CheckConstraint("deadline_at > created_at", name="deadline_after"),
        Index("ix_disputes_open", "deadline_at", postgresql_where=text("status = 'open'")),
        Index("ix_disputes_partner_id_created_at", "partner_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_uid: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.uid"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    opened_by: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="open")
    comment: Mapped[str | None]
    #: The bank notification an operator attached (the evidence instead of a receipt).
    notification_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("notifications.id"))
    created_at: Mapped[CreatedAt]
    deadline_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None]
    resolution_reason: Mapped[str | None]


class DisputeReceipt(Base):
    """The receipt's bytes; its type was judged from them, never from the client's word."""

    __tablename__ = "dispute_receipts"
    __table_args__ = (
        CheckConstraint(one_of("content_type", RECEIPT_TYPES), name="content_type"),
        CheckConstraint(
            "size_bytes BETWEEN 1 AND 5242880 AND size_bytes = octet_length(data)", name="size"
        ),
    )

    dispute_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disputes.id"), primary_key=True)
    content_type: Mapped[str]
    size_bytes: Mapped[int]
    sha256: Mapped[str]
    data: Mapped[bytes]
