"""What an order publishes, and asks of the desk's other parts, as it stands: a pure function
of its table entry.

Outputs depend on the stored entry only (the order plus its routing facts), never on the
command that led there. That is what makes a repeated command safe: the desk re-publishes
the outputs of the current state and they come out identical, ids and bytes, to the first
time, so whatever a crash between the table write and the sends lost is sent again and
whatever was not lost is dropped downstream by id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from domain.ledger import PostingKind
from domain.orders import DeclineReason, Direction, Order, OrderStatus
from schemas import cards as wc
from schemas import ledger as wl
from schemas import orders as w
from schemas import turnover as wt
from schemas.envelope import Message
from schemas.topics import ORDER_EVENTS
from schemas.translation import order_from_dict, order_to_dict, wire_event
from stream_agents.wire import TO_LEDGER, TO_ORDER, TO_POOL, TO_TURNOVER, Out, message_id

_S = OrderStatus

#: Statuses an order only reaches after ``new``, i.e. with its card or its hold in place.
_CLOSED_AFTER_NEW = frozenset({_S.APPROVED, _S.REJECTED, _S.FAILED, _S.EXPIRED, _S.CANCELLED})


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEntry:
    """One row of the ``orders`` table: the order and what the core does not keep.

    ``payer_card_ciphertext`` is kept so that a re-published ``order.payment_confirmed``
    still carries it. (Entries written before ADR 0003 also hold ``waiting`` and
    ``answered``, the reply bookkeeping; they are ignored.)
    """

    order: Order
    desk: str | None = None
    pool_id: str | None = None
    callback_url: str | None = None
    payer_card_ciphertext: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **order_to_dict(self.order),
            "desk": self.desk,
            "pool_id": self.pool_id,
            "callback_url": self.callback_url,
            "payer_card_ciphertext": self.payer_card_ciphertext,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderEntry:
        return cls(
            order=order_from_dict(data),
            desk=data.get("desk"),
            pool_id=data.get("pool_id"),
            callback_url=data.get("callback_url"),
            payer_card_ciphertext=data.get("payer_card_ciphertext"),
        )


def state_outputs(entry: OrderEntry) -> list[Out]:
    """The event of the current version and the side requests it implies."""
    order = entry.order
    event = wire_event(
        order,
        desk=entry.desk,
        pool_id=entry.pool_id,
        callback_url=entry.callback_url,
        payer_card_ciphertext=entry.payer_card_ciphertext,
    )
    return [_out(ORDER_EVENTS.name, event, order, event.TYPE), *_side_requests(entry)]


def _side_requests(entry: OrderEntry) -> list[Out]:
    order, status = entry.order, entry.order.status
    if status is _S.PENDING:
        return [_reserve(entry)]
    if status not in _CLOSED_AFTER_NEW:
        # new: nothing to ask; processing: the operators' queue is PostgreSQL's processing
        # rows, written from the event; declined: nothing was reserved
        return []
    approved = status is _S.APPROVED
    if order.direction is Direction.WITHDRAWAL:
        return [_ledger(order, PostingKind.CAPTURE if approved else PostingKind.RELEASE)]
    outputs = [_ledger(order, PostingKind.DEPOSIT_CREDIT)] if approved else []
    if order.card_id is not None and entry.pool_id is not None:
        outputs.append(release_card(entry.pool_id, order, order.card_id, approved=approved))
        if approved:
            outputs.append(_movement(order, order.card_id))
    return outputs


def _movement(order: Order, card_id: str) -> Out:
    """An approved deposit as money IN on its card, at the approval's time, for the turnover
    windows. (Withdrawals name no platform card: the payout leaves from outside Keeper.)"""
    movement = wt.CardMovement(
        card_id=card_id,
        uid=uuid.UUID(order.uid),
        amount_minor=order.amount_minor,
        currency=order.currency,
        occurred_at_ms=order.updated_at_ms,
    )
    return _out(TO_TURNOVER, movement, order, movement.TYPE)


def held_again(entry: OrderEntry) -> list[Out]:
    """The hold of a withdrawal past ``pending``, asked again of the ledger, which re-publishes
    its posting: for a command redelivered after a crash that kept the order's write but lost
    the messages of that batch (the order's own outputs re-publish everything else)."""
    order = entry.order
    if order.direction is not Direction.WITHDRAWAL or order.status in (_S.PENDING, _S.DECLINED):
        return []
    return [_ledger(order, PostingKind.HOLD)]


def _reserve(entry: OrderEntry) -> Out:
    """A pending order asks for its resource: a card (deposit) or a hold (withdrawal).

    A deposit without a card pool can never get a card, so the agent declines it by sending
    itself ``order.decline``: one command, one event, and this output stays a function of
    the pending state, so a re-publication repeats it too.
    """
    order = entry.order
    if order.direction is Direction.WITHDRAWAL:
        return _ledger(order, PostingKind.HOLD)
    if entry.pool_id is None:
        decline = w.DeclineOrder(uid=uuid.UUID(order.uid), reason=DeclineReason.NO_REQUISITE)
        return _out(TO_ORDER, decline, order, decline.TYPE, decline.reason)
    request = wc.RequestCard(
        pool_id=entry.pool_id,
        uid=uuid.UUID(order.uid),
        amount_minor=order.amount_minor,
        currency=order.currency,
    )
    return _out(TO_POOL, request, order)


def _ledger(order: Order, kind: PostingKind) -> Out:
    op = wl.ApplyLedgerOp(
        partner_id=order.partner_id,
        uid=uuid.UUID(order.uid),
        currency=order.currency,
        op=kind,
        amount_minor=order.amount_minor,
        fee_minor=order.fee_minor,
    )
    return _out(TO_LEDGER, op, order, op.TYPE, kind)


def release_card(pool_id: str, order: Order, card_id: str, *, approved: bool) -> Out:
    """Free ``card_id`` of ``order`` in its pool (adding to the card's turnover if approved)."""
    release = wc.ReleaseCard(
        pool_id=pool_id,
        uid=uuid.UUID(order.uid),
        card_id=card_id,
        amount_minor=order.amount_minor,
        approved=approved,
    )
    return _out(TO_POOL, release, order, release.TYPE, card_id)


def _out(topic: str, message: Message, order: Order, *id_parts: object) -> Out:
    """An output of ``order``'s current version, its id derived from uid and version."""
    parts = id_parts or (message.TYPE,)
    return Out(topic, message, message_id(order.uid, order.version, *parts), order.updated_at_ms)
