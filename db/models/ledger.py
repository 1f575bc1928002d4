"""Money: double-entry ledger postings and the balance snapshots derived from them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import (
    ACCOUNT_PATTERN,
    CURRENCY_PATTERN,
    POSTING_KINDS,
    Base,
    Currency,
    Money,
    UpdatedAt,
    matches,
    one_of,
)

if TYPE_CHECKING:
    from db.models.config import Partner


class LedgerPosting(Base):
    """One leg of a double-entry ledger transaction.

    A transaction is every leg sharing ``(order_uid, kind)``; a deferred constraint trigger
    checks at COMMIT that its legs sum to zero per currency, and ``UNIQUE(order_uid, kind,
    account)`` means a redelivered event can never post the same movement twice. Postings are
    append-only: corrections are new postings, never edits.
    """

    __tablename__ = "ledger_postings"
    __table_args__ = (
        UniqueConstraint("order_uid", "kind", "account"),
        CheckConstraint(one_of("kind", POSTING_KINDS), name="kind"),
        CheckConstraint("amount_minor <> 0", name="amount_non_zero"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint(matches("account", ACCOUNT_PATTERN), name="account_format"),
        CheckConstraint(
            "CASE WHEN split_part(account, ':', 1) = 'partner'"
            " THEN partner_id IS NOT NULL AND split_part(account, ':', 2) = partner_id"
            " ELSE partner_id IS NULL END",
            name="partner_matches_account",
        ),
        Index("ix_ledger_postings_account_currency", "account", "currency"),
        # A partner's postings newest first (the partner portal's ledger, the console's).
        Index("ix_ledger_postings_partner_id_posted_at", "partner_id", "posted_at"),
    )

    posting_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_uid: Mapped[uuid.UUID]
    kind: Mapped[str]
    account: Mapped[str]
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    currency: Mapped[Currency]
    amount_minor: Mapped[Money]
    posted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    #: What the transaction answers to besides its order, e.g. ``dispute:<id>``.
    reference: Mapped[str | None]


class BalanceSnapshot(Base):
    """A partner's balance per currency, derived from postings; the CHECKs make an overdraft
    impossible to record, and ``version`` orders concurrent snapshot writers.
    """

    __tablename__ = "balance_snapshots"
    __table_args__ = (
        CheckConstraint("available_minor >= 0", name="available_non_negative"),
        CheckConstraint("held_minor >= 0", name="held_non_negative"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint("version >= 0", name="version_non_negative"),
    )

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    currency: Mapped[Currency] = mapped_column(primary_key=True)
    available_minor: Mapped[Money] = mapped_column(server_default=text("0"))
    held_minor: Mapped[Money] = mapped_column(server_default=text("0"))
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[UpdatedAt]

    partner: Mapped[Partner] = relationship(lazy="raise")
