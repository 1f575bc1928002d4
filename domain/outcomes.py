"""What a command's sender can conclude from an order as it stands, without asking the owner.

The order agent alone changes orders, and every change is published with the whole order
and its version. Whoever sends a command (the API) can therefore judge it against the newest
version it has seen, before sending and again at every later version:

- :class:`Refused`: the command is illegal against this version (unknown order, illegal
  transition, another partner's order, different terms ...). Refused once, it stays refused
  at every later version, because ``apply`` refuses by the order's facts alone.
- :class:`Done`: the command has taken effect in this version: the order is in exactly the
  state it leads to, with the same facts (``apply`` calls it a repeat). For an opening, the
  order must also have left ``pending``: the partner waits for a card or a hold.
- :data:`AWAITING`: legal, not applied yet: send it, and judge the next version.

Judging reuses :func:`domain.lifecycle.apply` itself, so the sender and the owner can never
disagree about what is legal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from domain.commands import Command, OpenOrder
from domain.errors import DomainError, IllegalTransition
from domain.lifecycle import apply
from domain.orders import Order, OrderStatus


@dataclass(frozen=True, slots=True)
class Done:
    """The command took effect; ``order`` is the version that shows it."""

    order: Order


@dataclass(frozen=True, slots=True)
class Refused:
    """The command is illegal against ``order`` (``None``: no such order)."""

    error: DomainError
    order: Order | None

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        return explain(self.order, self.error)


@dataclass(frozen=True, slots=True)
class Awaiting:
    """Legal and not yet applied: the next version decides."""


AWAITING: Final = Awaiting()

Judgement = Done | Refused | Awaiting


def judge(order: Order | None, command: Command) -> Judgement:
    """Judge ``command`` against ``order``, the newest version seen (``None``: none seen)."""
    try:
        _, events = apply(order, command)
    except DomainError as exc:
        return Refused(exc, order)
    if events or order is None:
        return AWAITING
    if isinstance(command, OpenOrder) and order.status is OrderStatus.PENDING:
        return AWAITING  # opened, its card or hold still being reserved
    return Done(order)


def explain(order: Order | None, exc: DomainError) -> str:
    """A refusal in words a partner or operator understands, with what the order is now."""
    if isinstance(exc, IllegalTransition) and order is not None:
        text = f"{exc.message}: the order is {order.status}"
        if order.decided_by is not None:
            at = datetime.fromtimestamp(order.updated_at_ms / 1000, UTC)
            text += f", decided by {order.decided_by} at {at:%Y-%m-%d %H:%M:%S} UTC"
        return text
    return exc.message
