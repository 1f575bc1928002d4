"""Reading orders for the API and the console (the projector is the only writer).

Lists are newest first with keyset pagination on ``(created_at, uid)``: a page ends with an
opaque ``next_after`` cursor naming its last row, and the next page starts strictly after it.
Unlike OFFSET, a page costs the same however deep it is, and rows inserted meanwhile never
shift a page or repeat a row. The index ``(partner_id, created_at)`` serves a partner's list.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from db.crypto import SecretBox
from db.models import Card, Order, OrderEvent
from db.repositories import audit
from db.repositories._common import as_uuid, aware
from db.repositories.errors import InvalidInput

MAX_PAGE: Final = 500
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_CURSOR: Final = re.compile(r"(-?[0-9]{1,19})_([0-9a-f]{32})")


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as PostgreSQL holds it; the payer's sealed card is not part of it."""

    uid: uuid.UUID
    partner_id: str
    partner_order_id: str
    direction: str
    status: str
    amount_minor: int
    fee_minor: int
    currency: str
    card_id: uuid.UUID | None
    payer_card_masked: str | None
    decline_reason: str | None
    decided_by: str | None
    decision_reason: str | None
    callback_url: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: list[OrderView]
    #: Pass as ``after`` to get the next page; ``None`` on the last page.
    next_after: str | None


@dataclass(frozen=True, slots=True)
class OrderEventView:
    event_id: uuid.UUID
    order_uid: uuid.UUID
    seq: int
    type: str
    payload: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime


def _view(row: Order) -> OrderView:
    return OrderView(
        uid=row.uid,
        partner_id=row.partner_id,
        partner_order_id=row.partner_order_id,
        direction=row.direction,
        status=row.status,
        amount_minor=row.amount_minor,
        fee_minor=row.fee_minor,
        currency=row.currency.strip(),
        card_id=row.card_id,
        payer_card_masked=row.payer_card_masked,
        decline_reason=row.decline_reason,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
        callback_url=row.callback_url,
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def encode_cursor(created_at: datetime, uid: uuid.UUID) -> str:
    """``<microseconds since epoch>_<uid hex>``: exact, URL-safe, short."""
    return f"{(created_at - _EPOCH) // _US}_{uid.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise InvalidCursor("after is not a cursor returned by a previous page")
    try:
        created_at = _EPOCH + int(match.group(1)) * _US
    except OverflowError:
        raise InvalidCursor("after is not a cursor returned by a previous page") from None
    return created_at, uuid.UUID(hex=match.group(2))


def get_order(
    session: Session, uid: uuid.UUID | str, *, partner_id: str | None = None
) -> OrderView | None:
    """The order, or ``None``; with ``partner_id``, ``None`` also for another's order."""
    key = as_uuid(uid)
    row = None if key is None else session.get(Order, key)
    if row is None or (partner_id is not None and row.partner_id != partner_id):
        return None
    return _view(row)


def order_payer_card(session: Session, box: SecretBox, uid: uuid.UUID | str) -> str | None:
    """The full card a withdrawal pays out to (for the operator who pays it), or ``None``."""
    key = as_uuid(uid)
    row = None if key is None else session.get(Order, key)
    if row is None or row.payer_card_encrypted is None:
        return None
    return box.open(row.payer_card_encrypted)


def _values(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(item) for item in value]


def _filtered(
    query: Select[Order],
    *,
    partner_id: str | None,
    status: str | Iterable[str] | None,
    direction: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> Select[Order]:
    if partner_id is not None:
        query = query.where(Order.partner_id == partner_id)
    statuses = _values(status)
    if statuses is not None:
        query = query.where(Order.status.in_(statuses))
    if direction is not None:
        query = query.where(Order.direction == str(direction))
    if created_from is not None:
        query = query.where(Order.created_at >= aware("created_from", created_from))
    if created_to is not None:
        query = query.where(Order.created_at < aware("created_to", created_to))
    return query


def list_orders(
    session: Session,
    *,
    partner_id: str | None,
    status: str | Iterable[str] | None = None,
    direction: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: int = 50,
    after: str | None = None,
) -> OrderPage:
    """One page of orders, newest first.

    ``partner_id`` is required on purpose: the partner API must name its caller, and only
    the console passes ``None`` (all partners). ``status`` may be one status or several;
    ``created_from`` is inclusive, ``created_to`` exclusive. A malformed ``after`` raises
    :class:`InvalidCursor` (``code = "invalid_cursor"``).
    """
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1..{MAX_PAGE}")
    query = _filtered(
        select(Order),
        partner_id=partner_id,
        status=status,
        direction=direction,
        created_from=created_from,
        created_to=created_to,
    )
    if after is not None:
        query = query.where(tuple_(Order.created_at, Order.uid) < tuple_(*decode_cursor(after)))
    query = query.order_by(Order.created_at.desc(), Order.uid.desc()).limit(limit + 1)
    rows = [_view(row) for row in session.scalars(query)]
    if len(rows) <= limit:
        return OrderPage(items=rows, next_after=None)
    last = rows[limit - 1]
    return OrderPage(items=rows[:limit], next_after=encode_cursor(last.created_at, last.uid))


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """An order awaiting an operator's decision, with what the operator checks in the bank."""

    order: OrderView
    card_masked: str | None
    card_bank: str | None
    #: When the payer confirmed: the order has not changed since it entered ``processing``.
    waiting_since: datetime


def latest_event_order(session: Session, uid: uuid.UUID | str) -> dict[str, Any] | None:
    """The order snapshot (as JSON) of the newest recorded event of ``uid``, or ``None``.

    Events carry the whole order, so this is the order exactly as the order agent last
    published it (``orders`` rows leave out some of it, such as the TTL and decision id).
    """
    key = as_uuid(uid)
    if key is None:
        return None
    payload = session.scalars(
        select(OrderEvent.payload)
        .where(OrderEvent.order_uid == key)
        .order_by(OrderEvent.seq.desc())
        .limit(1)
    ).first()
    order = None if payload is None else payload.get("order")
    return order if isinstance(order, dict) else None


def awaiting_decision(session: Session, *, limit: int = 100) -> list[QueueEntry]:
    """The operator queue: ``processing`` orders, the longest-waiting first.

    The operator queue itself (no topic carries it): an order is here from the moment
    the projector writes its ``processing`` row until a decision's row replaces it.
    """
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1..{MAX_PAGE}")
    query = (
        select(Order, Card.pan_masked, Card.bank)
        .outerjoin(Card, Card.id == Order.card_id)
        .where(Order.status == "processing")
        .order_by(Order.updated_at, Order.uid)
        .limit(limit)
    )
    return [
        QueueEntry(order=_view(row), card_masked=pan, card_bank=bank, waiting_since=row.updated_at)
        for row, pan, bank in session.execute(query)
    ]


def order_events(session: Session, uid: uuid.UUID | str) -> list[OrderEventView]:
    """The order's recorded events in order (``seq``)."""
    key = as_uuid(uid)
    if key is None:
        return []
    rows = session.scalars(
        select(OrderEvent).where(OrderEvent.order_uid == key).order_by(OrderEvent.seq)
    )
    return [
        OrderEventView(
            event_id=row.event_id,
            order_uid=row.order_uid,
            seq=row.seq,
            type=row.type,
            payload=dict(row.payload),
            occurred_at=row.occurred_at,
            recorded_at=row.recorded_at,
        )
        for row in rows
    ]


def reveal_payer_card(
    session: Session, box: SecretBox, uid: uuid.UUID | str, actor: str
) -> str | None:
    """:func:`order_payer_card` for a person, audited: who saw which order's full card
    (the audit row names the order and the masked number, never the number itself)."""
    order = get_order(session, uid)
    if order is None:
        return None
    pan = order_payer_card(session, box, order.uid)
    if pan is not None:
        audit.record(
            session,
            actor=actor,
            action="order.reveal_payer_card",
            entity="order",
            entity_id=str(order.uid),
            before=None,
            after={"payer_card_masked": order.payer_card_masked},
        )
    return pan


__all__ = [
    "MAX_PAGE",
    "InvalidCursor",
    "OrderEventView",
    "OrderPage",
    "OrderView",
    "decode_cursor",
    "encode_cursor",
    "get_order",
    "list_orders",
    "order_events",
    "order_payer_card",
    "reveal_payer_card",
]
