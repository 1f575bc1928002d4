"""Balance operations within a desk and the postings they produce on ``ledger-events``.

A partner's money is changed at one desk, one operation at a time (ADR 0005); postings are
keyed by partner id. Every operation names the order it belongs to; the desk applies each
(order, kind) once, so a redelivered command is a no-op.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from domain.ledger import PostingKind
from schemas.envelope import AmountMinor, Currency, Message, NonNegativeMinor
from schemas.orders import PartnerId
from schemas.registry import register

SignedMinor = Annotated[StrictInt, Field(ge=-(10**15), le=10**15)]
#: What a transaction answers to besides its order, e.g. ``dispute:<id>``.
Reference = Annotated[str, Field(pattern=r"^[a-z]+:[A-Za-z0-9_-]{1,64}$")]


class _PartnerMessage(Message):
    partner_id: PartnerId
    uid: uuid.UUID
    currency: Currency

    def message_key(self) -> str:
        return self.partner_id


@register
class ApplyLedgerOp(_PartnerMessage):
    """Hold, release or capture a withdrawal's funds, or credit an approved deposit (or a
    disputed one late: ``reference`` then names the dispute)."""

    TYPE = "ledger.apply"

    op: PostingKind
    amount_minor: AmountMinor
    fee_minor: NonNegativeMinor
    reference: Reference | None = None


class Leg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    account: str = Field(min_length=1, max_length=100)
    amount_minor: SignedMinor


@register
class LedgerPosted(_PartnerMessage):
    """One balanced transaction and the partner's balance right after it.

    ``balance_version`` counts the partner's applied operations in this currency, so a
    snapshot writer keeps the newest balance whatever order it sees them in.
    """

    TYPE = "ledger.posted"

    kind: PostingKind
    legs: list[Leg] = Field(min_length=2)
    available_minor: NonNegativeMinor
    held_minor: NonNegativeMinor
    balance_version: Annotated[StrictInt, Field(ge=1)]
    reference: Reference | None = None
