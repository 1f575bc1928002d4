"""Balance operations on ``partner-ledger`` (key: partner id) and their outcomes.

Every operation names the order it belongs to; the partner agent applies each (order, kind)
once, so a redelivered message is a no-op.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from schemas.envelope import AmountMinor, Currency, Message, NonNegativeMinor
from schemas.orders import PartnerId
from schemas.registry import register


class LedgerOp(StrEnum):
    HOLD = "hold"
    RELEASE = "release"
    CAPTURE = "capture"
    CREDIT_DEPOSIT = "deposit_credit"


class _PartnerMessage(Message):
    partner_id: PartnerId
    uid: uuid.UUID
    currency: Currency

    def message_key(self) -> str:
        return self.partner_id


@register
class ApplyLedgerOp(_PartnerMessage):
    """Hold, release or capture a withdrawal's funds, or credit an approved deposit."""

    TYPE = "ledger.apply"

    op: LedgerOp
    amount_minor: AmountMinor
    fee_minor: NonNegativeMinor


@register
class FundsHeld(_PartnerMessage):
    TYPE = "ledger.funds_held"

    amount_minor: AmountMinor
    fee_minor: NonNegativeMinor


@register
class HoldDeclined(_PartnerMessage):
    TYPE = "ledger.hold_declined"

    available_minor: NonNegativeMinor
    requested_minor: AmountMinor
