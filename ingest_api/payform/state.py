"""The order as the payment form shows it, and which screen that is.

Two sources answer "what is this order's status": PostgreSQL (written by the projector, a
little behind) and this process's feed (what ``order-events`` said since the process
started). Both carry the order's event version; the newer one wins, so a page reloaded just
after the payer confirmed already shows the waiting screen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from db.repositories import disputes as disputes_repo
from db.repositories import orders as orders_repo
from db.repositories.disputes import DisputeView
from domain.orders import Direction, OrderStatus
from ingest_api.deps import Services
from ingest_api.models import CardToPay
from ingest_api.orders_common import card_to_pay
from ingest_api.payform.feed import PayerUpdate, newest


class Screen(StrEnum):
    PENDING = "pending"
    DEPOSIT_NEW = "deposit-new"
    WITHDRAWAL_NEW = "withdrawal-new"
    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"
    DECLINED = "declined"
    CANCELLED = "cancelled"


_VERDICT_SCREENS = {
    OrderStatus.APPROVED: Screen.APPROVED,
    OrderStatus.REJECTED: Screen.REJECTED,
    OrderStatus.FAILED: Screen.FAILED,
    OrderStatus.EXPIRED: Screen.EXPIRED,
    OrderStatus.DECLINED: Screen.DECLINED,
    OrderStatus.CANCELLED: Screen.CANCELLED,
}


def screen_for(direction: Direction, status: OrderStatus, *, deadline_passed: bool) -> Screen:
    """The screen for an order; a ``new`` order past its deadline is already expired for the
    payer (the agent's timer will say so in a moment, and refuses a confirmation meanwhile)."""
    if status is OrderStatus.PENDING:
        return Screen.PENDING
    if status is OrderStatus.NEW:
        if deadline_passed:
            return Screen.EXPIRED
        return Screen.DEPOSIT_NEW if direction is Direction.DEPOSIT else Screen.WITHDRAWAL_NEW
    if status is OrderStatus.PROCESSING:
        return Screen.WAITING
    return _VERDICT_SCREENS[status]


def from_view(view: orders_repo.OrderView) -> PayerUpdate:
    return PayerUpdate(
        uid=view.uid,
        version=view.version,
        direction=Direction(view.direction),
        status=OrderStatus(view.status),
        amount_minor=view.amount_minor,
        currency=view.currency,
        expires_at_ms=int(view.expires_at.timestamp() * 1000),
        payer_card_masked=view.payer_card_masked,
        card_id=str(view.card_id) if view.card_id is not None else None,
    )


async def current(services: Services, uid: uuid.UUID) -> PayerUpdate | None:
    """The newest status known to PostgreSQL or to this process's feed; None: no such order."""
    view = await services.db(lambda s: orders_repo.get_order(s, uid))
    pushed = services.feed.latest(uid) if services.feed is not None else None
    return newest(from_view(view) if view is not None else None, pushed)


#: The screens under which a deposit's payer may say "I paid anyway" (:mod:`domain.disputes`).
DISPUTE_SCREENS: Final = frozenset({Screen.EXPIRED, Screen.REJECTED})


@dataclass(frozen=True, slots=True)
class PageState:
    order: PayerUpdate
    screen: Screen
    card: CardToPay | None  # the card a deposit pays to, only while the payer needs it
    #: The order's dispute, read only where the page can offer one.
    dispute: DisputeView | None = None


class _CardRef:
    def __init__(self, order: PayerUpdate) -> None:
        self.direction = order.direction.value
        self.card_id: object = order.card_id


async def page_state(services: Services, uid: uuid.UUID, now_ms: int) -> PageState | None:
    order = await current(services, uid)
    if order is None:
        return None
    screen = screen_for(
        order.direction, order.status, deadline_passed=now_ms >= order.expires_at_ms
    )
    card, dispute = None, None
    if screen is Screen.DEPOSIT_NEW:
        card = await card_to_pay(services, _CardRef(order))
    if order.direction is Direction.DEPOSIT and screen in DISPUTE_SCREENS:
        dispute = await services.db(lambda s: disputes_repo.dispute_of_order(s, uid))
    return PageState(order=order, screen=screen, card=card, dispute=dispute)
