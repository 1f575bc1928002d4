"""The desk's order part: the only owner of order state (entries ``order/<uid>``).

:func:`handle` is the whole protocol as a pure function of (entry, instant, command); the
desk (:mod:`stream_agents.desk.step`) reads the entry, writes the result and routes the
outputs. Every command is applied by :func:`domain.apply` with ``at_ms`` taken from its
envelope, so the desk never reads a clock for a decision. A refused command changes nothing
and publishes nothing; a repeated one re-publishes the outputs of the current state (see
:mod:`stream_agents.desk.outputs`). Nobody waits for a reply: the API learns outcomes from
``order-events`` (ADR 0003).

Expiry: the desk keeps an index of the deadlines of its ``new`` orders (:func:`deadline_of`);
a timer turns each passed deadline into ``order.expire``, dated at the deadline itself, so a
repeated expiry is byte-identical and the core treats it as a repeat (or refuses it once the
payer confirmed in time).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

import domain
from domain.errors import DomainError
from domain.orders import Order, OrderStatus
from schemas import orders as w
from schemas.topics import ORDER_COMMANDS
from schemas.translation import OrderCommand, event_matches, to_command
from stream_agents.desk.outputs import OrderEntry, release_card, state_outputs
from stream_agents.wire import Out, message_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one command: the entry after it, whether to store it, what to send."""

    entry: OrderEntry | None
    changed: bool
    outputs: list[Out]


def handle(entry: OrderEntry | None, at_ms: int, message: OrderCommand) -> Step:
    """Apply one command, issued at ``at_ms``, to the order's entry (``None``: no order yet).

    A refused command publishes nothing (the API judges commands with the same core against
    the events it reads, ADR 0003), except that a card the order did not take is released.
    """
    try:
        order, events = domain.apply(entry.order if entry else None, to_command(message, at_ms))
    except DomainError:
        return Step(entry, False, _refusal(entry, message))
    if events:
        assert len(events) == 1, events
        assert event_matches(order, events[0]), events
        entry = _advance(entry, order, message)
    assert entry is not None
    return Step(entry, bool(events), state_outputs(entry))


def _advance(entry: OrderEntry | None, order: Order, message: OrderCommand) -> OrderEntry:
    """The entry for the order's new version, with routing facts from the command."""
    if entry is None:
        assert isinstance(message, w.OpenOrder)
        entry = OrderEntry(
            order=order,
            desk=message.desk,
            pool_id=message.pool_id,
            callback_url=message.callback_url,
        )
    if isinstance(message, w.ConfirmPayment):
        entry = replace(entry, payer_card_ciphertext=message.payer_card_ciphertext)
    return replace(entry, order=order)


def _refusal(entry: OrderEntry | None, message: OrderCommand) -> list[Out]:
    if not isinstance(message, w.AssignCard):
        return []
    # The pool reserved a card the order did not take (it moved on, or holds another card):
    # free it, or the card stays occupied forever. The same card is the order's own,
    # assigned twice; the order releases it itself when it closes.
    order = entry.order if entry is not None else None
    if entry is not None and order is not None and entry.pool_id is not None:
        if order.card_id != message.card_id:
            return [release_card(entry.pool_id, order, message.card_id, approved=False)]
        return []
    log.warning("card %s assigned to unknown order %s", message.card_id, message.uid)
    return []


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a ``new`` order expires, and the desk its ``order.expire`` goes to."""

    expires_at_ms: int
    desk: str | None


def deadline_of(entry: OrderEntry) -> Deadline | None:
    """The order's deadline while it can expire (only ``new`` orders do)."""
    if entry.order.status is not OrderStatus.NEW:
        return None
    return Deadline(entry.order.expires_at_ms, entry.desk)


def due_expiries(deadlines: Iterable[tuple[str, Deadline]], now_ms: int) -> list[Out]:
    """``order.expire`` for every deadline at or before ``now_ms``, dated at the deadline."""
    return [
        Out(
            ORDER_COMMANDS.name,
            w.ExpireOrder(uid=uuid.UUID(uid), desk=deadline.desk),
            message_id(uid, w.ExpireOrder.TYPE, deadline.expires_at_ms),
            deadline.expires_at_ms,
        )
        for uid, deadline in deadlines
        if deadline.expires_at_ms <= now_ms
    ]
