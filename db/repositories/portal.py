"""The partner portal's reads: every query takes a :class:`PartnerScope` and filters by its
partner, so a partner user can see only its own partner's rows whatever the page asks for.

The scope comes from the signed-in user's row (:func:`scope_of`: an active ``partner`` user
and the partner it is bound to), never from anything the browser sends. A row of another
partner is answered exactly like a row that does not exist (``None`` or nothing listed),
so a partner cannot even learn which ids belong to others. Writes are in
:mod:`db.repositories.portal_actions`.

Card numbers appear only masked; operators' names and sealed columns are never selected.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, String, and_, cast, func, select
from sqlalchemy.orm import Session, aliased

from db.models import CallbackDelivery, Card, LedgerPosting, Order, OrderEvent, Partner
from db.models import ConsoleUser as UserRow
from db.repositories import api_keys, balances, callbacks
from db.repositories._common import as_uuid
from db.repositories.users import PARTNER_ROLE
from domain.ledger import SYSTEM_FEES

ORDERS_LIMIT: Final = 500
LEDGER_LIMIT: Final = 500
DELIVERIES_LIMIT: Final = 200


@dataclass(frozen=True, slots=True)
class PartnerScope:
    """Whose data a portal request may touch, and who acts (recorded in the audit log)."""

    partner_id: str
    actor: str


def scope_of(session: Session, username: str) -> PartnerScope | None:
    """The scope of ``username`` if it is an active partner user, else ``None``."""
    partner_id = session.scalar(
        select(UserRow.partner_id).where(
            UserRow.username == username.strip().lower(),
            UserRow.role == PARTNER_ROLE,
            UserRow.is_active,
        )
    )
    return None if partner_id is None else PartnerScope(partner_id, username.strip().lower())


# --- orders -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortalOrder:
    """An order as its partner sees it (what the partner API shows, the card masked)."""

    uid: str
    partner_order_id: str
    direction: str
    status: str
    amount_minor: int
    fee_minor: int
    currency: str
    card: str | None
    payer_card_masked: str | None
    decline_reason: str | None
    created_at: datetime
    expires_at: datetime
    updated_at: datetime


_ORDER_COLUMNS = (
    Order.uid,
    Order.partner_order_id,
    Order.direction,
    Order.status,
    Order.amount_minor,
    Order.fee_minor,
    Order.currency,
    Card.pan_masked,
    Order.payer_card_masked,
    Order.decline_reason,
    Order.created_at,
    Order.expires_at,
    Order.updated_at,
)


def _order(row: tuple[object, ...]) -> PortalOrder:
    uid, *rest = row
    return PortalOrder(str(uid), *rest)  # type: ignore[arg-type]


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def orders(
    session: Session,
    scope: PartnerScope,
    *,
    statuses: list[str] | None = None,
    direction: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    search: str | None = None,
    limit: int = ORDERS_LIMIT,
) -> list[PortalOrder]:
    """The partner's orders matching every given filter, newest first; ``created_to`` is
    exclusive; ``search`` matches the uid or the partner's order id."""
    where: list[ColumnElement[bool]] = [Order.partner_id == scope.partner_id]
    if statuses:
        where.append(Order.status.in_(statuses))
    if direction:
        where.append(Order.direction == direction)
    if created_from is not None:
        where.append(Order.created_at >= created_from)
    if created_to is not None:
        where.append(Order.created_at < created_to)
    if search and search.strip():
        pattern = _like(search.strip())
        where.append(cast(Order.uid, String).like(pattern) | Order.partner_order_id.like(pattern))
    query = (
        select(*_ORDER_COLUMNS)
        .outerjoin(Card, Card.id == Order.card_id)
        .where(*where)
        .order_by(Order.created_at.desc(), Order.uid.desc())
        .limit(limit)
    )
    return [_order(tuple(row)) for row in session.execute(query)]


def order(session: Session, scope: PartnerScope, uid: uuid.UUID | str) -> PortalOrder | None:
    """One of the partner's orders, or ``None`` (unknown, or another partner's)."""
    key = as_uuid(uid)
    if key is None:
        return None
    row = session.execute(
        select(*_ORDER_COLUMNS)
        .outerjoin(Card, Card.id == Order.card_id)
        .where(Order.uid == key, Order.partner_id == scope.partner_id)
    ).one_or_none()
    return None if row is None else _order(tuple(row))


@dataclass(frozen=True, slots=True)
class OrderStep:
    seq: int
    type: str
    status: str | None
    occurred_at: datetime


def order_history(session: Session, scope: PartnerScope, uid: uuid.UUID | str) -> list[OrderStep]:
    """The events of one of the partner's orders, in order (empty for anyone else's)."""
    key = as_uuid(uid)
    if key is None:
        return []
    rows = session.execute(
        select(
            OrderEvent.seq,
            OrderEvent.type,
            OrderEvent.payload["order"]["status"].astext,
            OrderEvent.occurred_at,
        )
        .join(Order, Order.uid == OrderEvent.order_uid)
        .where(OrderEvent.order_uid == key, Order.partner_id == scope.partner_id)
        .order_by(OrderEvent.seq)
    )
    return [OrderStep(*row) for row in rows]


# --- money --------------------------------------------------------------------------------


def partner_balances(session: Session, scope: PartnerScope) -> list[balances.BalanceView]:
    return balances.partner_balances(session, scope.partner_id)


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One leg on one of the partner's accounts, with the fee Keeper earned in the same
    transaction (``0`` where none: a hold, a release)."""

    posted_at: datetime
    order_uid: str
    partner_order_id: str | None
    kind: str
    account: str
    currency: str
    amount_minor: int
    fee_minor: int


def ledger(
    session: Session, scope: PartnerScope, *, currency: str | None = None, limit: int = LEDGER_LIMIT
) -> list[LedgerLine]:
    """The partner's postings, newest first, each with its transaction's fee."""
    fee = aliased(LedgerPosting)
    where: list[ColumnElement[bool]] = [LedgerPosting.partner_id == scope.partner_id]
    if currency:
        where.append(LedgerPosting.currency == currency)
    query = (
        select(
            LedgerPosting.posted_at,
            LedgerPosting.order_uid,
            Order.partner_order_id,
            LedgerPosting.kind,
            LedgerPosting.account,
            LedgerPosting.currency,
            LedgerPosting.amount_minor,
            func.coalesce(fee.amount_minor, 0),
        )
        .outerjoin(
            Order,
            and_(Order.uid == LedgerPosting.order_uid, Order.partner_id == scope.partner_id),
        )
        .outerjoin(
            fee,
            and_(
                fee.order_uid == LedgerPosting.order_uid,
                fee.kind == LedgerPosting.kind,
                fee.account == SYSTEM_FEES,
            ),
        )
        .where(*where)
        .order_by(
            LedgerPosting.posted_at.desc(),
            LedgerPosting.order_uid,
            LedgerPosting.kind,
            LedgerPosting.account,
        )
        .limit(limit)
    )
    return [
        LedgerLine(at, str(uid), po, kind, account, cur.strip(), amount, fee_minor)
        for at, uid, po, kind, account, cur, amount, fee_minor in session.execute(query)
    ]


# --- callbacks ----------------------------------------------------------------------------


def deliveries(
    session: Session,
    scope: PartnerScope,
    *,
    status: str | None = None,
    order_uid: uuid.UUID | None = None,
    limit: int = DELIVERIES_LIMIT,
) -> list[callbacks.DeliveryView]:
    return callbacks.list_deliveries(
        session, partner_id=scope.partner_id, status=status, order_uid=order_uid, limit=limit
    )


def delivery(
    session: Session, scope: PartnerScope, delivery_id: uuid.UUID | str
) -> callbacks.DeliveryView | None:
    """One of the partner's deliveries, or ``None`` (unknown, or another partner's)."""
    view = callbacks.get_delivery(session, delivery_id)
    return view if view is not None and view.partner_id == scope.partner_id else None


def delivery_counts(session: Session, scope: PartnerScope) -> dict[str, int]:
    rows = session.execute(
        select(CallbackDelivery.status, func.count())
        .where(CallbackDelivery.partner_id == scope.partner_id)
        .group_by(CallbackDelivery.status)
    )
    return {str(status): int(n) for status, n in rows}


# --- credentials --------------------------------------------------------------------------


def partner_api_keys(session: Session, scope: PartnerScope) -> list[api_keys.ApiKeyInfo]:
    return api_keys.list_api_keys(session, scope.partner_id)


def partner_callback_secrets(
    session: Session, scope: PartnerScope
) -> list[callbacks.CallbackSecretInfo]:
    return callbacks.list_callback_secrets(session, scope.partner_id)


# --- terms --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRange:
    """The smallest and largest order a card of the partner's pool takes, per currency."""

    currency: str
    min_order_minor: int
    max_order_minor: int


@dataclass(frozen=True, slots=True)
class PartnerSettings:
    partner_id: str
    name: str
    status: str
    deposit_fee_bp: int
    withdrawal_fee_bp: int
    callback_url: str | None
    version: int
    order_ranges: list[OrderRange]


def partner_settings(session: Session, scope: PartnerScope) -> PartnerSettings | None:
    """The terms the platform set for the partner (read-only in the portal)."""
    row = session.get(Partner, scope.partner_id)
    if row is None:
        return None
    ranges = session.execute(
        select(Card.currency, func.min(Card.min_order_minor), func.max(Card.max_order_minor))
        .where(Card.pool_id == row.pool_id, Card.status == "active")
        .group_by(Card.currency)
        .order_by(Card.currency)
    )
    return PartnerSettings(
        partner_id=row.id,
        name=row.name,
        status=row.status,
        deposit_fee_bp=row.deposit_fee_bp,
        withdrawal_fee_bp=row.withdrawal_fee_bp,
        callback_url=row.callback_url,
        version=row.version,
        order_ranges=[OrderRange(cur.strip(), low, high) for cur, low, high in ranges],
    )


__all__ = [
    "DELIVERIES_LIMIT",
    "LEDGER_LIMIT",
    "ORDERS_LIMIT",
    "LedgerLine",
    "OrderRange",
    "OrderStep",
    "PartnerScope",
    "PartnerSettings",
    "PortalOrder",
    "deliveries",
    "delivery",
    "delivery_counts",
    "ledger",
    "order",
    "order_history",
    "orders",
    "partner_api_keys",
    "partner_balances",
    "partner_callback_secrets",
    "partner_settings",
    "scope_of",
]
