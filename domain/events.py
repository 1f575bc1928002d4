"""Events: facts about an order, named in the past tense.

Each event records the order ``version`` it produced, so consumers can apply events in
order and drop stale or repeated ones by comparing versions. Events carry only what
changed; :func:`domain.lifecycle.apply` also returns the whole order after the change,
which is what an adapter publishes as a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from domain.orders import DeclineReason, Direction, OrderStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event has: which order, which version it produced, and when."""

    uid: str
    version: int
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderOpened(Event):
    """The order was accepted as ``pending``; its terms are now fixed."""

    partner_id: str
    partner_order_id: str
    direction: Direction
    amount_minor: int
    fee_minor: int
    currency: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCreated(Event):
    """Resources are reserved and the order is ``new``: the payer may act.

    For a deposit ``card_id``/``card_masked`` name the card to pay to; for a withdrawal
    they are ``None`` and the event means the partner's funds are held.
    """

    card_id: str | None
    card_masked: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDeclined(Event):
    reason: DeclineReason


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentConfirmed(Event):
    """The order is ``processing`` and waits for an operator."""

    payer_card_masked: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDecided(Event):
    """An operator's verdict closed the order (base of the three verdict events)."""

    operator: str
    decision_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderApproved(OrderDecided):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderDecided):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFailed(OrderDecided):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(Event):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    pass


#: The status each event leaves its order in.
STATUS_AFTER: Final[MappingProxyType[type[Event], OrderStatus]] = MappingProxyType(
    {
        OrderOpened: OrderStatus.PENDING,
        OrderCreated: OrderStatus.NEW,
        OrderDeclined: OrderStatus.DECLINED,
        PaymentConfirmed: OrderStatus.PROCESSING,
        OrderApproved: OrderStatus.APPROVED,
        OrderRejected: OrderStatus.REJECTED,
        OrderFailed: OrderStatus.FAILED,
        OrderExpired: OrderStatus.EXPIRED,
        OrderCancelled: OrderStatus.CANCELLED,
    }
)
