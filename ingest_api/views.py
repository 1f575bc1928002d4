"""Build API bodies from what the pipeline says (reply snapshots) or what PostgreSQL holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Protocol

from domain.orders import DeclineReason, Direction, OrderStatus
from ingest_api.models import CardToPay, OrderPublic, PayerStatus
from schemas.orders import OrderSnapshot


class OrderRowLike(Protocol):
    """The columns of an order row (``db.models.Order`` or a repository view) we answer with."""

    @property
    def uid(self) -> uuid.UUID: ...
    @property
    def partner_order_id(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def amount_minor(self) -> int: ...
    @property
    def fee_minor(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def decline_reason(self) -> str | None: ...
    @property
    def payer_card_masked(self) -> str | None: ...


def _ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def links(base_url: str, uid: uuid.UUID) -> tuple[str, str]:
    """(payment link for the payer, status link for the partner)."""
    return f"{base_url}/pay/{uid}", f"{base_url}/v1/orders/{uid}"


def from_snapshot(snap: OrderSnapshot, base_url: str, card: CardToPay | None) -> OrderPublic:
    payment_url, status_url = links(base_url, snap.uid)
    return OrderPublic(
        uid=snap.uid,
        partner_order_id=snap.partner_order_id,
        direction=snap.direction,
        status=snap.status,
        amount_minor=snap.amount_minor,
        fee_minor=snap.fee_minor,
        currency=snap.currency,
        created_at=_ms(snap.created_at_ms),
        expires_at=_ms(snap.expires_at_ms),
        updated_at=_ms(snap.updated_at_ms),
        decline_reason=snap.decline_reason,
        card=card,
        payer_card_masked=snap.payer_card_masked,
        payment_url=payment_url,
        status_url=status_url,
    )


def from_row(row: OrderRowLike, base_url: str, card: CardToPay | None) -> OrderPublic:
    payment_url, status_url = links(base_url, row.uid)
    return OrderPublic(
        uid=row.uid,
        partner_order_id=row.partner_order_id,
        direction=Direction(row.direction),
        status=OrderStatus(row.status),
        amount_minor=row.amount_minor,
        fee_minor=row.fee_minor,
        currency=row.currency,
        created_at=row.created_at,
        expires_at=row.expires_at,
        updated_at=row.updated_at,
        decline_reason=DeclineReason(row.decline_reason) if row.decline_reason else None,
        card=card,
        payer_card_masked=row.payer_card_masked,
        payment_url=payment_url,
        status_url=status_url,
    )


def payer_status(order: OrderPublic) -> PayerStatus:
    """The public view of an order. The full number of the card to pay to is shown only
    while the payer may still pay (``new``); afterwards ``number`` is the masked form."""
    card = order.card
    if card is not None and order.status is not OrderStatus.NEW:
        card = card.model_copy(update={"number": card.masked})
    return PayerStatus(
        uid=order.uid,
        direction=order.direction,
        status=order.status,
        amount_minor=order.amount_minor,
        currency=order.currency,
        expires_at=order.expires_at,
        card=card,
        payer_card_masked=order.payer_card_masked,
    )
