"""Bank notifications: stored once, settled by the desk's decision, resolved by operators.

- :func:`store`: the intake's write. A notification is stored once: a second request with the
  same device and device-side id, or with the same text, sender and phone time on the same
  card (:func:`content_hash`), finds the first row instead (``created`` is ``False``).
- :func:`settle`: the card projector's write of what the desk decided
  (``notification-outcomes``), once: only a ``received`` row moves, so a redelivered outcome
  changes nothing. An approval is audited with the device as actor and the notification's id.
- :func:`dismiss` and :func:`attach`: an operator's resolution of an ``unmatched`` one,
  audited. Attaching records the order; the caller decides what follows (an open order is
  confirmed and approved like a suggestion; an expired or rejected one is a dispute's case,
  opened at once and settled on the Disputes page).
- :func:`hand_over_closed`: the projector's hand-over of a notification attached to a deposit
  that was open then and has closed unpaid since: a dispute's case too.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Card, CardPool, Notification, NotificationParse, Order
from db.repositories import audit, disputes
from db.repositories.errors import InvalidInput, NotFound
from domain.bank_messages import Parsed
from domain.disputes import DEFAULT_DEADLINE_S, DISPUTABLE, DisputeExists, OpenedBy
from schemas.notifications import NotificationSettled, Outcome
from schemas.translation import from_epoch_ms

#: The outcome of a notification whose parse needs no desk: not a credit, or not parsed.
IGNORED: Final = "ignored"
UNPARSED: Final = "unparsed"
RECEIVED: Final = "received"
#: Operators resolve only what the desk left unmatched (or a suggestion nobody approved).
RESOLVABLE: Final = ("unmatched", "suggested")
MAX_REASON_CHARS: Final = 500
#: The deposits a credit may be attached to: open ones (the caller approves them) and the
#: disputable ones (a dispute opens).
ATTACHABLE: Final = frozenset({"new", "processing", *DISPUTABLE})


def content_hash(text: str, sender: str, received_at: datetime) -> bytes:
    """The identity of a message when its device-side id differs (a reinstalled app)."""
    stamp = received_at.astimezone(UTC).isoformat(timespec="milliseconds")
    return hashlib.sha256("\x1f".join((text, sender, stamp)).encode("utf-8")).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class NewNotification:
    device_id: str
    card_id: str
    device_notification_id: str
    text: str
    sender: str
    received_at: datetime
    parsed: Parsed | None


@dataclass(frozen=True, slots=True)
class Stored:
    notification_id: uuid.UUID
    created: bool
    outcome: str


def outcome_at_intake(parsed: Parsed | None) -> str:
    if parsed is None:
        return UNPARSED
    return RECEIVED if parsed.kind == "credit" else IGNORED


def store(session: Session, new: NewNotification) -> Stored:
    """Insert ``new`` unless it is already stored (see the module); the edge commits."""
    digest = content_hash(new.text, new.sender, new.received_at)
    parsed = new.parsed
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "device_id": new.device_id,
        "card_id": uuid.UUID(new.card_id),
        "device_notification_id": new.device_notification_id,
        "content_hash": digest,
        "raw_text": new.text,
        "sender": new.sender,
        "received_at": new.received_at,
        "outcome": outcome_at_intake(parsed),
    }
    inserted = session.execute(
        pg_insert(Notification).values(**values).on_conflict_do_nothing().returning(Notification.id)
    ).scalar_one_or_none()
    if inserted is not None:
        if parsed is not None:
            session.add(
                NotificationParse(
                    notification_id=inserted,
                    template_id=parsed.template_id,
                    kind=parsed.kind.value,
                    amount_minor=parsed.amount_minor,
                    currency=parsed.currency,
                    tail=parsed.tail,
                    counterparty=parsed.counterparty,
                )
            )
            session.flush()
        return Stored(inserted, True, values["outcome"])
    same = (Notification.device_id == new.device_id) & (
        Notification.device_notification_id == new.device_notification_id
    )
    same_content = (Notification.card_id == values["card_id"]) & (
        Notification.content_hash == digest
    )
    row = session.execute(
        select(Notification.id, Notification.outcome)
        .where(same | same_content)
        .order_by(same.desc())
        .limit(1)
    ).one()
    return Stored(row.id, False, row.outcome)


def settle(session: Session, settled: Sequence[NotificationSettled]) -> int:
    """Record the desk's decisions; each once (only a ``received`` row moves)."""
    written = 0
    for item in settled:
        moved = session.execute(
            update(Notification)
            .where(Notification.id == item.notification_id, Notification.outcome == RECEIVED)
            .values(
                outcome=item.outcome.value,
                matched_uid=item.uid,
                reason=None if item.reason is None else item.reason.value,
                settled_at=from_epoch_ms(item.settled_at_ms),
            )
            .returning(Notification.id)
        ).scalar_one_or_none()
        if moved is None:
            continue
        written += 1
        if item.outcome is Outcome.APPROVED and item.uid is not None:
            audit.record(
                session,
                actor=f"device:{item.device_id}",
                action="order.approve",
                entity="order",
                entity_id=str(item.uid),
                before=None,
                after={
                    "status": "approved",
                    "decider": f"device:{item.device_id}",
                    "notification_id": str(item.notification_id),
                },
            )
    return written


@dataclass(frozen=True, slots=True)
class Resolution:
    notification_id: uuid.UUID
    card_id: str
    uid: uuid.UUID | None
    order_status: str | None


def _resolvable(session: Session, notification_id: uuid.UUID) -> Notification:
    row = session.get(Notification, notification_id, with_for_update=True)
    if row is None:
        raise NotFound(f"notification {notification_id} does not exist")
    if row.outcome not in RESOLVABLE:
        raise InvalidInput(f"notification {notification_id} is {row.outcome}, not unmatched")
    return row


def dismiss(session: Session, notification_id: uuid.UUID, reason: str, actor: str) -> bool:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"a dismissal needs a reason of 1..{MAX_REASON_CHARS} characters")
    row = _resolvable(session, notification_id)
    before = {"outcome": row.outcome}
    row.outcome, row.reason, row.resolved_by = "dismissed", reason, actor
    row.resolved_at = func.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="notification.dismiss",
        entity="notification",
        entity_id=str(notification_id),
        before=before,
        after={"outcome": "dismissed", "reason": reason},
    )
    return True


def attach(
    session: Session,
    notification_id: uuid.UUID,
    uid: uuid.UUID,
    actor: str,
    *,
    dispute_deadline_s: float = DEFAULT_DEADLINE_S,
) -> Resolution:
    """Record that ``notification_id`` pays deposit ``uid`` (same card, same amount).

    An open deposit is the caller's to confirm and approve through the API (the console
    does, naming the notification: ``POST /v1/operator/orders/{uid}/payment`` for one still
    ``new``, then the decision).

    An expired or rejected deposit is not paid by it any more: the notification opens a
    dispute on it instead (opened by ``actor``, the notification its evidence), which an
    operator settles on the Disputes page like any other (:mod:`db.repositories.disputes`).
    A dispute the order has already (say, the payer's) stays the one to settle."""
    row = _resolvable(session, notification_id)
    order = session.get(Order, uid)
    if order is None:
        raise NotFound(f"order {uid} does not exist")
    if order.direction != "deposit":
        raise InvalidInput(f"order {uid} is a {order.direction}: a bank credit pays a deposit")
    if order.status not in ATTACHABLE:
        raise InvalidInput(
            f"order {uid} is {order.status}: a credit is attached to an open deposit, or to "
            "an expired or rejected one (a dispute)"
        )
    parse = session.get(NotificationParse, notification_id)
    if parse is None or order.card_id != row.card_id:
        raise InvalidInput(f"order {uid} is on another card than the notification")
    if order.amount_minor != parse.amount_minor:
        raise InvalidInput(
            f"order {uid} is of {order.amount_minor} minor units, the credit of "
            f"{parse.amount_minor}"
        )
    before = {"outcome": row.outcome, "matched_uid": row.matched_uid}
    row.outcome, row.matched_uid, row.resolved_by = "attached", uid, actor
    row.resolved_at = func.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="notification.attach",
        entity="notification",
        entity_id=str(notification_id),
        before=before,
        after={"outcome": "attached", "matched_uid": uid, "order_status": order.status},
    )
    if order.status in DISPUTABLE:
        _hand_to_disputes(session, notification_id, order, actor, dispute_deadline_s)
    return Resolution(notification_id, str(row.card_id), uid, order.status)


def _hand_to_disputes(
    session: Session, notification_id: uuid.UUID, order: Order, actor: str, deadline_s: float
) -> bool:
    """Open the dispute on ``order`` with the notification as its evidence, unless the order
    has one already (then ``False``)."""
    if disputes.dispute_of_order(session, order.uid) is not None:
        return False
    disputes.open_dispute(
        session,
        order_uid=order.uid,
        opened_by=OpenedBy.OPERATOR,
        receipt=None,
        comment=f"bank notification {notification_id}, attached by {actor}",
        now=datetime.now(UTC),
        deadline_s=deadline_s,
        notification_id=notification_id,
        actor=actor,
    )
    return True


def attached_to(session: Session, notification_id: uuid.UUID, uid: uuid.UUID) -> bool:
    """Whether an operator attached ``notification_id`` to order ``uid`` (the evidence an
    operator's confirmation of a deposit still ``new`` names)."""
    row = session.get(Notification, notification_id)
    return row is not None and row.outcome == "attached" and row.matched_uid == uid


def evidence(session: Session, notification_id: uuid.UUID) -> dict[str, Any] | None:
    """What a dispute's operator reads of the notification that is its evidence."""
    row = session.get(Notification, notification_id)
    if row is None:
        return None
    return {
        "text": row.raw_text,
        "sender": row.sender,
        "received_at": row.received_at,
        "device_id": row.device_id,
    }


def hand_over_closed(
    session: Session,
    uids: Collection[uuid.UUID],
    *,
    dispute_deadline_s: float = DEFAULT_DEADLINE_S,
) -> list[uuid.UUID]:
    """Open a dispute for each notification an operator attached to one of the deposits
    ``uids`` while it was open, and which has since closed unpaid (expired, rejected: the
    confirmation came too late, or the deposit was rejected after all). The notification is
    its evidence and the operator who attached it its opener, as :func:`attach` does for a
    deposit already closed. Returns the notifications handed over.

    Called by the projector in the transaction that records the closing, so it never raises
    for a hand-over someone else made first (an operator attaching at the same moment): a
    dispute the order has already is left as it is."""
    if not uids:
        return []
    query = _attached_to_closed().where(
        Notification.matched_uid.in_(list(uids)),
        Order.direction == "deposit",
        Order.status.in_([status.value for status in DISPUTABLE]),
    )
    handed: list[uuid.UUID] = []
    for notification_id, actor, order in session.execute(query).all():
        try:
            with session.begin_nested():
                opened = _hand_to_disputes(
                    session, notification_id, order, actor or "system", dispute_deadline_s
                )
        except (IntegrityError, DisputeExists):
            continue  # opened meanwhile by another hand
        if opened:
            handed.append(notification_id)
    return handed


def _attached_to_closed() -> Select[uuid.UUID, str | None, Order]:
    """Notifications an operator attached, with the order each names, once that order is
    no longer open: their id, who attached them, the order."""
    return (
        select(Notification.id, Notification.resolved_by, Order)
        .join(Order, Order.uid == Notification.matched_uid)
        .where(
            Notification.outcome == "attached",
            Order.status.in_(("expired", "rejected", "failed", "cancelled")),
        )
    )


def attached_to_closed(session: Session) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Notifications an operator attached to an order no longer open (expired, rejected):
    the hand-over to disputes, which settle them late (issue 14)."""
    return [(nid, order.uid) for nid, _, order in session.execute(_attached_to_closed())]


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationFilter:
    outcome: str | None = None
    device_id: str | None = None
    card_id: str | None = None
    limit: int = 200


def recent(session: Session, filters: NotificationFilter) -> list[dict[str, Any]]:
    """Notifications, newest first, for the console (raw text, parse, outcome, order)."""
    query = (
        select(Notification, NotificationParse, Card.pan_masked)
        .join(Card, Card.id == Notification.card_id)
        .outerjoin(NotificationParse, NotificationParse.notification_id == Notification.id)
        .order_by(Notification.stored_at.desc())
        .limit(max(1, min(filters.limit, 1000)))
    )
    if filters.outcome:
        query = query.where(Notification.outcome == filters.outcome)
    if filters.device_id:
        query = query.where(Notification.device_id == filters.device_id)
    if filters.card_id:
        query = query.where(Notification.card_id == uuid.UUID(filters.card_id))
    rows = []
    for row, parse, pan_masked in session.execute(query):
        rows.append(
            {
                "id": row.id,
                "stored_at": row.stored_at,
                "received_at": row.received_at,
                "device": row.device_id,
                "card": pan_masked,
                "sender": row.sender,
                "text": row.raw_text,
                "parse": "unparsed" if parse is None else "parsed",
                "template": None if parse is None else parse.template_id,
                "kind": None if parse is None else parse.kind,
                "amount_minor": None if parse is None else parse.amount_minor,
                "currency": None if parse is None else parse.currency,
                "outcome": row.outcome,
                "order": row.matched_uid,
                "reason": row.reason,
            }
        )
    return rows


def suggestions(session: Session, uids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """For orders in the operator queue: the notification suggested as paying each."""
    if not uids:
        return {}
    query = select(Notification.matched_uid, Notification.id).where(
        Notification.outcome == "suggested", Notification.matched_uid.in_(list(uids))
    )
    return {uid: nid for uid, nid in session.execute(query) if uid is not None}


def set_match_policy(session: Session, pool_id: str, policy: str, actor: str) -> bool:
    """A pool's match policy (``auto`` or ``suggest``); audited."""
    if policy not in ("auto", "suggest"):
        raise InvalidInput("match policy must be 'auto' or 'suggest'")
    pool = session.get(CardPool, pool_id, with_for_update=True)
    if pool is None:
        raise NotFound(f"pool {pool_id!r} does not exist")
    before = {"match_policy": pool.match_policy}
    pool.match_policy = policy
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="pool.match_policy",
        entity="card_pool",
        entity_id=pool_id,
        before=before,
        after={"match_policy": policy},
    )
    return True


def pool_policies(session: Session) -> dict[str, str]:
    """Each pool's match policy, by pool id."""
    rows = session.execute(select(CardPool.id, CardPool.match_policy).order_by(CardPool.id))
    return {pool_id: policy for pool_id, policy in rows}
