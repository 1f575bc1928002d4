"""Translation between the wire (``schemas``) and the pure core (``domain``), and outgoing messages.

Agents are thin: decode, translate, call the core, translate back, send. Everything that
translates lives here so that each agent module reads as its protocol only.

Determinism. Every message an agent sends gets its ``message_id`` from :func:`message_id`
(a UUIDv5 of the facts it states) and its ``occurred_at`` from a time already recorded in the
state or the triggering message, never from the clock. A re-publication after a crash or a
redelivered command is therefore byte-identical to the first, and every consumer downstream
can drop it by id.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, get_args

import domain
from domain.events import STATUS_AFTER
from domain.orders import DeclineReason, Direction, Order, OrderStatus
from schemas import orders as w
from schemas.envelope import Message
from schemas.registry import encode

#: Namespace of every id the agents derive; changing it would break deduplication downstream.
NAMESPACE: Final = uuid.UUID("6f1c0d52-3a57-4e0b-9a39-2b1f5d9c7e10")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def message_id(*parts: object) -> uuid.UUID:
    """The id of the message that states ``parts`` (e.g. uid, version, type)."""
    return uuid.uuid5(NAMESPACE, ":".join(str(part) for part in parts))


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds, without a float round trip."""
    return (moment - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


#: Where the parts of one desk step address each other (ADR 0005): the order, its pool's
#: cards, the partner's ledger, the cards' turnover. An :class:`Out` to one of these is
#: handled within the same step, never sent.
TO_ORDER: Final = "desk/order"
TO_POOL: Final = "desk/pool"
TO_LEDGER: Final = "desk/ledger"
TO_TURNOVER: Final = "desk/turnover"
WITHIN_DESK: Final = frozenset({TO_ORDER, TO_POOL, TO_LEDGER, TO_TURNOVER})


@dataclass(frozen=True, slots=True)
class Out:
    """One message: to a catalogue topic (unprefixed name), or within the desk
    (:data:`TO_ORDER`, :data:`TO_POOL`, :data:`TO_LEDGER`), and the enveloped payload."""

    topic: str
    message: Message
    message_id: uuid.UUID
    occurred_at_ms: int

    @property
    def key(self) -> bytes:
        return self.message.message_key().encode()

    def encode(self) -> bytes:
        return encode(
            self.message,
            message_id=self.message_id,
            occurred_at=from_epoch_ms(self.occurred_at_ms),
        )


# --- orders: table storage and snapshots -------------------------------------------------

_ENUMS: Final = MappingProxyType(
    {"direction": Direction, "status": OrderStatus, "decline_reason": DeclineReason}
)


def order_to_dict(order: Order) -> dict[str, Any]:
    """The order as JSON-ready values, for a table entry."""
    return {f.name: getattr(order, f.name) for f in fields(order)}


def order_from_dict(data: dict[str, Any]) -> Order:
    """Rebuild an order from a table entry; the constructor re-checks its invariants."""
    values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(Order)}
    for name, enum in _ENUMS.items():
        if values[name] is not None:
            values[name] = enum(values[name])
    return Order(**values)


def snapshot(order: Order, desk: str | None = None) -> w.OrderSnapshot:
    values = order_to_dict(order)
    values["uid"] = uuid.UUID(order.uid)
    return w.OrderSnapshot(**values, desk=desk)


# --- commands ------------------------------------------------------------------------------

_VERDICTS: Final = MappingProxyType(
    {
        w.Verdict.APPROVE: domain.ApproveOrder,
        w.Verdict.REJECT: domain.RejectOrder,
        w.Verdict.FAIL: domain.FailOrder,
    }
)


#: Every message the order agent accepts on ``order-commands``.
OrderCommand = (
    w.OpenOrder
    | w.AssignCard
    | w.MarkFundsHeld
    | w.DeclineOrder
    | w.ConfirmPayment
    | w.DecideOrder
    | w.CancelOrder
    | w.ExpireOrder
)
ORDER_COMMAND_TYPES: Final = get_args(OrderCommand)


def to_command(message: OrderCommand, at_ms: int) -> domain.Command:
    """The core's command for a wire command issued at ``at_ms``.

    Raises :class:`~domain.DomainError` when a field breaks a core rule the wire schema does
    not know.
    """
    uid = str(message.uid)
    if isinstance(message, w.OpenOrder):
        return domain.OpenOrder(
            uid=uid,
            at_ms=at_ms,
            partner_id=message.partner_id,
            partner_order_id=message.partner_order_id,
            direction=message.direction,
            amount_minor=message.amount_minor,
            fee_bp=message.fee_bp,
            currency=message.currency,
            ttl_s=message.ttl_s,
        )
    if isinstance(message, w.AssignCard):
        return domain.AssignCard(
            uid=uid, at_ms=at_ms, card_id=message.card_id, card_masked=message.card_masked
        )
    if isinstance(message, w.MarkFundsHeld):
        return domain.HoldFunds(uid=uid, at_ms=at_ms)
    if isinstance(message, w.DeclineOrder):
        return domain.DeclineOrder(uid=uid, at_ms=at_ms, reason=message.reason)
    if isinstance(message, w.ConfirmPayment):
        return domain.ConfirmPayment(
            uid=uid, at_ms=at_ms, payer_card_masked=message.payer_card_masked
        )
    if isinstance(message, w.DecideOrder):
        return _VERDICTS[message.verdict](
            uid=uid,
            at_ms=at_ms,
            operator=message.operator,
            decision_id=str(message.decision_id),
            reason=message.reason,
        )
    if isinstance(message, w.CancelOrder):
        return domain.CancelOrder(uid=uid, at_ms=at_ms, partner_id=message.partner_id)
    assert isinstance(message, w.ExpireOrder), type(message)
    return domain.ExpireOrder(uid=uid, at_ms=at_ms)


# --- events --------------------------------------------------------------------------------

#: The wire event that announces an order reaching each status. One command yields one
#: event and each event leads to one status, so the status after a change names its event;
#: that is what lets a re-publication rebuild the event from the stored order alone.
EVENT_BY_STATUS: Final[MappingProxyType[OrderStatus, type[w._OrderEvent]]] = MappingProxyType(
    {
        OrderStatus.PENDING: w.OrderOpened,
        OrderStatus.NEW: w.OrderCreated,
        OrderStatus.DECLINED: w.OrderDeclined,
        OrderStatus.PROCESSING: w.PaymentConfirmed,
        OrderStatus.APPROVED: w.OrderApproved,
        OrderStatus.REJECTED: w.OrderRejected,
        OrderStatus.FAILED: w.OrderFailed,
        OrderStatus.EXPIRED: w.OrderExpired,
        OrderStatus.CANCELLED: w.OrderCancelled,
    }
)


def wire_event(
    order: Order,
    *,
    desk: str | None = None,
    pool_id: str | None = None,
    callback_url: str | None = None,
    payer_card_ciphertext: str | None = None,
) -> w._OrderEvent:
    """The event that brought ``order`` to its current status and version."""
    cls = EVENT_BY_STATUS[order.status]
    order_snapshot = snapshot(order, desk)
    if cls is w.OrderOpened:
        return w.OrderOpened(order=order_snapshot, pool_id=pool_id, callback_url=callback_url)
    if cls is w.OrderCreated or cls is w.OrderDeclined:
        return cls(order=order_snapshot, callback_url=callback_url)
    if cls is w.PaymentConfirmed:
        return w.PaymentConfirmed(order=order_snapshot, payer_card_ciphertext=payer_card_ciphertext)
    return cls(order=order_snapshot)


def event_matches(order: Order, event: domain.Event) -> bool:
    """True if ``event`` is the one :func:`wire_event` rebuilds for ``order`` (a sanity check)."""
    return event.version == order.version and STATUS_AFTER[type(event)] is order.status


def epoch_ms_now() -> int:
    """The wall clock as epoch milliseconds: only for timers, never for a decision."""
    return time.time_ns() // 1_000_000
