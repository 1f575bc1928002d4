"""Bank notifications: the templates that read them, the devices that forward them, and the
notifications themselves with what became of each (ADR 0010)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import (
    API_KEY_STATUSES,
    CURRENCY_PATTERN,
    SLUG_PATTERN,
    Base,
    CreatedAt,
    Currency,
    Money,
    UpdatedAt,
    matches,
    one_of,
)

MESSAGE_KINDS = ("credit", "debit", "refused")
MATCH_POLICIES = ("auto", "suggest")
#: ``received``: a parsed credit sent to the desk; ``ignored``: parsed, not a credit;
#: ``unparsed``: no template read it; then what the desk decided (``approved``, ``suggested``,
#: ``unmatched``) and what an operator did with an unmatched one (``attached``, ``dismissed``).
NOTIFICATION_OUTCOMES = (
    "received",
    "ignored",
    "unparsed",
    "approved",
    "suggested",
    "unmatched",
    "attached",
    "dismissed",
)


class BankTemplate(Base):
    """One bank message format, edited by admins (``domain.bank_messages.Template``)."""

    __tablename__ = "bank_templates"
    __table_args__ = (
        CheckConstraint(matches("template_id", SLUG_PATTERN), name="template_id_slug"),
        CheckConstraint(one_of("kind", MESSAGE_KINDS), name="kind"),
        CheckConstraint("decimal_sep IN (',', '.')", name="decimal_sep"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint("length(pattern) BETWEEN 1 AND 2000", name="pattern_length"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    template_id: Mapped[str] = mapped_column(primary_key=True)
    bank: Mapped[str]
    kind: Mapped[str]
    pattern: Mapped[str]
    senders: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    decimal_sep: Mapped[str]
    currency: Mapped[Currency | None]
    priority: Mapped[int] = mapped_column(server_default=text("100"))
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    updated_at: Mapped[UpdatedAt]
    version: Mapped[int] = mapped_column(server_default=text("1"))


class Device(Base):
    """A phone that holds a platform card and forwards its bank's messages. Its credential
    signs requests the way a partner key does; the secret is sealed, never hashed."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint(matches("id", SLUG_PATTERN), name="id_slug"),
        CheckConstraint(one_of("status", API_KEY_STATUSES), name="status"),
        CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name="revoked_at_iff_revoked"
        ),
        Index(
            "uq_devices_card_id_active",
            "card_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cards.id"), index=True)
    key_id: Mapped[str] = mapped_column(unique=True)
    secret_encrypted: Mapped[bytes]
    status: Mapped[str] = mapped_column(server_default="active")
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    #: When the device was reported silent to its card's desk; NULL while it is heard.
    silent_since: Mapped[datetime | None]


class Notification(Base):
    """One bank message as a device forwarded it, and what became of it. What a template
    read from it is in :class:`NotificationParse` (none when no template read it)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("device_id", "device_notification_id"),
        UniqueConstraint("card_id", "content_hash"),
        CheckConstraint(one_of("outcome", NOTIFICATION_OUTCOMES), name="outcome"),
        Index("ix_notifications_outcome_stored_at", "outcome", "stored_at"),
        Index("ix_notifications_matched_uid", "matched_uid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cards.id"))
    device_notification_id: Mapped[str]
    content_hash: Mapped[bytes]
    raw_text: Mapped[str]
    sender: Mapped[str]
    received_at: Mapped[datetime]
    stored_at: Mapped[CreatedAt]
    outcome: Mapped[str]
    matched_uid: Mapped[uuid.UUID | None]
    reason: Mapped[str | None]
    settled_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None]
    resolved_at: Mapped[datetime | None]


class NotificationParse(Base):
    """What a template read from a notification (the balance after it stays in the raw
    text: it is shown, never computed with)."""

    __tablename__ = "notification_parses"
    __table_args__ = (
        CheckConstraint(one_of("kind", MESSAGE_KINDS), name="kind"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id"), primary_key=True
    )
    template_id: Mapped[str]
    kind: Mapped[str]
    amount_minor: Mapped[Money]
    currency: Mapped[Currency]
    tail: Mapped[str | None]
    counterparty: Mapped[str | None]
