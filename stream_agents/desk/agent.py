"""The desk agent: ``order-commands`` (key: desk) in batches → the ``desk`` table → Kafka.

One Faust agent serves every desk of the partitions it is given (ADR 0005). It takes commands
in batches (``take_events``: up to ``desk_batch_max``, gathered for at most
``desk_batch_within_s``), and for each partition of a batch:

1. runs each command through :class:`~stream_agents.desk.step.Desk` over an overlay of the
   table, so the batch reads its own writes; a command that cannot be decoded, or whose step
   fails, is dead-lettered alone and its writes dropped;
2. writes every changed key once, in the order that makes a crash repairable
   (:func:`~stream_agents.table_keys.write_rank`), to that partition's changelog;
3. sends the outputs (order events, postings), pipelined, in order.

The batch is acknowledged (its offsets become committable) only after the broker has
acknowledged every write and send of it (:mod:`stream_agents.confirmed`), so a crash
redelivers the whole batch and every step in it is a repeat or a repair.

The card configuration comes from the compacted ``config-cards`` topic into the global
table ``cards``, so every worker knows every card whichever desks it serves.

Expiry: an index of the deadlines of the ``new`` orders in the table, kept as orders are
written, rebuilt from the table when its recovery completes (after every rebalance, so it
follows the partitions the worker holds) and, as a backstop, every ``deadline_rescan_s``; a
timer sends ``order.expire`` for each passed deadline to the order's desk.

Retention (ADR 0008): an index of the finished orders in the table, by when they are due to
leave it (``order_retention_h`` after their last change), kept and rebuilt the same way; a
timer sends ``desk.forget`` for the due ones, grouped by desk, and the desk deletes them (a
tombstone in the changelog for each entry, so compaction removes them).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.types import EventT

from domain.orders import TERMINAL
from schemas import cards as wc
from schemas import notifications as wn
from schemas import orders as wo
from schemas.envelope import Message
from schemas.topics import CONFIG_CARDS, ORDER_COMMANDS
from schemas.translation import epoch_ms
from stream_agents.bus import Bus, retry_transient
from stream_agents.confirmed import ConfirmedGlobalTable, ConfirmedTable, confirm
from stream_agents.desk import metrics
from stream_agents.desk.orders import Deadline, deadline_of, due_expiries
from stream_agents.desk.outputs import OrderEntry
from stream_agents.desk.step import DESK_INPUT_TYPES, Desk, Overlay, Readable
from stream_agents.desk.turnover import MonitorRules
from stream_agents.settings import AgentSettings
from stream_agents.table_keys import DESK_TABLE, NOTICE_PREFIX, ORDER_PREFIX, order_key
from stream_agents.wire import Out, epoch_ms_now, message_id

log = logging.getLogger(__name__)

SOURCE = ORDER_COMMANDS.name


class Deadlines:
    """The deadlines of the ``new`` orders a worker holds, by uid."""

    def __init__(self) -> None:
        self._by_uid: dict[str, Deadline] = {}

    def note(self, uid: str, entry: OrderEntry | None) -> None:
        deadline = deadline_of(entry) if entry is not None else None
        if deadline is None:
            self._by_uid.pop(uid, None)
        else:
            self._by_uid[uid] = deadline

    def rebuild(self, orders: Iterable[tuple[str, OrderEntry]]) -> None:
        self._by_uid.clear()
        for uid, entry in orders:
            self.note(uid, entry)

    def items(self) -> list[tuple[str, Deadline]]:
        return list(self._by_uid.items())


class Retirements:
    """The finished orders a worker holds, by uid: when each is due to leave the table
    (``retention_ms`` after its last change), and its desk."""

    def __init__(self, retention_ms: int) -> None:
        self._retention_ms = retention_ms
        self._by_uid: dict[str, tuple[int, str | None]] = {}

    def __len__(self) -> int:
        return len(self._by_uid)

    def clear(self) -> None:
        self._by_uid.clear()

    def note(self, uid: str, entry: OrderEntry | None) -> None:
        if entry is None or entry.order.status not in TERMINAL:
            self._by_uid.pop(uid, None)
        else:
            due_ms = entry.order.updated_at_ms + self._retention_ms
            self._by_uid[uid] = (due_ms, entry.desk)

    def due(self, now_ms: int) -> list[tuple[str, str | None]]:
        """The (uid, desk) of every order due at ``now_ms``."""
        return [(uid, desk) for uid, (due_ms, desk) in self._by_uid.items() if due_ms <= now_ms]


def forgets(due: Iterable[tuple[str, str | None]], now_ms: int) -> list[Out]:
    """``desk.forget`` for the due orders: one per desk (at most ``MAX_FORGET`` uids each;
    one per uid for orders recorded before desks), dated now."""
    by_desk: dict[str | None, list[str]] = {}
    for uid, desk in due:
        by_desk.setdefault(desk, []).append(uid)
    outputs = []
    for desk, uids in by_desk.items():
        size = wo.MAX_FORGET if desk is not None else 1
        for start in range(0, len(uids), size):
            chunk = [uuid.UUID(uid) for uid in sorted(uids[start : start + size])]
            forget = wo.ForgetOrders(desk=desk, uids=chunk)
            ident = message_id(forget.TYPE, desk, now_ms, chunk[0])
            outputs.append(Out(ORDER_COMMANDS.name, forget, ident, now_ms))
    return outputs


def notice_forgets(seen: dict[str, tuple[int, str]], due_by_ms: int) -> list[Out]:
    """``desk.forget_notices`` for the notices decided at or before ``due_by_ms``, one per
    pool (at most ``MAX_FORGET_NOTICES`` each); they leave ``seen`` (a lost forget is sent
    again once the next rebuild finds them still there)."""
    by_pool: dict[str, list[str]] = {}
    for notification_id, (at_ms, pool_id) in list(seen.items()):
        if at_ms <= due_by_ms:
            by_pool.setdefault(pool_id, []).append(notification_id)
            del seen[notification_id]
    outputs = []
    now_ms = epoch_ms_now()
    for pool_id, ids in by_pool.items():
        for start in range(0, len(ids), wn.MAX_FORGET_NOTICES):
            chunk = [uuid.UUID(i) for i in sorted(ids[start : start + wn.MAX_FORGET_NOTICES])]
            forget = wn.ForgetNotices(pool_id=pool_id, notification_ids=chunk)
            ident = message_id(forget.TYPE, pool_id, now_ms, chunk[0])
            outputs.append(Out(ORDER_COMMANDS.name, forget, ident, now_ms))
    return outputs


@contextlib.contextmanager
def processing(event: EventT[bytes]) -> Iterator[None]:
    """Make ``event`` Faust's current event: table writes go to its partition's changelog, and
    a dead letter names its coordinates. (A batch is handled outside the stream's own
    iteration, which sets it only for the event it is on.)"""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def by_partition(events: Sequence[EventT[bytes]]) -> list[list[EventT[bytes]]]:
    """The batch's events per source partition, each in offset order."""
    groups: dict[tuple[str, int], list[EventT[bytes]]] = {}
    for event in events:
        groups.setdefault((event.message.topic, event.message.partition), []).append(event)
    return list(groups.values())


def install(app: faust.App, bus: Bus, settings: AgentSettings) -> None:
    """Declare the ``cards`` global table and its feeder, the ``desk`` table, the desk agent
    and the expiry timer."""
    # What app.GlobalTable passes, which a subclass has to pass itself: is_global, so that
    # Faust's assignor gives the changelog to every worker, recovered before its streams
    # flow and then followed as a standby; standby_buffer_size=1, so a change is applied
    # as it comes. partitions=1 and recovery_buffer_size=1: Faust's advice against a
    # recovery loop of global tables with several workers (faust.tables.globaltable).
    cards = ConfirmedGlobalTable(
        app,
        name="cards",
        key_type=str,
        is_global=True,
        partitions=1,
        recovery_buffer_size=1,
        standby_buffer_size=1,
        beacon=app.tables.beacon,
    )
    app.tables.add(cards)
    table = ConfirmedTable(
        app,
        name=DESK_TABLE,
        key_type=str,
        partitions=ORDER_COMMANDS.partitions,
        beacon=app.tables.beacon,
    )
    app.tables.add(table)
    deadlines = Deadlines()
    retention_ms = round(settings.order_retention_h * 3_600_000)
    retirements = Retirements(retention_ms)
    rules = MonitorRules.from_settings(settings)
    readable = cast(Readable, table)  # a Faust table is a mapping; its stubs overload get()

    def on_config(_: Any, message: Message) -> list[Out]:
        assert isinstance(message, wc.CardConfigured)
        stored = cards.get(message.card_id)
        if stored is None or stored["version"] <= message.version:  # compaction may reorder
            cards[message.card_id] = message.model_dump(mode="json")
        return []

    def on_tombstone(key: bytes | None) -> None:
        if key is not None and key.decode() in cards:  # the card was deleted from the topic
            del cards[key.decode()]

    @app.agent(bus.topic(CONFIG_CARDS.name), name="card-config")
    async def card_config(stream: faust.StreamT[bytes]) -> None:
        accepts = (wc.CardConfigured,)
        await bus.consume(
            stream, CONFIG_CARDS.name, accepts, on_config, on_tombstone, written=cards.written
        )

    async def step(event: EventT[bytes], batch: Overlay, touched: set[str]) -> list[Out]:
        """One command of the batch; its writes join ``batch`` only if it went through."""
        raw = event.value
        accepted = await bus.accept(SOURCE, raw, DESK_INPUT_TYPES)
        if accepted is None:
            return []
        env, message = accepted
        desk = Desk(batch.child(), cards, rules, order_retention_ms=retention_ms)
        before = metrics.entry_before(message, batch)  # a decision's order, for reaction time
        try:
            outputs = desk.run(message, epoch_ms(env.occurred_at))
        except Exception as exc:  # a bug or corrupt state: park the command, keep going
            log.exception("desk: step failed on %s %s", env.type, env.message_id)
            await bus.dead_letter(SOURCE, raw, f"handler failed: {type(exc).__name__}")
            return []
        batch.merge(desk.table)
        touched |= desk.touched
        metrics.observe_step(message, before, outputs, desk.touched)
        return outputs

    def write(batch: Overlay) -> None:
        for key, value in batch.writes():
            if value is not None:
                table[key] = value
            elif key in table:
                del table[key]  # Faust writes a tombstone to the changelog

    @app.agent(bus.topic(SOURCE), name="desk")
    async def desk_agent(stream: faust.StreamT[bytes]) -> None:
        # ``take_events`` is on faust's Stream, not on its StreamT protocol
        take = cast(faust.Stream[bytes], stream).take_events
        batches = take(settings.desk_batch_max, within=settings.desk_batch_within_s)
        async for events in batches:
            started = time.perf_counter()
            sent = []
            for group in by_partition(events):
                batch, touched, outputs = Overlay(readable), set[str](), list[Out]()
                for event in group:
                    with processing(event):
                        outputs += await step(event, batch, touched)
                with processing(group[-1]):
                    await retry_transient(partial(write, batch), bus.retry, "desk: table write")
                for uid in touched:
                    stored = batch.get(order_key(uid))
                    entry = OrderEntry.from_json(stored) if stored else None
                    deadlines.note(uid, entry)
                    retirements.note(uid, entry)
                sent += await bus.send(outputs)
            # The batch is acknowledged (its offsets become committable) when this body ends:
            # not before the broker has every write it caused (stream_agents.confirmed).
            try:
                await confirm([*table.written(), *sent])
            except Exception as exc:
                log.critical("desk: the broker refused a write of the batch; stopping")
                await app.crash(exc)
                raise
            metrics.batch_done(len(events), time.perf_counter() - started)

    # An expiry in flight is not sent again until the desk had ample time to apply it.
    resend_after_s = max(5.0, 5 * settings.expiry_interval_s)
    sent_at: dict[str, float] = {}
    rebuilt_at = [-1e9]

    @app.timer(settings.expiry_interval_s, name="order-expiry")  # type: ignore[untyped-decorator]
    async def expire_orders() -> None:
        now = time.monotonic()
        if now - rebuilt_at[0] >= settings.deadline_rescan_s:
            rebuild(table.items())
            rebuilt_at[0] = now
        pending = deadlines.items()
        waiting = {uid for uid, _ in pending}
        for uid in set(sent_at) - waiting:
            del sent_at[uid]
        due = due_expiries(pending, epoch_ms_now())
        fresh = [out for out in due if now - sent_at.get(_uid(out), -1e9) >= resend_after_s]
        for out in fresh:
            sent_at[_uid(out)] = now
        await bus.send(fresh)

    #: Notices decided (``notice/<id>``) by id: (when, pool); refreshed with the indexes.
    notices_seen: dict[str, tuple[int, str]] = {}

    def rebuild(items: Iterable[tuple[str, Any]]) -> None:
        """The indexes from the table in one pass."""
        orders, notices = [], {}
        for key, value in items:
            if key.startswith(ORDER_PREFIX) and value:
                orders.append((key.removeprefix(ORDER_PREFIX), OrderEntry.from_json(value)))
            elif key.startswith(NOTICE_PREFIX) and value and "pool_id" in value:
                notices[key.removeprefix(NOTICE_PREFIX)] = (int(value["at_ms"]), value["pool_id"])
        deadlines.rebuild(orders)
        retirements.clear()
        for uid, entry in orders:
            retirements.note(uid, entry)
        notices_seen.clear()
        notices_seen.update(notices)

    @table.on_recover  # after every rebalance: the partitions held have changed
    async def reindex() -> None:
        rebuild(table.items())
        rebuilt_at[0] = time.monotonic()

    forget_sent_at: dict[str, float] = {}
    forget_resend_after_s = max(30.0, 5 * settings.retention_sweep_s)

    @app.timer(settings.retention_sweep_s, name="order-retention")  # type: ignore[untyped-decorator]
    async def forget_orders() -> None:
        now = time.monotonic()
        due = retirements.due(epoch_ms_now())
        waiting = {uid for uid, _ in due}
        for uid in set(forget_sent_at) - waiting:
            del forget_sent_at[uid]
        fresh = [
            (u, d) for u, d in due if now - forget_sent_at.get(u, -1e9) >= forget_resend_after_s
        ]
        for uid, _ in fresh:
            forget_sent_at[uid] = now
        await bus.send(forgets(fresh, epoch_ms_now()))
        await bus.send(notice_forgets(notices_seen, epoch_ms_now() - retention_ms))
        # what the worker holds, for operations and ``make soak`` (docs/operations.md)
        log.info(
            "desk: %d table entries, %d finished orders retained", len(table), len(retirements)
        )


def _uid(out: Out) -> str:
    return str(out.message.uid)  # type: ignore[attr-defined]
