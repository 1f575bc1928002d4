"""Builders shared by the domain tests: orders driven to any status through ``apply``.

Orders are never constructed field by field here: reaching a status through the real
commands keeps the tests honest about how an order can get there.
"""

from __future__ import annotations

from typing import Any

from domain.commands import (
    ApproveOrder,
    AssignCard,
    CancelOrder,
    Command,
    ConfirmPayment,
    DeclineOrder,
    ExpireOrder,
    FailOrder,
    HoldFunds,
    OpenOrder,
    RejectOrder,
)
from domain.events import Event
from domain.lifecycle import apply
from domain.orders import DeclineReason, Direction, Order, OrderStatus

T0 = 1_764_300_000_000  # 2025-11-28T03:20:00Z, an arbitrary fixed instant
TTL_S = 900
UID = "3f2b8c1e-8d4a-8c7e-9a1b-2c3d4e5f6a7b"
PARTNER = "acme"
CARD_MASKED = "220220******1234"
PAYER_CARD = "411111******1111"
OTHER_PAYER_CARD = "550000******0004"


def open_order(direction: Direction = Direction.DEPOSIT, **overrides: Any) -> OpenOrder:
    fields: dict[str, Any] = {
        "uid": UID,
        "at_ms": T0,
        "partner_id": PARTNER,
        "partner_order_id": "inv-1001",
        "direction": direction,
        "amount_minor": 150_000,
        "fee_bp": 200,
        "currency": "RUB",
        "ttl_s": TTL_S,
    }
    return OpenOrder(**(fields | overrides))


def reserve(order: Order, at_ms: int = T0 + 1_000) -> Command:
    """The command that moves ``order`` from pending to new, for its direction."""
    if order.direction is Direction.DEPOSIT:
        return AssignCard(uid=order.uid, at_ms=at_ms, card_id="card-1", card_masked=CARD_MASKED)
    return HoldFunds(uid=order.uid, at_ms=at_ms)


def run(order: Order | None, *commands: Command) -> Order:
    for command in commands:
        order, _ = apply(order, command)
    assert order is not None
    return order


def order_in(status: OrderStatus, direction: Direction = Direction.DEPOSIT) -> Order:
    """An order of ``direction`` brought to ``status`` through the shortest legal path."""
    return step_into(status, direction)[0]


def step_into(
    status: OrderStatus, direction: Direction = Direction.DEPOSIT
) -> tuple[Order, list[Event]]:
    """Like :func:`order_in`, also returning the events of the last step."""
    order, events = apply(None, open_order(direction))
    if status is OrderStatus.PENDING:
        return order, events
    if status is OrderStatus.DECLINED:
        reason = DeclineReason.NO_REQUISITE
        return apply(order, DeclineOrder(uid=UID, at_ms=T0 + 1_000, reason=reason))
    order, events = apply(order, reserve(order))
    if status is OrderStatus.NEW:
        return order, events
    if status is OrderStatus.EXPIRED:
        return apply(order, ExpireOrder(uid=UID, at_ms=order.expires_at_ms))
    if status is OrderStatus.CANCELLED:
        return apply(order, CancelOrder(uid=UID, at_ms=T0 + 2_000, partner_id=PARTNER))
    confirm = ConfirmPayment(uid=UID, at_ms=T0 + 2_000, payer_card_masked=PAYER_CARD)
    order, events = apply(order, confirm)
    if status is OrderStatus.PROCESSING:
        return order, events
    verdict = {
        OrderStatus.APPROVED: ApproveOrder,
        OrderStatus.REJECTED: RejectOrder,
        OrderStatus.FAILED: FailOrder,
    }[status]
    return apply(order, verdict(uid=UID, at_ms=T0 + 3_000, operator="olga", decision_id="d-1"))
