"""The order agent: the only owner of order state (``order-commands`` → table ``orders``).

:func:`handle` is the whole protocol as a pure function of (entry, envelope, command); the
Faust agent in :func:`install` only reads the entry, writes the result and sends the outputs.
Every command is applied by :func:`domain.apply` with ``at_ms`` taken from its envelope, so
the agent never reads a clock for a decision. A refused command changes nothing and publishes
nothing; a repeated one re-publishes the outputs of the current state (see
:mod:`stream_agents.order_outputs`). Nobody waits for a reply: the API learns outcomes from
``order-events`` (ADR 0003).

Expiry: table ``deadlines`` holds ``uid → expires_at_ms`` for orders in ``new``; a timer turns
each passed deadline into ``order.expire``, dated at the deadline itself, so a repeated
expiry is byte-identical and the core treats it as a repeat (or refuses it once the payer
confirmed in time).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

import faust

import domain
from domain.errors import DomainError
from domain.orders import Order, OrderStatus
from schemas import orders as w
from schemas.envelope import Envelope, Message
from schemas.topics import ORDER_COMMANDS
from stream_agents.bus import Bus
from stream_agents.order_outputs import OrderEntry, release_card, state_outputs
from stream_agents.settings import AgentSettings
from stream_agents.wire import (
    ORDER_COMMAND_TYPES,
    OrderCommand,
    Out,
    epoch_ms,
    event_matches,
    message_id,
    to_command,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    """The result of one command: the entry after it, whether to store it, what to send."""

    entry: OrderEntry | None
    changed: bool
    outputs: list[Out]

    @property
    def deadline_ms(self) -> int | None:
        """The expiry deadline to keep for this order: only ``new`` orders can expire."""
        order = self.entry.order if self.entry is not None else None
        if order is None or order.status is not OrderStatus.NEW:
            return None
        return order.expires_at_ms


def handle(entry: OrderEntry | None, env: Envelope, message: OrderCommand) -> Step:
    """Apply one command to the order's entry (``None`` if the order does not exist).

    A refused command publishes nothing (the API judges commands with the same core against
    the events it reads, ADR 0003), except that a card the order did not take is released.
    """
    at_ms = epoch_ms(env.occurred_at)
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
        entry = OrderEntry(order=order, pool_id=message.pool_id, callback_url=message.callback_url)
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


def due_expiries(deadlines: Iterable[tuple[str, int]], now_ms: int) -> list[Out]:
    """``order.expire`` for every deadline at or before ``now_ms``, dated at the deadline."""
    return [
        Out(
            ORDER_COMMANDS.name,
            w.ExpireOrder(uid=uuid.UUID(uid)),
            message_id(uid, w.ExpireOrder.TYPE, deadline),
            deadline,
        )
        for uid, deadline in deadlines
        if deadline <= now_ms
    ]


def install(app: faust.App, bus: Bus, settings: AgentSettings) -> None:
    """Declare the ``orders`` and ``deadlines`` tables, the agent and the expiry timer."""
    partitions = ORDER_COMMANDS.partitions
    orders = app.Table("orders", key_type=str, partitions=partitions)
    deadlines = app.Table("deadlines", key_type=str, partitions=partitions)

    def on_command(env: Envelope, message: Message) -> list[Out]:
        assert isinstance(message, ORDER_COMMAND_TYPES)
        uid = str(message.uid)
        stored = orders.get(uid)
        step = handle(OrderEntry.from_json(stored) if stored else None, env, message)
        if step.changed and step.entry is not None:
            orders[uid] = step.entry.to_json()
        deadline = step.deadline_ms
        if deadline is None and uid in deadlines:
            del deadlines[uid]
        elif deadline is not None and deadlines.get(uid) != deadline:
            deadlines[uid] = deadline
        return step.outputs

    @app.agent(bus.topic(ORDER_COMMANDS.name), name="order-agent")
    async def order_agent(stream: faust.StreamT[bytes]) -> None:
        await bus.consume(stream, ORDER_COMMANDS.name, ORDER_COMMAND_TYPES, on_command)

    # An expiry in flight is not sent again until the agent had ample time to apply it.
    resend_after_s = max(5.0, 5 * settings.expiry_interval_s)
    sent_at: dict[str, float] = {}

    @app.timer(settings.expiry_interval_s, name="order-expiry")  # type: ignore[untyped-decorator]
    async def expire_orders() -> None:
        now = time.monotonic()
        pending = dict(deadlines.items())
        for uid in set(sent_at) - set(pending):
            del sent_at[uid]
        due = due_expiries(pending.items(), epoch_ms_now())
        fresh = [out for out in due if now - sent_at.get(out.key.decode(), -1e9) >= resend_after_s]
        for out in fresh:
            sent_at[out.key.decode()] = now
        await bus.send(fresh)


def epoch_ms_now() -> int:
    return time.time_ns() // 1_000_000
