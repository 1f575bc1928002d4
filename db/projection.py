"""Fold order and ledger events into PostgreSQL, idempotently and in batches.

The projector (``stream_agents/projector.py``) reads ``order-events`` and ``ledger-events``
at least once, so every write here must make a redelivered, reordered or duplicated event a
no-op; that, plus committing the Kafka offsets only after the database, gives exactly-once
effects without Kafka transactions:

* ``order_events``: one row per event id (the envelope's ``message_id``), ``ON CONFLICT DO
  NOTHING``; ``seq`` is the snapshot's version.
* ``orders``: a versioned upsert from the snapshot the event carries; a row only moves forward
  (``orders.version < excluded.version``). Columns that only one event carries (the callback
  URL of an order's first event, ``order.created`` or ``order.declined`` (``order.opened``
  before ADR 0005), the sealed payer card of ``order.payment_confirmed``, stored as
  sealed in ``payer_card_encrypted``) are filled in whenever they are still empty, so an
  out-of-order delivery cannot lose them.
* ``ledger_postings``: one row per leg, ``ON CONFLICT DO NOTHING`` on ``(order_uid, kind,
  account)``; the posting id is a UUIDv5 of that key, so a replay produces the same ids.
* ``balance_snapshots``: a versioned upsert by ``balance_version``.

Every function takes a ``Connection`` or ``Session`` and issues one multi-row statement per
table per batch (chunked only beyond :data:`MAX_BIND_PARAMS`); the caller owns the
transaction, so one batch is committed or rolled back as a whole. The row mapping is pure
(``*_row`` functions), which is where the unit tests look.

Events that the durable record refuses are not skipped. A snapshot naming a partner or a card
that is not in ``partners``/``cards`` (a foreign-key violation), or a card id that cannot be
a ``cards.id`` at all, means the configuration the pipeline runs on disagrees with the
database: partners and cards are created in PostgreSQL before any order can name them. That is
a fatal configuration error (:class:`ProjectionError` here, an ``IntegrityError`` from the
database): the projector stops without committing its offsets, and resumes where it stopped
once the configuration is repaired. No constraint is relaxed to let such an event through.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias, TypeVar, cast

from sqlalchemy import ColumnElement, Connection, CursorResult, Table, and_, case, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from db.models import Base
from schemas.envelope import Envelope
from schemas.ledger import LedgerPosted
from schemas.orders import (
    OrderApproved,
    OrderCancelled,
    OrderCreated,
    OrderDeclined,
    OrderExpired,
    OrderFailed,
    OrderOpened,
    OrderRejected,
    PaymentConfirmed,
)

OrderEventMessage: TypeAlias = (
    OrderOpened
    | OrderCreated
    | OrderDeclined
    | PaymentConfirmed
    | OrderApproved
    | OrderRejected
    | OrderFailed
    | OrderExpired
    | OrderCancelled
)
#: The payload classes that travel on ``order-events`` (``isinstance`` needs the tuple).
ORDER_EVENT_TYPES: Final = (
    OrderOpened,
    OrderCreated,
    OrderDeclined,
    PaymentConfirmed,
    OrderApproved,
    OrderRejected,
    OrderFailed,
    OrderExpired,
    OrderCancelled,
)

OrderItem: TypeAlias = tuple[Envelope, OrderEventMessage]
LedgerItem: TypeAlias = tuple[Envelope, LedgerPosted]
Row: TypeAlias = dict[str, Any]
Db: TypeAlias = Connection | Session

#: Namespace of posting ids: ``uuid5(POSTING_NAMESPACE, "<uid>/<kind>/<account>")``.
POSTING_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:keeper:ledger-posting")

#: Bind parameters per statement. psycopg2 binds client-side and has no limit, but the
#: PostgreSQL wire protocol caps server-side binds at 65535; staying below keeps the code
#: driver-agnostic.
MAX_BIND_PARAMS: Final = 30_000

#: Columns carried by a single event only (``order.opened``'s callback URL, the sealed payer
#: card of ``order.payment_confirmed``): kept once known, whatever the delivery order.
STICKY_ORDER_COLUMNS: Final = ("callback_url", "payer_card_encrypted")

#: Fields left out of the ``order_events`` copy. The payer's card ciphertext is card data:
#: it rests only in ``orders.payer_card_encrypted`` (read through the repository that opens
#: it for the operator who pays out), not in an analyst-readable event log.
REDACTED_EVENT_FIELDS: Final = frozenset({"payer_card_ciphertext"})

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

K = TypeVar("K", bound=Hashable)


class ProjectionError(RuntimeError):
    """An event the durable record cannot take as it stands; skipping it would lose it."""


@dataclass(frozen=True, slots=True)
class ProjectionCounts:
    """What one batch changed: inserted or updated rows per table (for progress logs)."""

    order_events: int = 0
    orders: int = 0
    postings: int = 0
    balances: int = 0

    def __add__(self, other: ProjectionCounts) -> ProjectionCounts:
        return ProjectionCounts(
            self.order_events + other.order_events,
            self.orders + other.orders,
            self.postings + other.postings,
            self.balances + other.balances,
        )


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


ORDERS: Final = _table("orders")
ORDER_EVENTS: Final = _table("order_events")
LEDGER_POSTINGS: Final = _table("ledger_postings")
BALANCE_SNAPSHOTS: Final = _table("balance_snapshots")


# --- pure mapping: messages to rows -----------------------------------------------------


def from_epoch_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime, exactly (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=ms)


def card_uuid(uid: uuid.UUID, card_id: str | None) -> uuid.UUID | None:
    """The ``cards.id`` a snapshot's ``card_id`` names.

    Card ids reach the pool agent from ``config-cards``, which is published from the
    ``cards`` table, so they are that table's UUIDs; anything else cannot satisfy the
    foreign key and is the same configuration error as an unknown card.
    """
    if card_id is None:
        return None
    try:
        return uuid.UUID(card_id)
    except ValueError:
        raise ProjectionError(
            f"order {uid} names card {card_id!r}, which is not a cards.id (UUID)"
        ) from None


def order_event_row(env: Envelope, event: OrderEventMessage) -> Row:
    """The ``order_events`` row of one event.

    ``occurred_at`` is the snapshot's ``updated_at_ms`` (when the order changed), not the
    envelope's time: a re-published event then maps to the very same row.
    """
    snapshot = event.order
    return {
        "event_id": env.message_id,
        "order_uid": snapshot.uid,
        "seq": snapshot.version,
        "type": env.type,
        "payload": event.model_dump(mode="json", exclude=set(REDACTED_EVENT_FIELDS)),
        "occurred_at": from_epoch_ms(snapshot.updated_at_ms),
    }


def order_row(event: OrderEventMessage) -> Row:
    """The ``orders`` row the event's snapshot describes (plus what only this event carries)."""
    s = event.order
    return {
        "uid": s.uid,
        "partner_id": s.partner_id,
        "partner_order_id": s.partner_order_id,
        "direction": s.direction.value,
        "status": s.status.value,
        "amount_minor": s.amount_minor,
        "fee_minor": s.fee_minor,
        "currency": s.currency,
        "card_id": card_uuid(s.uid, s.card_id),
        "payer_card_masked": s.payer_card_masked,
        "decline_reason": s.decline_reason.value if s.decline_reason else None,
        "decided_by": s.decided_by,
        "decision_reason": s.decision_reason,
        "callback_url": (
            event.callback_url
            if isinstance(event, OrderOpened | OrderCreated | OrderDeclined)
            else None
        ),
        "payer_card_encrypted": (
            event.payer_card_ciphertext if isinstance(event, PaymentConfirmed) else None
        ),
        "expires_at": from_epoch_ms(s.expires_at_ms),
        "created_at": from_epoch_ms(s.created_at_ms),
        "updated_at": from_epoch_ms(s.updated_at_ms),
        "version": s.version,
    }


def posting_id(uid: uuid.UUID, kind: str, account: str) -> uuid.UUID:
    """Deterministic, so a replayed posting collides with (not duplicates) the first."""
    return uuid.uuid5(POSTING_NAMESPACE, f"{uid}/{kind}/{account}")


def account_partner(account: str) -> str | None:
    """The partner a ledger account belongs to (``partner:<id>:...``), else None.

    Mirrors the ``partner_matches_account`` CHECK, which ties ``partner_id`` to the account.
    """
    owner, _, rest = account.partition(":")
    return rest.partition(":")[0] if owner == "partner" else None


def posting_rows(env: Envelope, posted: LedgerPosted) -> list[Row]:
    """One ``ledger_postings`` row per leg; ``posted_at`` is when the posting was published."""
    return [
        {
            "posting_id": posting_id(posted.uid, posted.kind.value, leg.account),
            "order_uid": posted.uid,
            "kind": posted.kind.value,
            "account": leg.account,
            "partner_id": account_partner(leg.account),
            "currency": posted.currency,
            "amount_minor": leg.amount_minor,
            "posted_at": env.occurred_at,
            "reference": posted.reference,
        }
        for leg in posted.legs
    ]


def balance_row(env: Envelope, posted: LedgerPosted) -> Row:
    """The partner's balance right after the posting, versioned by ``balance_version``."""
    return {
        "partner_id": posted.partner_id,
        "currency": posted.currency,
        "available_minor": posted.available_minor,
        "held_minor": posted.held_minor,
        "version": posted.balance_version,
        "updated_at": env.occurred_at,
    }


# --- pure folding within a batch --------------------------------------------------------


def first_by(rows: Iterable[Row], key: Callable[[Row], K]) -> list[Row]:
    """The first row per key, in first-seen order (duplicates in a batch are redeliveries)."""
    seen: dict[K, Row] = {}
    for row in rows:
        seen.setdefault(key(row), row)
    return list(seen.values())


def newest_by(rows: Iterable[Row], key: Callable[[Row], K]) -> list[Row]:
    """The highest-``version`` row per key, sorted by key.

    One ``ON CONFLICT DO UPDATE`` may not touch a row twice, so a batch is folded first; the
    sort gives concurrent writers (a rebalance overlap) one lock order, which avoids deadlocks.
    """
    newest: dict[K, Row] = {}
    for row in rows:
        current = newest.get(key(row))
        if current is None or row["version"] > current["version"]:
            newest[key(row)] = row
    return [newest[k] for k in sorted(newest, key=str)]


def fold_orders(rows: Sequence[Row]) -> list[Row]:
    """The newest snapshot per order, with sticky columns taken from any event of the batch."""
    sticky: dict[tuple[Any, str], Any] = {}
    for row in rows:
        for column in STICKY_ORDER_COLUMNS:
            if row[column] is not None:
                sticky.setdefault((row["uid"], column), row[column])
    folded = newest_by(rows, lambda row: row["uid"])
    return [
        row | {c: sticky.get((row["uid"], c)) for c in STICKY_ORDER_COLUMNS if row[c] is None}
        for row in folded
    ]


# --- statements -------------------------------------------------------------------------


def chunks(rows: Sequence[Row]) -> Iterator[Sequence[Row]]:
    """Slices of ``rows`` small enough for one statement's bind parameters."""
    if not rows:
        return
    size = max(1, MAX_BIND_PARAMS // len(rows[0]))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _execute(db: Db, statement: Any) -> int:
    """Run ``statement``; the number of rows it inserted or updated."""
    return cast(CursorResult[Any], db.execute(statement)).rowcount


def insert_new(db: Db, table: Table, rows: Sequence[Row]) -> int:
    """Multi-row ``INSERT .. ON CONFLICT DO NOTHING``: an existing row is a redelivery."""
    return sum(
        _execute(db, pg_insert(table).values(list(part)).on_conflict_do_nothing())
        for part in chunks(rows)
    )


def orders_upsert(rows: Sequence[Row]) -> Any:
    """Versioned upsert: newer snapshots replace the row; sticky columns fill gaps only."""
    statement = pg_insert(ORDERS).values(list(rows))
    incoming, current = statement.excluded, ORDERS.c
    newer = current.version < incoming.version
    values: dict[str, ColumnElement[Any]] = {
        name: case((newer, incoming[name]), else_=current[name])
        for name in rows[0]
        if name not in ("uid", "version", *STICKY_ORDER_COLUMNS)
    }
    values |= {name: func.coalesce(current[name], incoming[name]) for name in STICKY_ORDER_COLUMNS}
    values["version"] = func.greatest(current.version, incoming.version)
    fills_gap = [and_(current[n].is_(None), incoming[n].is_not(None)) for n in STICKY_ORDER_COLUMNS]
    return statement.on_conflict_do_update(
        index_elements=[current.uid], set_=values, where=or_(newer, *fills_gap)
    )


def balances_upsert(rows: Sequence[Row]) -> Any:
    statement = pg_insert(BALANCE_SNAPSHOTS).values(list(rows))
    incoming, current = statement.excluded, BALANCE_SNAPSHOTS.c
    return statement.on_conflict_do_update(
        index_elements=[current.partner_id, current.currency],
        set_={
            "available_minor": incoming.available_minor,
            "held_minor": incoming.held_minor,
            "version": incoming.version,
            "updated_at": incoming.updated_at,
        },
        where=current.version < incoming.version,
    )


def upsert(db: Db, build: Callable[[Sequence[Row]], Any], rows: Sequence[Row]) -> int:
    return sum(_execute(db, build(part)) for part in chunks(rows))


# --- the batch operations ---------------------------------------------------------------


def project_order_events(db: Db, items: Sequence[OrderItem]) -> ProjectionCounts:
    """Record each event once and move each order's row forward to its newest snapshot.

    Raises :class:`ProjectionError` for a snapshot that cannot reference ``cards``; an
    unknown partner or card surfaces as an ``IntegrityError`` (see the module docstring).
    """
    if not items:
        return ProjectionCounts()
    events = first_by((order_event_row(env, ev) for env, ev in items), lambda r: r["event_id"])
    orders = fold_orders([order_row(ev) for _, ev in items])
    return ProjectionCounts(
        order_events=insert_new(db, ORDER_EVENTS, events),
        orders=upsert(db, orders_upsert, orders),
    )


def project_ledger_events(db: Db, items: Sequence[LedgerItem]) -> ProjectionCounts:
    """Record each posting's legs once and keep the newest balance per partner and currency.

    A (uid, kind) seen twice in a batch is one posting redelivered: its first copy is kept
    whole, so legs of two copies are never mixed. The deferred balance trigger still checks,
    at COMMIT, that every transaction's legs sum to zero.
    """
    if not items:
        return ProjectionCounts()
    first: dict[tuple[uuid.UUID, str], LedgerItem] = {}
    for env, posted in items:
        first.setdefault((posted.uid, posted.kind.value), (env, posted))
    legs = [row for env, posted in first.values() for row in posting_rows(env, posted)]
    legs.sort(key=lambda row: (str(row["order_uid"]), row["kind"], row["account"]))
    balances = newest_by(
        (balance_row(env, posted) for env, posted in items),
        lambda row: (row["partner_id"], row["currency"]),
    )
    return ProjectionCounts(
        postings=insert_new(db, LEDGER_POSTINGS, legs),
        balances=upsert(db, balances_upsert, balances),
    )
