"""One desk step: a command and everything it sets off within the desk, in one go (ADR 0005).

The desk owns an order's whole life: the order (:mod:`~stream_agents.desk.orders`), the cards
of its pool (:mod:`~stream_agents.desk.pool`) and the balances of the partners working there
(:mod:`~stream_agents.desk.ledger`). The three parts still speak to each other in messages
(an opening order asks the pool for a card, the pool answers the order), but those messages
never leave the step: :meth:`Desk.run` hands each one to its part at once, until only
messages for Kafka are left. Each part stays exactly as idempotent as when it was an agent of
its own, which is what makes a redelivered command safe.

Writes go to an :class:`Overlay` over the table: a batch of commands reads its own writes,
writes each key once, and the desk flushes them at the end of the batch in the order
:func:`~stream_agents.table_keys.write_rank` gives, the one that lets a crash lose only what
a redelivery repairs. A command that fails is rolled back alone (:meth:`Overlay.child`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from domain.orders import TERMINAL
from domain.turnover import HOUR_MS
from schemas import cards as wc
from schemas import disputes as wd
from schemas import ledger as wl
from schemas import notifications as wn
from schemas import orders as wo
from schemas import turnover as wt
from schemas.envelope import Message
from schemas.topics import ORDER_EVENTS
from schemas.translation import ORDER_COMMAND_TYPES, OrderCommand
from stream_agents.desk import ledger, notices, pool, turnover
from stream_agents.desk import orders as order_part
from stream_agents.desk.outputs import OrderEntry, held_again
from stream_agents.desk.pool import Placed
from stream_agents.desk.turnover import MonitorRules
from stream_agents.table_keys import (
    balance_key,
    card_key,
    device_key,
    horizon_key,
    notice_key,
    operations_key,
    order_key,
    placement_key,
    turnover_key,
    write_rank,
)
from stream_agents.wire import (
    TO_LEDGER,
    TO_NOTICE,
    TO_ORDER,
    TO_POOL,
    TO_TURNOVER,
    WITHIN_DESK,
    Out,
    epoch_ms_now,
)

log = logging.getLogger(__name__)

#: What the desk accepts from ``order-commands``: the order commands, the card monitor's
#: automatic holidays for a card of the desk's pool, its own retention's forgets, accepted
#: disputes' late credits, and bank notifications and device health for its cards (ADR 0010).
NOTICE_INPUT_TYPES: Final = (wn.MatchNotification, wn.DeviceHealth)
FORGET_TYPES: Final = (wo.ForgetOrders, wn.ForgetNotices)
DESK_INPUT_TYPES: Final = (
    *ORDER_COMMAND_TYPES,
    wc.PauseCard,
    *FORGET_TYPES,
    wd.SettleDispute,
    *NOTICE_INPUT_TYPES,
)

#: How long a finished order stays in the desk's table by default (ADR 0008).
ORDER_RETENTION_MS: Final = 48 * HOUR_MS

#: A command and what it sets off never take more hand-overs than this (an opening deposit
#: takes two: order → pool → order); more means the parts answer each other in a loop.
MAX_HANDOVERS: Final = 16

_MISSING: Final = object()


class Readable(Protocol):
    """What an overlay reads through to: a table, a dict, another overlay."""

    def get(self, key: Any, default: Any = None, /) -> Any: ...

    def __contains__(self, key: object) -> bool: ...


class Overlay:
    """Writes kept over a read-only base (the table, or another overlay) until flushed.

    A deleted key is kept as a write of ``None`` (tables hold no ``None`` values): it reads
    as absent, and the flush deletes it from the table."""

    def __init__(self, base: Readable) -> None:
        self._base = base
        self._writes: dict[str, Any] = {}

    def get(self, key: Any, default: Any = None, /) -> Any:
        value = self._writes.get(key, _MISSING)
        if value is _MISSING:
            return self._base.get(key, default)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        if key in self._writes:
            return self._writes[key] is not None
        return key in self._base

    def __setitem__(self, key: str, value: Any) -> None:
        assert value is not None, key
        self._writes[key] = value

    def __delitem__(self, key: str) -> None:
        """Delete ``key`` (a no-op at the flush if the table never had it)."""
        self._writes[key] = None

    def __len__(self) -> int:
        return len(self._writes)

    def child(self) -> Overlay:
        """An overlay over this one, to :meth:`merge` back or drop (one command's writes)."""
        return Overlay(self)

    def merge(self, child: Overlay) -> None:
        """Take ``child``'s writes (a key written before keeps its place in the order)."""
        self._writes.update(child._writes)

    def writes(self) -> list[tuple[str, Any]]:
        """Every key written, once, with its last value (``None``: deleted), in flush order
        (see module)."""
        return sorted(
            self._writes.items(), key=lambda item: write_rank(item[0], deleted=item[1] is None)
        )


@dataclass
class Desk:
    """The desk's state for one step: its table (an :class:`Overlay`), the cards known, and
    the rules of the cards' time zone, alerts and holidays."""

    table: Overlay
    #: Card configurations by card id (``config.card`` payloads, JSON values).
    cards: Mapping[str, dict[str, Any]]
    rules: MonitorRules = field(default_factory=MonitorRules)
    #: The wall clock, for the turnover part alone: which windows are still kept, hence
    #: whether a movement comes too late, is judged against now, as the card monitor always
    #: did. (A redelivered movement counts nowhere either way: each window keeps the orders
    #: it counted.) Every other part decides at the command's own instant.
    clock: Callable[[], int] = epoch_ms_now
    #: How long a finished order stays in the table after its last change (ADR 0008).
    order_retention_ms: int = ORDER_RETENTION_MS
    #: Orders written (or forgotten) in this step, so the caller can keep its indexes.
    touched: set[str] = field(default_factory=set)

    def run(self, message: Message, at_ms: int) -> list[Out]:
        """Apply ``message`` (a command from ``order-commands``, issued at ``at_ms``) and all it
        sets off within the desk; return what goes to Kafka."""
        if isinstance(message, wo.ForgetOrders):
            self._forget(message, at_ms)
            return []
        if isinstance(message, wn.ForgetNotices):
            self._forget_notices(message, at_ms)
            return []
        pending: deque[tuple[str, Message, int]] = deque([(*_first_part(message), at_ms)])
        outgoing: list[Out] = []
        for _ in range(MAX_HANDOVERS):
            if not pending:
                return latest_events_only(outgoing)
            part, current, at = pending.popleft()
            for out in self._hand_to(part, current, at, redelivered=current is message):
                if out.topic in WITHIN_DESK:
                    pending.append((out.topic, out.message, out.occurred_at_ms))
                else:
                    outgoing.append(out)
        raise RuntimeError(f"{message.TYPE}: more than {MAX_HANDOVERS} hand-overs in one step")

    def _hand_to(self, part: str, message: Message, at_ms: int, *, redelivered: bool) -> list[Out]:
        """``message`` handled by ``part``; ``redelivered``: it came from Kafka, and if it
        changes nothing it may be a redelivery after a crash."""
        if part == TO_ORDER:
            assert isinstance(message, ORDER_COMMAND_TYPES), type(message)
            return self._order(message, at_ms, redelivered=redelivered)
        if part == TO_POOL:
            assert isinstance(message, wc.RequestCard | wc.ReleaseCard | wc.PauseCard)
            return self._pool(message, at_ms)
        if part == TO_LEDGER:
            assert isinstance(message, wl.ApplyLedgerOp), type(message)
            return self._ledger(message, at_ms)
        if part == TO_NOTICE:
            assert isinstance(message, NOTICE_INPUT_TYPES), type(message)
            return self._notice(message, at_ms)
        assert part == TO_TURNOVER, part
        assert isinstance(message, wt.CardMovement), type(message)
        return self._turnover(message, at_ms)

    def _order(self, message: OrderCommand, at_ms: int, *, redelivered: bool) -> list[Out]:
        uid = str(message.uid)
        stored = self.table.get(order_key(uid))
        if stored is None and isinstance(message, wo.OpenOrder) and self._forgot(message, at_ms):
            return []
        step = order_part.handle(OrderEntry.from_json(stored) if stored else None, at_ms, message)
        if step.changed and step.entry is not None:
            self.table[order_key(uid)] = step.entry.to_json()
            self.touched.add(uid)
        elif redelivered and step.entry is not None:
            return [*held_again(step.entry), *step.outputs]
        return step.outputs

    def _forgot(self, opening: wo.OpenOrder, at_ms: int) -> bool:
        """Whether ``opening`` may be the repeat of an order this desk forgot: one opened
        at or before the desk's horizon (ADR 0008). Every forgotten order was; a new
        order is opened now, two retention periods after it."""
        horizon = self.table.get(horizon_key(opening.desk))
        if horizon is None or at_ms > horizon["at_ms"]:
            return False
        log.warning(
            "opening of %s at %d refused: at or before the desk's horizon", opening.uid, at_ms
        )
        return True

    def _forget(self, message: wo.ForgetOrders, at_ms: int) -> None:
        """Take out the finished orders ``message`` names that are due at ``at_ms``: the
        order, its placement and ledger operations, its id in its card's turnover; and move
        the desk's horizon (see :func:`~stream_agents.table_keys.write_rank` for the order
        of these deletions, and ADR 0008 for why nothing is applied twice afterwards).

        A named order that is not finished, or not for long enough, stays. An order that is
        gone but whose own facts are not (a crash cut the last forget) loses them now.
        """
        due_by = at_ms - self.order_retention_ms
        shed: dict[str, list[str]] = {}
        for uid in map(str, message.uids):
            stored = self.table.get(order_key(uid))
            if stored is not None:
                order = OrderEntry.from_json(stored).order
                if order.status not in TERMINAL or order.updated_at_ms > due_by:
                    continue
                del self.table[order_key(uid)]
            placement = self.table.get(placement_key(uid))
            if placement is not None:
                card_id = Placed.from_json(placement).card_id
                if card_id is not None:
                    shed.setdefault(card_id, []).append(uid)
                del self.table[placement_key(uid)]
            if operations_key(uid) in self.table:
                del self.table[operations_key(uid)]
            self.touched.add(uid)
        for card_id, uids in shed.items():
            key = turnover_key(card_id)
            kept = turnover.forget_orders(self.table.get(key), uids)
            if kept is not None:
                self.table[key] = kept
        horizon = self.table.get(horizon_key(message.desk))
        if horizon is None or horizon["at_ms"] < due_by:
            self.table[horizon_key(message.desk)] = {"at_ms": due_by}

    def _forget_notices(self, message: wn.ForgetNotices, at_ms: int) -> None:
        """Take out the named notices decided at least the retention period before ``at_ms``
        (a younger one stays: a forget sent early removes nothing that is not due)."""
        due_by = at_ms - self.order_retention_ms
        for notification_id in map(str, message.notification_ids):
            key = notice_key(notification_id)
            stored = self.table.get(key)
            if stored is not None and int(stored["at_ms"]) <= due_by:
                del self.table[key]

    def _pool(
        self, message: wc.RequestCard | wc.ReleaseCard | wc.PauseCard, at_ms: int
    ) -> list[Out]:
        pool_id = message.pool_id
        if isinstance(message, wc.PauseCard):
            key = card_key(pool_id, message.card_id)
            config = self.cards.get(message.card_id)
            paused = pool.handle_pause(self.table.get(key), message, config)
            if paused is not None:
                self.table[key] = paused
            return []
        uid = str(message.uid)
        placement = self.table.get(placement_key(uid))
        placed_on = placement["card_id"] if placement else None
        if isinstance(message, wc.RequestCard):
            configs = [c for c in self.cards.values() if self._in_rotation(pool_id, c)]
            known = self._slots(pool_id, [placed_on, *(c["card_id"] for c in configs)])
            step = pool.handle_request(placement, known, message, configs, at_ms, self.rules.tz)
        else:
            known = self._slots(pool_id, [placed_on])
            step = pool.handle_release(placement, known, message, at_ms, self.rules.tz)
        if step.placement is not None:
            self.table[placement_key(uid)] = step.placement
        for card_id, slot in step.slots.items():
            self.table[card_key(pool_id, card_id)] = slot
        return step.outputs

    def _in_rotation(self, pool_id: str, config: dict[str, Any]) -> bool:
        """A card of the pool whose device is not silent (ADR 0010)."""
        if config["pool_id"] != pool_id:
            return False
        return not notices.is_silent(self.table.get(device_key(pool_id, config["card_id"])))

    def _slots(self, pool_id: str, card_ids: Iterable[str | None]) -> dict[str, dict[str, Any]]:
        found = {c: self.table.get(card_key(pool_id, c)) for c in card_ids if c is not None}
        return {card_id: slot for card_id, slot in found.items() if slot is not None}

    def _ledger(self, message: wl.ApplyLedgerOp, at_ms: int) -> list[Out]:
        balances, operations = balance_key(message.partner_id), operations_key(str(message.uid))
        step = ledger.handle(self.table.get(balances), self.table.get(operations), message, at_ms)
        if step.operations is not None:
            self.table[operations] = step.operations
        if step.balances is not None:
            self.table[balances] = step.balances
        return step.outputs

    def _notice(self, message: wn.MatchNotification | wn.DeviceHealth, at_ms: int) -> list[Out]:
        if isinstance(message, wn.DeviceHealth):
            key = device_key(message.pool_id, message.card_id)
            health = notices.handle_health(self.table.get(key), message)
            if health is not None:
                self.table[key] = health
            return []
        key = notice_key(str(message.notification_id))
        slot = self.table.get(card_key(message.pool_id, message.card_id))
        step = notices.handle_match(self.table.get(key), message, slot, self._order_entry, at_ms)
        if step.entry is not None:  # with its pool, for the retention timer's forget
            self.table[key] = {**step.entry, "pool_id": message.pool_id}
        return step.outputs

    def _order_entry(self, uid: str) -> OrderEntry | None:
        stored = self.table.get(order_key(uid))
        return OrderEntry.from_json(stored) if stored else None

    def _turnover(self, movement: wt.CardMovement, at_ms: int) -> list[Out]:
        key = turnover_key(movement.card_id)
        config = self.cards.get(movement.card_id)
        stored, outputs = turnover.handle_movement(
            self.table.get(key), movement, config, self.rules, self.clock()
        )
        if stored is not None:
            self.table[key] = stored
        return outputs


def _first_part(message: Message) -> tuple[str, Message]:
    """The part a command from ``order-commands`` goes to first, as that part's message."""
    if isinstance(message, wc.PauseCard):
        return TO_POOL, message
    if isinstance(message, wd.SettleDispute):
        return TO_LEDGER, ledger.settlement(message)
    if isinstance(message, NOTICE_INPUT_TYPES):
        return TO_NOTICE, message
    return TO_ORDER, message


def latest_events_only(outputs: list[Out]) -> list[Out]:
    """``outputs`` without repeats (same id) and without order events a later version of the
    same order in the same step supersedes: an opening deposit becomes ``pending`` and then
    ``new`` within one step, and only ``order.created`` is news to anyone."""
    newest: dict[str, int] = {}
    for out in _order_events(outputs):
        uid, version = _uid_version(out)
        newest[uid] = max(version, newest.get(uid, 0))
    kept, seen = [], set()
    for out in outputs:
        if out.message_id in seen:
            continue
        if out.topic == ORDER_EVENTS.name:
            uid, version = _uid_version(out)
            if version < newest[uid]:
                continue
        seen.add(out.message_id)
        kept.append(out)
    return kept


def _order_events(outputs: list[Out]) -> Iterator[Out]:
    return (out for out in outputs if out.topic == ORDER_EVENTS.name)


def _uid_version(out: Out) -> tuple[str, int]:
    order = out.message.order  # type: ignore[attr-defined]
    return str(order.uid), int(order.version)
