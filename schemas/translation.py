"""Translation between the wire (``schemas``) and the pure core (``domain``).

Everything that turns a wire message into a core value, or a core value into a wire
message, lives here: orders as table entries and snapshots, the order commands, the event
that announces each status, and times as epoch milliseconds. The agents and the API both
translate with it, so a command means the same to the API that answers it and to the desk
that applies it, and neither imports the other to agree. It is pure: no I/O, no clock.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, get_args

import domain
from domain.events import STATUS_AFTER
from domain.orders import DeclineReason, Direction, Order, OrderStatus
from schemas import orders as w

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds, without a float round trip."""
    return (moment - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


# --- orders: table storage and snapshots -------------------------------------------------

_ENUMS: Final = MappingProxyType(
    {"direction": Direction, "status": OrderStatus, "decline_reason": DeclineReason}
)


#: The order's fields, once: ``dataclasses.fields`` builds its tuple anew on every call.
_ORDER_FIELDS: Final = tuple(f.name for f in fields(Order))


def order_to_dict(order: Order) -> dict[str, Any]:
    """The order as JSON-ready values, for a table entry."""
    return {name: getattr(order, name) for name in _ORDER_FIELDS}


def order_from_dict(data: dict[str, Any]) -> Order:
    """Rebuild an order from a table entry; the constructor re-checks its invariants."""
    values: dict[str, Any] = {name: data.get(name) for name in _ORDER_FIELDS}
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
