"""``apply``: the order state machine as one pure function.

``apply(order, command)`` returns the order after the command and the events it produced,
or raises a :class:`~domain.errors.DomainError` and changes nothing. Checks run from the
cheapest to the most specific: does the command belong to this order, is it a repeat, is
the transition in :data:`~domain.orders.TRANSITIONS`, do the command's guards hold.

Idempotency. Kafka delivers at least once, so every command may arrive twice. A command
that already took effect (:func:`is_duplicate`) returns ``(order, [])``: same order, same
version, no events, so a consumer can ack it and move on. "Took effect" is strict: the
order is in exactly the status the command leads to, with the same recorded facts (same
card, same decline reason, same payer card, same ``decision_id``). Anything else that does
not fit the table, such as an approval after another operator's rejection or an approval by
a different decision, raises :class:`~domain.errors.IllegalTransition` with the current
status, so the caller sees what actually happened to the order.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Final

from domain.commands import (
    ApproveOrder,
    AssignCard,
    CancelOrder,
    Command,
    ConfirmPayment,
    DecideOrder,
    DeclineOrder,
    ExpireOrder,
    FailOrder,
    HoldFunds,
    OpenOrder,
    RejectOrder,
)
from domain.errors import (
    DeadlinePassed,
    DirectionMismatch,
    IllegalTransition,
    NotYetExpired,
    OrderConflict,
    OrderMismatch,
    OrderNotFound,
    PayerCardRequired,
)
from domain.events import (
    Event,
    OrderApproved,
    OrderCancelled,
    OrderCreated,
    OrderDecided,
    OrderDeclined,
    OrderExpired,
    OrderFailed,
    OrderOpened,
    OrderRejected,
    PaymentConfirmed,
)
from domain.money import fee_minor
from domain.orders import Direction, Order, OrderStatus, can_transition

_S = OrderStatus

#: The status each command moves an existing order to.
TARGET: Final[MappingProxyType[type[Command], OrderStatus]] = MappingProxyType(
    {
        AssignCard: _S.NEW,
        HoldFunds: _S.NEW,
        DeclineOrder: _S.DECLINED,
        ConfirmPayment: _S.PROCESSING,
        ApproveOrder: _S.APPROVED,
        RejectOrder: _S.REJECTED,
        FailOrder: _S.FAILED,
        ExpireOrder: _S.EXPIRED,
        CancelOrder: _S.CANCELLED,
    }
)

#: The event each operator verdict produces.
_DECIDED: Final[MappingProxyType[type[Command], type[OrderDecided]]] = MappingProxyType(
    {ApproveOrder: OrderApproved, RejectOrder: OrderRejected, FailOrder: OrderFailed}
)

#: Commands valid for one direction only.
_DIRECTION: Final[MappingProxyType[type[Command], Direction]] = MappingProxyType(
    {AssignCard: Direction.DEPOSIT, HoldFunds: Direction.WITHDRAWAL}
)


def apply(order: Order | None, command: Command) -> tuple[Order, list[Event]]:
    """Apply ``command`` to ``order`` (``None`` if it does not exist yet).

    Each applied command raises ``version`` by exactly one and yields exactly one event;
    a repeat yields none and leaves the order untouched.
    """
    if isinstance(command, OpenOrder):
        return _open(order, command)
    target = TARGET.get(type(command))
    if target is None:
        raise TypeError(f"not an order command: {type(command).__name__}")
    if order is None:
        raise OrderNotFound(f"order {command.uid} does not exist")
    _check_belongs(order, command)
    if is_duplicate(order, command):
        return order, []
    if not can_transition(order.status, target):
        raise IllegalTransition(order.status, target, type(command).__name__)
    return _step(order, command, target)


def is_duplicate(order: Order | None, command: Command) -> bool:
    """True if ``command`` already took effect on ``order`` (see the module docstring).

    A repeated :class:`OpenOrder` compares only the terms the partner chose (partner,
    partner order id, direction, amount, currency, TTL): the fee rate is Keeper's tariff
    and may have changed between the original request and its retry.
    """
    if order is None or command.uid != order.uid:
        return False
    if isinstance(command, OpenOrder):
        return _same_terms(order, command)
    if order.status is not TARGET.get(type(command)):
        return False
    if isinstance(command, AssignCard):
        return order.card_id == command.card_id and order.card_masked == command.card_masked
    if isinstance(command, DeclineOrder):
        return order.decline_reason is command.reason
    if isinstance(command, ConfirmPayment):
        return order.payer_card_masked == command.payer_card_masked
    if isinstance(command, DecideOrder):
        return order.decision_id == command.decision_id
    return True  # HoldFunds, ExpireOrder, CancelOrder: the status is the whole effect


def _same_terms(order: Order, command: OpenOrder) -> bool:
    return (
        order.partner_id == command.partner_id
        and order.partner_order_id == command.partner_order_id
        and order.direction is command.direction
        and order.amount_minor == command.amount_minor
        and order.currency == command.currency
        and order.ttl_s == command.ttl_s
    )


def _open(order: Order | None, command: OpenOrder) -> tuple[Order, list[Event]]:
    if order is not None:
        _check_belongs(order, command)
        if is_duplicate(order, command):
            return order, []
        raise OrderConflict(f"order {command.uid} exists with different terms")
    opened = Order(
        uid=command.uid,
        version=1,
        partner_id=command.partner_id,
        partner_order_id=command.partner_order_id,
        direction=command.direction,
        status=_S.PENDING,
        amount_minor=command.amount_minor,
        fee_minor=fee_minor(command.amount_minor, command.fee_bp),
        currency=command.currency,
        ttl_s=command.ttl_s,
        created_at_ms=command.at_ms,
        expires_at_ms=command.at_ms + command.ttl_s * 1000,
        updated_at_ms=command.at_ms,
    )
    event = OrderOpened(
        uid=opened.uid,
        version=opened.version,
        at_ms=command.at_ms,
        partner_id=opened.partner_id,
        partner_order_id=opened.partner_order_id,
        direction=opened.direction,
        amount_minor=opened.amount_minor,
        fee_minor=opened.fee_minor,
        currency=opened.currency,
        expires_at_ms=opened.expires_at_ms,
    )
    return opened, [event]


def _check_belongs(order: Order, command: Command) -> None:
    """Refuse commands aimed at another order, owner or direction, whatever the status."""
    if command.uid != order.uid:
        raise OrderMismatch(f"command for {command.uid} applied to order {order.uid}")
    if isinstance(command, CancelOrder) and command.partner_id != order.partner_id:
        raise OrderMismatch(f"partner {command.partner_id} does not own order {order.uid}")
    direction = _DIRECTION.get(type(command))
    if direction is not None and direction is not order.direction:
        raise DirectionMismatch(f"{type(command).__name__} needs a {direction} order")


def _step(order: Order, command: Command, target: OrderStatus) -> tuple[Order, list[Event]]:
    """Make the (legal) transition after checking the command's own guards."""
    uid, version, at_ms = order.uid, order.version + 1, command.at_ms
    moved = replace(order, status=target, version=version, updated_at_ms=at_ms)
    event: Event
    if isinstance(command, AssignCard):
        moved = replace(moved, card_id=command.card_id, card_masked=command.card_masked)
        event = OrderCreated(
            uid=uid,
            version=version,
            at_ms=at_ms,
            card_id=command.card_id,
            card_masked=command.card_masked,
        )
    elif isinstance(command, HoldFunds):
        event = OrderCreated(uid=uid, version=version, at_ms=at_ms, card_id=None, card_masked=None)
    elif isinstance(command, DeclineOrder):
        moved = replace(moved, decline_reason=command.reason)
        event = OrderDeclined(uid=uid, version=version, at_ms=at_ms, reason=command.reason)
    elif isinstance(command, ConfirmPayment):
        if at_ms >= order.expires_at_ms:
            raise DeadlinePassed(f"order {uid} expired at {order.expires_at_ms}")
        if order.direction is Direction.WITHDRAWAL and command.payer_card_masked is None:
            raise PayerCardRequired("a withdrawal needs the card to pay to")
        moved = replace(moved, payer_card_masked=command.payer_card_masked)
        event = PaymentConfirmed(
            uid=uid, version=version, at_ms=at_ms, payer_card_masked=command.payer_card_masked
        )
    elif isinstance(command, DecideOrder):
        moved = replace(
            moved,
            decided_by=command.operator,
            decision_id=command.decision_id,
            decision_reason=command.reason,
        )
        event = _DECIDED[type(command)](
            uid=uid,
            version=version,
            at_ms=at_ms,
            operator=command.operator,
            decision_id=command.decision_id,
            reason=command.reason,
        )
    elif isinstance(command, ExpireOrder):
        if at_ms < order.expires_at_ms:
            raise NotYetExpired(f"order {uid} expires at {order.expires_at_ms}")
        event = OrderExpired(uid=uid, version=version, at_ms=at_ms)
    else:
        assert isinstance(command, CancelOrder), type(command)
        event = OrderCancelled(uid=uid, version=version, at_ms=at_ms)
    return moved, [event]
