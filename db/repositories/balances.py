"""A partner's balances per currency, as the projector last wrote them (``balance_snapshots``).

The partner agent's table is the live figure; this is its durable copy, which the API and
the console read (nothing reads Faust internals).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import BalanceSnapshot


@dataclass(frozen=True, slots=True)
class BalanceView:
    partner_id: str
    currency: str
    available_minor: int
    held_minor: int
    version: int
    updated_at: datetime


def partner_balances(session: Session, partner_id: str) -> list[BalanceView]:
    """One row per currency the partner has ever held, ordered by currency code."""
    rows = session.scalars(
        select(BalanceSnapshot)
        .where(BalanceSnapshot.partner_id == partner_id)
        .order_by(BalanceSnapshot.currency)
    )
    return [
        BalanceView(
            partner_id=row.partner_id,
            currency=row.currency.strip(),
            available_minor=row.available_minor,
            held_minor=row.held_minor,
            version=row.version,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


__all__ = ["BalanceView", "partner_balances"]
