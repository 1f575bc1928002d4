"""Devices: phones that forward a card's bank messages, with their own credentials.

A device's credential works like a partner API key (:mod:`db.repositories.api_keys`): a
public key id (``kd_`` + 16 URL-safe characters) and a secret (``ds_`` + 43) used as the
HMAC key of the same request signing scheme, sealed at rest by :class:`~db.crypto.SecretBox`
and returned exactly once, by :func:`register_device`. A card has at most one active device.

Health: every request of a device (its heartbeat included) sets ``last_seen_at``. A device
unheard for longer than the ``device_silent_after_s`` setting is reported silent to its
card's desk, which stops handing the card out; ``silent_since`` records that it was, so the
next request it makes reports it heard again (ADR 0010).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.crypto import SecretBox
from db.models import Card, Device
from db.repositories import audit
from db.repositories._common import insert, slug
from db.repositories.errors import AlreadyExists, NotFound

KEY_ID_PREFIX: Final = "kd_"
SECRET_PREFIX: Final = "ds_"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """What the verifier and the intake need about a device's key."""

    device_id: str
    card_id: str
    pool_id: str
    secret: bytes
    active: bool


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What may be shown about a device: everything except its secret."""

    device_id: str
    card_id: str
    pan_masked: str
    pool_id: str
    key_id: str
    status: str
    created_at: datetime
    last_seen_at: datetime | None
    silent_since: datetime | None


@dataclass(frozen=True, slots=True)
class SilentDevice:
    device_id: str
    card_id: str
    pool_id: str
    #: When it went silent: its last request (or registration) plus the allowed silence.
    silent_at: datetime


def _card(session: Session, card_id: str) -> Card:
    try:
        key = uuid.UUID(card_id)
    except ValueError:
        raise NotFound(f"card {card_id!r} does not exist") from None
    card = session.get(Card, key)
    if card is None:
        raise NotFound(f"card {card_id!r} does not exist")
    return card


def register_device(
    session: Session, box: SecretBox, device_id: str, card_id: str, actor: str
) -> tuple[str, str]:
    """A new active device for ``card_id``: ``(key_id, secret)``. Show the secret once."""
    slug("device id", device_id)
    card = _card(session, card_id)
    key_id = KEY_ID_PREFIX + secrets.token_urlsafe(12)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = Device(
        id=device_id,
        card_id=card.id,
        key_id=key_id,
        secret_encrypted=box.seal(secret).encode("ascii"),
        status="active",
    )
    insert(
        session,
        row,
        {
            "pk_devices": lambda: AlreadyExists(f"device {device_id!r} already exists"),
            "uq_devices_card_id_active": lambda: AlreadyExists(
                f"card {card_id} already has an active device; revoke it first"
            ),
        },
    )
    audit.record(
        session,
        actor=actor,
        action="device.register",
        entity="device",
        entity_id=device_id,
        before=None,
        after={"device_id": device_id, "card_id": card_id, "key_id": key_id, "status": "active"},
    )
    return key_id, secret


def revoke_device(session: Session, device_id: str, actor: str) -> bool:
    """Revoke ``device_id``; ``True`` if it was active."""
    row = session.get(Device, device_id, with_for_update=True)
    if row is None:
        raise NotFound(f"device {device_id!r} does not exist")
    if row.status == "revoked":
        return False
    row.status, row.revoked_at = "revoked", func.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="device.revoke",
        entity="device",
        entity_id=device_id,
        before={"status": "active"},
        after={"status": "revoked"},
    )
    return True


def find_device_key(session: Session, box: SecretBox, key_id: str) -> DeviceKey | None:
    found = session.execute(
        select(Device, Card.pool_id)
        .join(Card, Card.id == Device.card_id)
        .where(Device.key_id == key_id)
    ).first()
    if found is None:
        return None
    row, pool_id = found
    return DeviceKey(
        device_id=row.id,
        card_id=str(row.card_id),
        pool_id=pool_id,
        secret=box.open(row.secret_encrypted.decode("ascii")).encode("utf-8"),
        active=row.status == "active",
    )


def list_devices(session: Session) -> list[DeviceInfo]:
    query = (
        select(Device, Card.pan_masked, Card.pool_id)
        .join(Card, Card.id == Device.card_id)
        .order_by(Device.status, Device.id)
    )
    return [
        DeviceInfo(
            device_id=row.id,
            card_id=str(row.card_id),
            pan_masked=pan_masked,
            pool_id=pool_id,
            key_id=row.key_id,
            status=row.status,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            silent_since=row.silent_since,
        )
        for row, pan_masked, pool_id in session.execute(query)
    ]


def seen(session: Session, device_id: str, now: datetime) -> datetime | None:
    """Record a request of ``device_id`` at ``now``; returns when it had been reported silent
    (``None``: it was not), so the caller reports it heard again."""
    before = session.execute(
        select(Device.silent_since).where(Device.id == device_id).with_for_update()
    ).scalar_one_or_none()
    session.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(last_seen_at=func.greatest(func.coalesce(Device.last_seen_at, now), now))
        .values(silent_since=None)
    )
    return before


def newly_silent(session: Session, now: datetime, silent_after_s: float) -> list[SilentDevice]:
    """Active devices unheard for longer than ``silent_after_s`` and not yet reported."""
    limit = timedelta(seconds=silent_after_s)
    last = func.coalesce(Device.last_seen_at, Device.created_at)
    query = (
        select(Device.id, Device.card_id, Card.pool_id, last)
        .join(Card, Card.id == Device.card_id)
        .where(Device.status == "active", Device.silent_since.is_(None), last < now - limit)
        .with_for_update(of=Device, skip_locked=True)
    )
    return [
        SilentDevice(device_id, str(card_id), pool_id, last_at + limit)
        for device_id, card_id, pool_id, last_at in session.execute(query)
    ]


def mark_silent(session: Session, devices: list[SilentDevice]) -> None:
    for device in devices:
        session.execute(
            update(Device)
            .where(Device.id == device.device_id, Device.silent_since.is_(None))
            .values(silent_since=device.silent_at)
        )
