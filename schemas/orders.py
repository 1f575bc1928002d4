"""Order commands (topic ``order-commands``) and order events (topic ``order-events``).

Commands are imperative and may be refused; events are past tense and are facts. Every
event carries the order's snapshot after the change (``order``), so a consumer such as the
projector needs no other state to write a versioned upsert.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StrictInt

from schemas.envelope import AmountMinor, Currency, Message, NonNegativeMinor
from schemas.registry import register

PartnerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
PartnerOrderId = Annotated[str, Field(min_length=1, max_length=128)]
MaskedPan = Annotated[str, Field(pattern=r"^\d{6}\*+\d{4}$")]


class Direction(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


class Status(StrEnum):
    PENDING = "pending"
    NEW = "new"
    PROCESSING = "processing"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    FAIL = "fail"


class _OrderMessage(Message):
    uid: uuid.UUID

    def message_key(self) -> str:
        return str(self.uid)


# --- commands ---------------------------------------------------------------------------


@register
class OpenOrder(_OrderMessage):
    """A partner asked for a deposit or a withdrawal; the API has authenticated it."""

    TYPE = "order.open"

    partner_id: PartnerId
    partner_order_id: PartnerOrderId
    direction: Direction
    amount_minor: AmountMinor
    currency: Currency
    ttl_s: Annotated[StrictInt, Field(ge=60, le=24 * 3600)]
    callback_url: str | None = None
    request_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


@register
class ConfirmPayment(_OrderMessage):
    """The payer pressed "I have paid" (deposit) or gave their card (withdrawal)."""

    TYPE = "order.confirm_payment"

    payer_card_masked: MaskedPan | None = None
    payer_card_ciphertext: str | None = None


@register
class DecideOrder(_OrderMessage):
    """An operator's verdict on an order in ``processing``."""

    TYPE = "order.decide"

    verdict: Verdict
    operator: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[str, Field(max_length=500)] = ""
    decision_id: uuid.UUID


@register
class CancelOrder(_OrderMessage):
    TYPE = "order.cancel"

    partner_id: PartnerId


@register
class ExpireOrder(_OrderMessage):
    """Raised by the order agent's timer when a ``new`` order outlives its TTL."""

    TYPE = "order.expire"

    now: AwareDatetime


# --- events -----------------------------------------------------------------------------


class OrderSnapshot(Message):
    """The order as it stands after an event; ``version`` grows by one per change."""

    TYPE = "order.snapshot"

    uid: uuid.UUID
    version: Annotated[StrictInt, Field(ge=1)]
    partner_id: PartnerId
    partner_order_id: PartnerOrderId
    direction: Direction
    status: Status
    amount_minor: AmountMinor
    fee_minor: NonNegativeMinor
    currency: Currency
    card_id: str | None = None
    card_masked: MaskedPan | None = None
    payer_card_masked: MaskedPan | None = None
    decline_reason: str | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    created_at: AwareDatetime
    expires_at: AwareDatetime

    def message_key(self) -> str:
        return str(self.uid)


class _OrderEvent(Message):
    order: OrderSnapshot

    def message_key(self) -> str:
        return str(self.order.uid)


@register
class OrderOpened(_OrderEvent):
    TYPE = "order.opened"


@register
class OrderCreated(_OrderEvent):
    """Resources are reserved (card assigned / funds held); the payer may act."""

    TYPE = "order.created"


@register
class OrderDeclined(_OrderEvent):
    TYPE = "order.declined"

    reason: Literal["insufficient_funds", "no_requisite", "partner_inactive", "invalid"]


@register
class PaymentConfirmed(_OrderEvent):
    TYPE = "order.payment_confirmed"


@register
class OrderApproved(_OrderEvent):
    TYPE = "order.approved"


@register
class OrderRejected(_OrderEvent):
    TYPE = "order.rejected"


@register
class OrderFailed(_OrderEvent):
    TYPE = "order.failed"


@register
class OrderExpired(_OrderEvent):
    TYPE = "order.expired"


@register
class OrderCancelled(_OrderEvent):
    TYPE = "order.cancelled"


@register
class DecisionNeeded(_OrderEvent):
    """Routed to ``operator-decisions`` when an order enters ``processing``."""

    TYPE = "operator.decision_needed"
