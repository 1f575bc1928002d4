"""Disputes: open one with its receipt, read them (scoped to a partner where asked), resolve.

Every change is one transaction with everything that follows from it: the dispute row, its
receipt, the partner's callback (``dispute.opened`` / ``dispute.resolved``, in the delivery
log, :mod:`db.repositories.callbacks`) and the audit row. The money of an accepted dispute
is not moved here: :func:`resolve_dispute` returns the :class:`Settlement` the caller sends
to the order's desk, which books it once (:mod:`schemas.disputes`); accepting an accepted
dispute again returns it again, so a lost command can be sent once more.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from db.models import Card, Dispute, DisputeReceipt, LedgerPosting, Order, Partner
from db.repositories import audit
from db.repositories._common import as_uuid
from db.repositories.callbacks import DEFAULT_WINDOW_S, record_deliveries
from db.repositories.errors import InvalidInput, NotFound
from db.repositories.orders import latest_event_order
from domain.disputes import (
    MAX_COMMENT_CHARS,
    MAX_REASON_CHARS,
    DisputeExists,
    DisputeStatus,
    DisputeVerdict,
    OpenedBy,
    check_disputable,
    clean_text,
    receipt_type,
    resolve,
)
from domain.orders import Direction, OrderStatus
from schemas.callbacks import NewDelivery, delivery_id, iso_time
from schemas.desks import partner_desk

OPENED: Final = "dispute.opened"
RESOLVED: Final = "dispute.resolved"
MAX_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class DisputeView:
    dispute_id: uuid.UUID
    order_uid: uuid.UUID
    partner_id: str
    opened_by: OpenedBy
    status: DisputeStatus
    comment: str | None
    #: The bank notification that is the evidence (a dispute an operator opened), if any.
    notification_id: uuid.UUID | None
    created_at: datetime
    deadline_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_reason: str | None


@dataclass(frozen=True, slots=True)
class DisputeCase:
    """A dispute with what an operator checks: the order, its card, the late credit's state."""

    dispute: DisputeView
    partner_order_id: str
    order_status: str
    amount_minor: int
    fee_minor: int
    currency: str
    card_masked: str | None
    card_bank: str | None
    order_created_at: datetime
    receipt_type: str | None
    receipt_bytes: int | None
    #: Whether the late credit of an accepted dispute is booked in the ledger yet.
    credited: bool


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the order's desk needs to credit an accepted dispute (``SettleDispute``)."""

    dispute_id: uuid.UUID
    uid: uuid.UUID
    partner_id: str
    currency: str
    amount_minor: int
    fee_minor: int
    desk: str


def _view(row: Dispute) -> DisputeView:
    return DisputeView(
        dispute_id=row.id,
        order_uid=row.order_uid,
        partner_id=row.partner_id,
        opened_by=OpenedBy(row.opened_by),
        status=DisputeStatus(row.status),
        comment=row.comment,
        notification_id=row.notification_id,
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_reason=row.resolution_reason,
    )


def public_fields(view: DisputeView, order: Order) -> dict[str, Any]:
    """The dispute as its partner sees it (the API and the callbacks; operators unnamed)."""
    return {
        "dispute_id": str(view.dispute_id),
        "order_uid": str(view.order_uid),
        "partner_order_id": order.partner_order_id,
        "status": view.status.value,
        "opened_by": view.opened_by.value,
        "amount_minor": order.amount_minor,
        "currency": order.currency,
        "comment": view.comment,
        "created_at": iso_time(view.created_at),
        "deadline_at": iso_time(view.deadline_at),
        "resolved_at": None if view.resolved_at is None else iso_time(view.resolved_at),
        "resolution_reason": view.resolution_reason,
    }


def _callback(event_type: str, view: DisputeView, order: Order, now: datetime) -> NewDelivery:
    ident = delivery_id(view.order_uid, event_type)
    document = {
        "delivery_id": str(ident),
        "event": event_type,
        "occurred_at": iso_time(now),
        "dispute": public_fields(view, order),
    }
    return NewDelivery(
        delivery_id=ident,
        order_uid=view.order_uid,
        event_type=event_type,
        order_version=order.version,
        partner_id=view.partner_id,
        body=json.dumps(document, separators=(",", ":")),
    )


def _order(session: Session, uid: uuid.UUID, partner_id: str | None) -> Order:
    order = session.get(Order, uid, with_for_update=True)
    if order is None or (partner_id is not None and order.partner_id != partner_id):
        raise NotFound(f"order {uid} not found")  # another partner's order looks absent
    return order


def open_dispute(
    session: Session,
    *,
    order_uid: uuid.UUID,
    opened_by: OpenedBy,
    receipt: bytes | None,
    comment: str | None,
    now: datetime,
    deadline_s: float,
    partner_id: str | None = None,
    notification_id: uuid.UUID | None = None,
    actor: str | None = None,
) -> DisputeView:
    """Open a dispute on an expired or rejected deposit; ``partner_id`` scopes the order to
    that partner (the API), ``None`` trusts the caller (the payer's link names the order).
    The evidence is a ``receipt``, or (an operator, ``actor``, attaching a bank notification
    to the order) ``notification_id``.

    Refuses, changing nothing: an unknown order, one that is not a closed deposit, one with a
    dispute already, a receipt that is not a PDF, PNG or JPEG (by its bytes) or too large.
    """
    order = _order(session, order_uid, partner_id)
    check_disputable(Direction(order.direction), OrderStatus(order.status))
    by_operator = opened_by is OpenedBy.OPERATOR
    if by_operator != (notification_id is not None) or by_operator == (receipt is not None):
        raise ValueError("a receipt from a payer or partner, or an operator's notification")
    content_type = None if receipt is None else receipt_type(receipt)
    text = clean_text("comment", comment, MAX_COMMENT_CHARS)
    existing = session.scalars(select(Dispute).where(Dispute.order_uid == order_uid)).first()
    if existing is not None:
        raise DisputeExists(str(existing.id), DisputeStatus(existing.status))
    row = Dispute(
        id=uuid.uuid4(),
        order_uid=order_uid,
        partner_id=order.partner_id,
        opened_by=opened_by.value,
        status=DisputeStatus.OPEN.value,
        comment=text,
        notification_id=notification_id,
        created_at=now,
        deadline_at=now + timedelta(seconds=deadline_s),
    )
    session.add(row)
    session.flush()
    evidence: dict[str, Any] = {"notification_id": notification_id}
    if receipt is not None and content_type is not None:
        digest = hashlib.sha256(receipt).hexdigest()
        session.add(
            DisputeReceipt(
                dispute_id=row.id,
                content_type=content_type,
                size_bytes=len(receipt),
                sha256=digest,
                data=receipt,
            )
        )
        evidence = {"receipt_type": content_type, "receipt_bytes": len(receipt)}
        evidence["receipt_sha256"] = digest
    view = _view(row)
    record_deliveries(session, [_callback(OPENED, view, order, now)], now, DEFAULT_WINDOW_S)
    audit.record(
        session,
        actor=actor or _opener(opened_by, order.partner_id),
        action="dispute.open",
        entity="dispute",
        entity_id=str(row.id),
        before=None,
        after={
            "order_uid": str(order_uid),
            "opened_by": opened_by.value,
            "comment": text,
            **evidence,
            "deadline_at": row.deadline_at,
        },
    )
    session.flush()
    return view


def _opener(opened_by: OpenedBy, partner_id: str) -> str:
    return f"partner:{partner_id}" if opened_by is OpenedBy.PARTNER else opened_by.value


def get_dispute(
    session: Session, dispute_id: uuid.UUID | str, *, partner_id: str | None = None
) -> DisputeView | None:
    """One dispute; with ``partner_id``, only if it is that partner's."""
    key = as_uuid(dispute_id)
    row = None if key is None else session.get(Dispute, key)
    if row is None or (partner_id is not None and row.partner_id != partner_id):
        return None
    return _view(row)


def dispute_of_order(session: Session, order_uid: uuid.UUID | str) -> DisputeView | None:
    key = as_uuid(order_uid)
    if key is None:
        return None
    row = session.scalars(select(Dispute).where(Dispute.order_uid == key)).first()
    return None if row is None else _view(row)


def public_dispute(
    session: Session, dispute_id: uuid.UUID | str, *, partner_id: str
) -> dict[str, Any] | None:
    """The partner's view of its own dispute (the same fields as its callbacks), or None."""
    view = get_dispute(session, dispute_id, partner_id=partner_id)
    if view is None:
        return None
    order = session.get(Order, view.order_uid)
    assert order is not None  # a foreign key
    return public_fields(view, order)


def _cases() -> Select[Dispute, Order, str, str, str, int, bool]:
    credited = (
        select(LedgerPosting.order_uid)
        .where(LedgerPosting.kind == "dispute_credit", LedgerPosting.order_uid == Dispute.order_uid)
        .exists()
    )
    return (
        select(
            Dispute,
            Order,
            Card.pan_masked,
            Card.bank,
            DisputeReceipt.content_type,
            DisputeReceipt.size_bytes,
            credited,
        )
        .join(Order, Order.uid == Dispute.order_uid)
        .outerjoin(DisputeReceipt, DisputeReceipt.dispute_id == Dispute.id)
        .outerjoin(Card, Card.id == Order.card_id)
    )


def _case(found: Row[Dispute, Order, str, str, str, int, bool]) -> DisputeCase:
    dispute, order, pan, bank, content_type, size, done = found
    return DisputeCase(
        dispute=_view(dispute),
        partner_order_id=order.partner_order_id,
        order_status=order.status,
        amount_minor=order.amount_minor,
        fee_minor=order.fee_minor,
        currency=order.currency,
        card_masked=pan,
        card_bank=bank,
        order_created_at=order.created_at,
        receipt_type=content_type,
        receipt_bytes=size,
        credited=bool(done),
    )


def list_cases(
    session: Session,
    *,
    statuses: Sequence[DisputeStatus] = (DisputeStatus.OPEN,),
    partner_id: str | None = None,
    limit: int = 100,
) -> list[DisputeCase]:
    """Disputes for the console: open ones by deadline (the most urgent first), resolved
    ones newest first."""
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1..{MAX_PAGE}")
    query = _cases().where(Dispute.status.in_([s.value for s in statuses])).limit(limit)
    if partner_id is not None:
        query = query.where(Dispute.partner_id == partner_id)
    if set(statuses) == {DisputeStatus.OPEN}:
        query = query.order_by(Dispute.deadline_at, Dispute.id)
    else:
        query = query.order_by(Dispute.created_at.desc(), Dispute.id)
    return [_case(found) for found in session.execute(query)]


def get_case(session: Session, dispute_id: uuid.UUID | str) -> DisputeCase | None:
    key = as_uuid(dispute_id)
    found = None if key is None else session.execute(_cases().where(Dispute.id == key)).first()
    return None if found is None else _case(found)


def count_open(session: Session, now: datetime) -> tuple[int, int]:
    """How many disputes are open, and how many of them are past their deadline."""
    open_, overdue = session.execute(
        select(
            func.count(),
            func.count().filter(Dispute.deadline_at < now),
        ).where(Dispute.status == DisputeStatus.OPEN.value)
    ).one()
    return int(open_), int(overdue)


def receipt_of(session: Session, dispute_id: uuid.UUID | str) -> tuple[str, bytes] | None:
    """The receipt's media type and bytes: for console users only, never a public link."""
    key = as_uuid(dispute_id)
    row = None if key is None else session.get(DisputeReceipt, key)
    return None if row is None else (row.content_type, row.data)


def resolve_dispute(
    session: Session,
    *,
    dispute_id: uuid.UUID | str,
    verdict: DisputeVerdict,
    reason: str | None,
    actor: str,
    now: datetime,
) -> tuple[DisputeView, Settlement | None]:
    """Accept or reject an open dispute (a rejection names its reason); for an acceptance,
    the :class:`Settlement` to send to the order's desk. Accepting an accepted dispute again
    changes nothing here and returns the settlement again."""
    key = as_uuid(dispute_id)
    row = None if key is None else session.get(Dispute, key, with_for_update=True)
    if row is None:
        raise NotFound(f"dispute {dispute_id} not found")
    text = clean_text("reason", reason, MAX_REASON_CHARS)
    before = DisputeStatus(row.status)
    after = resolve(before, verdict, text)
    order = session.get(Order, row.order_uid)
    assert order is not None  # a foreign key
    if after is not before:
        row.status, row.resolved_at, row.resolved_by = after.value, now, actor
        row.resolution_reason = text
        session.flush()
        view = _view(row)
        record_deliveries(session, [_callback(RESOLVED, view, order, now)], now, DEFAULT_WINDOW_S)
    view = _view(row)
    audit.record(
        session,
        actor=actor,
        action="dispute.resolve" if after is not before else "dispute.settle_again",
        entity="dispute",
        entity_id=str(row.id),
        before={"status": before.value},
        after={"status": after.value, "reason": text, "order_uid": str(row.order_uid)},
    )
    session.flush()
    if after is not DisputeStatus.ACCEPTED or _credited(session, view):
        return view, None
    return view, _settlement(session, view, order)


def _credited(session: Session, view: DisputeView) -> bool:
    """Whether the late credit is booked already: then accepting again sends nothing. (The
    desk would book a second send once anyway, while it remembers the order's operations;
    it forgets them with the order, ADR 0008, so a late re-send must not reach it.)"""
    found = session.scalars(
        select(LedgerPosting.posting_id)
        .where(
            LedgerPosting.order_uid == view.order_uid,
            LedgerPosting.kind == "dispute_credit",
        )
        .limit(1)
    ).first()
    return found is not None


def _settlement(session: Session, view: DisputeView, order: Order) -> Settlement:
    """The late credit, addressed to the desk the order was opened at (ADR 0005)."""
    snapshot = latest_event_order(session, order.uid) or {}
    desk = snapshot.get("desk")
    if not isinstance(desk, str):  # an order recorded before desks: its partner's desk now
        partner = session.get(Partner, order.partner_id)
        desk = partner_desk(order.partner_id, None if partner is None else partner.pool_id)
    return Settlement(
        dispute_id=view.dispute_id,
        uid=order.uid,
        partner_id=order.partner_id,
        currency=order.currency,
        amount_minor=order.amount_minor,
        fee_minor=order.fee_minor,
        desk=desk,
    )
