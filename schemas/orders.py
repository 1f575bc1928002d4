"""Order commands (``order-commands``) and events (``order-events``).

Commands are imperative and may be refused; a refused command publishes nothing. Events are
past tense and are facts; each carries the order's snapshot after the change (``order``), so
a consumer such as the projector needs no other state to write a versioned upsert, and the
API learns what its commands did from the events alone (ADR 0003).

Times inside payloads are epoch milliseconds (``*_ms``), like the domain's; the envelope's
``occurred_at`` is when a command was issued and is the ``at_ms`` the core sees.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, StrictBool, StrictInt

from domain.orders import MAX_TTL_S, MIN_TTL_S, DeclineReason, Direction, Order, OrderStatus
from schemas.desks import DeskKey
from schemas.envelope import AmountMinor, Currency, Message, NonNegativeMinor
from schemas.registry import register

PartnerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
PoolId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
PartnerOrderId = Annotated[str, Field(min_length=1, max_length=128)]
MaskedPan = Annotated[str, Field(pattern=r"^\d{6}\*+\d{4}$")]
EpochMs = Annotated[StrictInt, Field(ge=0)]
FeeBp = Annotated[StrictInt, Field(ge=0, le=10_000)]

__all__ = ["DeclineReason", "Direction", "OrderStatus"]  # re-exported for wire users


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    FAIL = "fail"


class _OrderMessage(Message):
    uid: uuid.UUID

    def message_key(self) -> str:
        return str(self.uid)


# --- commands ---------------------------------------------------------------------------


class _Command(_OrderMessage):
    """A command about one order, keyed by the order's desk (:mod:`schemas.desks`).

    ``desk`` is absent only in commands logged before ADR 0005 (keyed by uid then).
    """

    #: Ignored. Until ADR 0003 the agent answered such commands on ``order-replies``; the
    #: field stays so that commands already in the log still decode.
    reply: StrictBool = False
    desk: DeskKey | None = None

    def message_key(self) -> str:
        return self.desk or str(self.uid)


@register
class OpenOrder(_Command):
    """A partner asked for a deposit or a withdrawal; the API has authenticated it.

    The partner's terms at the moment of the request (fee rate, card pool) travel with the
    command, so a tariff change never races an order in flight.
    """

    TYPE = "order.open"

    partner_id: PartnerId
    partner_order_id: PartnerOrderId
    direction: Direction
    amount_minor: AmountMinor
    currency: Currency
    ttl_s: Annotated[StrictInt, Field(ge=MIN_TTL_S, le=MAX_TTL_S)]
    fee_bp: FeeBp
    pool_id: PoolId | None = None
    callback_url: str | None = None


@register
class AssignCard(_Command):
    """The pool agent reserved a card for a deposit."""

    TYPE = "order.assign_card"

    card_id: str = Field(min_length=1, max_length=64)
    card_masked: MaskedPan


@register
class MarkFundsHeld(_Command):
    """The partner agent holds a withdrawal's amount plus fee."""

    TYPE = "order.mark_funds_held"


@register
class DeclineOrder(_Command):
    """Resources could not be reserved; the order never becomes ``new``."""

    TYPE = "order.decline"

    reason: DeclineReason


@register
class ConfirmPayment(_Command):
    """The payer pressed "I have paid" (deposit) or gave their card (withdrawal).

    The full card number never travels in clear: ``payer_card_ciphertext`` is sealed by the
    API with the card key and opened only where a role needs it.
    """

    TYPE = "order.confirm_payment"

    payer_card_masked: MaskedPan | None = None
    payer_card_ciphertext: str | None = None


@register
class DecideOrder(_Command):
    """An operator's verdict on an order in ``processing``; ``decision_id`` names one click."""

    TYPE = "order.decide"

    verdict: Verdict
    operator: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)
    decision_id: uuid.UUID


@register
class CancelOrder(_Command):
    TYPE = "order.cancel"

    partner_id: PartnerId


@register
class ExpireOrder(_Command):
    """Raised by the order agent's timer when a ``new`` order outlives its TTL."""

    TYPE = "order.expire"


#: The most orders one ``desk.forget`` names (it stays far below Kafka's message size).
MAX_FORGET: Final = 500


@register
class ForgetOrders(Message):
    """Raised by the desk's retention timer: these finished orders of ``desk`` have been
    terminal for the retention period; take them out of the desk's table (ADR 0008).

    The desk checks each one again at the command's own instant, so a forget sent early or
    twice removes nothing that is not due. ``desk`` is absent only for orders recorded before
    ADR 0005 (keyed by uid then, one uid per forget).
    """

    TYPE = "desk.forget"

    desk: DeskKey | None = None
    uids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_FORGET)

    def message_key(self) -> str:
        return self.desk or str(self.uids[0])


# --- snapshot, replies and events -------------------------------------------------------


class OrderSnapshot(Message):
    """The order as it stands after an event; ``version`` grows by one per change."""

    TYPE = "order.snapshot"

    uid: uuid.UUID
    version: Annotated[StrictInt, Field(ge=1)]
    partner_id: PartnerId
    partner_order_id: PartnerOrderId
    direction: Direction
    status: OrderStatus
    amount_minor: AmountMinor
    fee_minor: NonNegativeMinor
    currency: Currency
    ttl_s: Annotated[StrictInt, Field(ge=MIN_TTL_S, le=MAX_TTL_S)]
    created_at_ms: EpochMs
    expires_at_ms: EpochMs
    updated_at_ms: EpochMs
    card_id: str | None = None
    card_masked: MaskedPan | None = None
    payer_card_masked: MaskedPan | None = None
    decline_reason: DeclineReason | None = None
    decided_by: str | None = None
    decision_id: str | None = None
    decision_reason: str | None = None
    #: The desk that owns the order (:mod:`schemas.desks`); None before ADR 0005.
    desk: DeskKey | None = None

    def message_key(self) -> str:
        return str(self.uid)

    def to_order(self) -> Order:
        """The core's order this snapshot shows (the constructor re-checks its invariants)."""
        values = {f.name: getattr(self, f.name) for f in fields(Order)}
        return Order(**(values | {"uid": str(self.uid)}))


class _OrderEvent(Message):
    order: OrderSnapshot

    def message_key(self) -> str:
        return str(self.order.uid)


@register
class OrderOpened(_OrderEvent):
    TYPE = "order.opened"

    pool_id: PoolId | None = None
    callback_url: str | None = None


@register
class OrderCreated(_OrderEvent):
    """Resources are reserved (card assigned / funds held); the payer may act.

    The first event of an order since ADR 0005 (the desk opens and reserves in one step, so
    ``order.opened`` is no longer published): it carries the order's callback URL.
    """

    TYPE = "order.created"

    callback_url: str | None = None


@register
class OrderDeclined(_OrderEvent):
    """Resources could not be reserved; like ``order.created``, a first event."""

    TYPE = "order.declined"

    callback_url: str | None = None


@register
class PaymentConfirmed(_OrderEvent):
    TYPE = "order.payment_confirmed"

    payer_card_ciphertext: str | None = None


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
