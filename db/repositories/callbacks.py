"""Partner callbacks: signing secrets, the delivery log, and the senders' claims on it.

Secrets: ``cs_`` + 43 URL-safe characters (256 random bits), used as HMAC keys by their
UTF-8 bytes, sealed at rest and returned exactly once by :func:`issue_callback_secret`.

Deliveries move ``pending`` -> ``delivered`` | ``dead`` | ``skipped`` (no callback URL);
:func:`resend` (the console's button) makes a finished one ``pending`` again. Senders claim
due rows with ``SELECT .. FOR UPDATE SKIP LOCKED`` and push their ``next_attempt_at`` past a
lease, so several processes share the work and a sender that dies mid-request only delays
its claims. Outcome writers touch ``pending`` rows only: a delivery resent or finished by
someone else meanwhile is left as it is.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.crypto import SecretBox
from db.models import CallbackDelivery, CallbackSecret, Order, Partner
from db.repositories import audit
from db.repositories._common import as_uuid
from db.repositories.errors import InvalidInput, NotFound
from schemas.callbacks import NewDelivery

SECRET_ID_PREFIX: Final = "cbk_"  # noqa: S105 - a public prefix, not a secret
SECRET_PREFIX: Final = "cs_"  # noqa: S105 - a public prefix, not a secret
DEFAULT_WINDOW_S: Final = 24 * 3600.0


# --- signing secrets --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackSecretInfo:
    secret_id: str
    partner_id: str
    active: bool
    created_at: datetime
    revoked_at: datetime | None


def issue_callback_secret(
    session: Session, box: SecretBox, partner_id: str, actor: str
) -> tuple[str, str]:
    """A new active secret: ``(secret_id, secret)``; show the secret once. Older secrets
    stay active (and sign too) until revoked, so the partner can switch without a gap."""
    if session.get(Partner, partner_id) is None:
        raise NotFound(f"partner {partner_id!r} does not exist")
    secret_id = SECRET_ID_PREFIX + secrets.token_urlsafe(12)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    session.add(
        CallbackSecret(
            secret_id=secret_id,
            partner_id=partner_id,
            secret_encrypted=box.seal(secret).encode("ascii"),
            active=True,
        )
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="callback_secret.issue",
        entity="callback_secret",
        entity_id=secret_id,
        before=None,
        after={"secret_id": secret_id, "partner_id": partner_id, "active": True},
    )
    return secret_id, secret


def revoke_callback_secret(
    session: Session, secret_id: str, actor: str, now: datetime | None = None
) -> bool:
    """Stop signing with ``secret_id``; ``False`` if it was revoked already."""
    row = session.get(CallbackSecret, secret_id, with_for_update=True)
    if row is None:
        raise NotFound(f"callback secret {secret_id!r} does not exist")
    if not row.active:
        return False
    before = {"secret_id": secret_id, "partner_id": row.partner_id, "active": True}
    row.active, row.revoked_at = False, now or datetime.now(UTC)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="callback_secret.revoke",
        entity="callback_secret",
        entity_id=secret_id,
        before=before,
        after=before | {"active": False, "revoked_at": row.revoked_at},
    )
    return True


def list_callback_secrets(session: Session, partner_id: str) -> list[CallbackSecretInfo]:
    """A partner's secrets, newest first, without the secrets themselves."""
    rows = session.scalars(
        select(CallbackSecret)
        .where(CallbackSecret.partner_id == partner_id)
        .order_by(CallbackSecret.created_at.desc(), CallbackSecret.secret_id)
    )
    return [
        CallbackSecretInfo(r.secret_id, r.partner_id, r.active, r.created_at, r.revoked_at)
        for r in rows
    ]


def active_callback_secrets(session: Session, box: SecretBox, partner_id: str) -> list[bytes]:
    """The keys to sign a partner's callbacks with, newest first (empty: none issued)."""
    rows = session.scalars(
        select(CallbackSecret.secret_encrypted)
        .where(CallbackSecret.partner_id == partner_id, CallbackSecret.active)
        .order_by(CallbackSecret.created_at.desc(), CallbackSecret.secret_id)
    )
    return [box.open(sealed.decode("ascii")).encode("utf-8") for sealed in rows]


# --- the delivery log -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery_id: uuid.UUID
    order_uid: uuid.UUID
    event_type: str
    partner_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    give_up_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_url: str | None
    created_at: datetime
    delivered_at: datetime | None
    parked_at: datetime | None
    body: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view(row: CallbackDelivery) -> DeliveryView:
    return DeliveryView(**{name: getattr(row, name) for name in DeliveryView.__slots__})


def record_deliveries(
    session: Session, deliveries: Iterable[NewDelivery], now: datetime, window_s: float
) -> int:
    """Insert the deliveries not yet known (a known id is left untouched); how many were new."""
    values = [
        {
            "delivery_id": d.delivery_id,
            "order_uid": d.order_uid,
            "event_type": d.event_type,
            "order_version": d.order_version,
            "partner_id": d.partner_id,
            "body": d.body,
            "next_attempt_at": now,
            "give_up_at": now + timedelta(seconds=window_s),
        }
        for d in deliveries
    ]
    if not values:
        return 0
    statement = insert(CallbackDelivery).values(values).on_conflict_do_nothing()
    result = session.execute(statement.returning(CallbackDelivery.delivery_id))
    return len(result.all())


def get_delivery(session: Session, delivery_id: uuid.UUID | str) -> DeliveryView | None:
    ident = as_uuid(delivery_id)
    row = None if ident is None else session.get(CallbackDelivery, ident)
    return None if row is None else _view(row)


def list_deliveries(
    session: Session,
    *,
    partner_id: str | None = None,
    status: str | None = None,
    order_uid: uuid.UUID | None = None,
    limit: int = 100,
) -> list[DeliveryView]:
    """The newest deliveries first, optionally of one partner, status or order."""
    query = select(CallbackDelivery).order_by(CallbackDelivery.created_at.desc()).limit(limit)
    if partner_id is not None:
        query = query.where(CallbackDelivery.partner_id == partner_id)
    if status is not None:
        query = query.where(CallbackDelivery.status == status)
    if order_uid is not None:
        query = query.where(CallbackDelivery.order_uid == order_uid)
    return [_view(row) for row in session.scalars(query)]


def resend(
    session: Session,
    delivery_id: uuid.UUID | str,
    actor: str,
    *,
    now: datetime | None = None,
    window_s: float = DEFAULT_WINDOW_S,
) -> DeliveryView:
    """Make a finished delivery (dead, delivered, skipped) pending again, due at once, with
    its attempts reset and a fresh retry window; audited. Same id and body: the partner
    dedupes it if it had already processed it."""
    ident = as_uuid(delivery_id)
    row = None if ident is None else session.get(CallbackDelivery, ident, with_for_update=True)
    if row is None:
        raise NotFound(f"callback delivery {delivery_id} does not exist")
    if row.status == "pending":
        raise InvalidInput(f"callback delivery {delivery_id} is pending already")
    moment = now or datetime.now(UTC)
    before = _summary(row)
    row.status, row.attempts = "pending", 0
    row.next_attempt_at, row.give_up_at = moment, moment + timedelta(seconds=window_s)
    row.delivered_at = row.parked_at = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="callback.resend",
        entity="callback_delivery",
        entity_id=str(row.delivery_id),
        before=before,
        after=_summary(row),
    )
    return _view(row)


def _summary(row: CallbackDelivery) -> dict[str, Any]:
    """The audit image: state only, never the body."""
    return {
        "delivery_id": row.delivery_id,
        "order_uid": row.order_uid,
        "partner_id": row.partner_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
    }


# --- the senders' side ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery with what sending it needs; ``projected``: ``orders`` has caught
    up with the event, so the URL is the one the order (or else its partner) names."""

    delivery_id: uuid.UUID
    order_uid: uuid.UUID
    event_type: str
    partner_id: str
    body: str
    attempts: int
    give_up_at: datetime
    projected: bool
    url: str | None


def claim_due(session: Session, now: datetime, limit: int, lease_s: float) -> list[DueDelivery]:
    """Lock up to ``limit`` due pending deliveries that no other sender holds, and lease
    them (``next_attempt_at = now + lease_s``); the caller commits, then sends."""
    query = (
        select(CallbackDelivery, Order.version, Order.callback_url, Partner.callback_url)
        .outerjoin(Order, Order.uid == CallbackDelivery.order_uid)
        .outerjoin(Partner, Partner.id == CallbackDelivery.partner_id)
        .where(CallbackDelivery.status == "pending", CallbackDelivery.next_attempt_at <= now)
        .order_by(CallbackDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(of=CallbackDelivery, skip_locked=True)
    )
    claimed = []
    for row, version, order_url, partner_url in session.execute(query):
        projected = version is not None and version >= row.order_version
        claimed.append(
            DueDelivery(
                delivery_id=row.delivery_id,
                order_uid=row.order_uid,
                event_type=row.event_type,
                partner_id=row.partner_id,
                body=row.body,
                attempts=row.attempts,
                give_up_at=row.give_up_at,
                projected=projected,
                url=(order_url or partner_url) if projected else None,
            )
        )
        row.next_attempt_at = now + timedelta(seconds=lease_s)
    session.flush()
    return claimed


def _pending(session: Session, delivery_id: uuid.UUID, **values: Any) -> bool:
    result = session.execute(
        update(CallbackDelivery)
        .where(CallbackDelivery.delivery_id == delivery_id, CallbackDelivery.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def postpone(session: Session, delivery_id: uuid.UUID, until: datetime) -> bool:
    """Try later without counting an attempt (the order is not in ``orders`` yet)."""
    return _pending(session, delivery_id, next_attempt_at=until)


def mark_delivered(
    session: Session, delivery_id: uuid.UUID, now: datetime, status_code: int, url: str
) -> bool:
    return _pending(
        session,
        delivery_id,
        status="delivered",
        attempts=CallbackDelivery.attempts + 1,
        last_attempt_at=now,
        last_status_code=status_code,
        last_error=None,
        last_url=url,
        delivered_at=now,
    )


def mark_failed(
    session: Session,
    delivery_id: uuid.UUID,
    now: datetime,
    *,
    retry_at: datetime | None,
    status_code: int | None,
    error: str,
    url: str | None,
) -> bool:
    """Count a failed attempt: due again at ``retry_at``, or parked (``dead``) when None."""
    values: dict[str, Any] = {
        "attempts": CallbackDelivery.attempts + 1,
        "last_attempt_at": now,
        "last_status_code": status_code,
        "last_error": error[:500],
        "last_url": url,
    }
    if retry_at is None:
        values |= {"status": "dead", "parked_at": now}
    else:
        values["next_attempt_at"] = retry_at
    return _pending(session, delivery_id, **values)


def mark_skipped(session: Session, delivery_id: uuid.UUID, now: datetime, reason: str) -> bool:
    """Nothing to send to (neither the order nor its partner names a callback URL)."""
    return _pending(session, delivery_id, status="skipped", last_error=reason, parked_at=now)
