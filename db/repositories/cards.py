"""Card pools and the receiving cards in them.

A card's full number (PAN) is stored only sealed; beside it the masked form (shown
everywhere) and a keyed fingerprint (UNIQUE: one physical card is registered once, across all
pools). Only :func:`card_pan` opens the number, for the payer form of a deposit, which must
show the card to pay to. A card's configuration is validated by the same domain rules the pool
agent applies (:class:`domain.cards.Card`), so nothing stored here can become a configuration
the agent refuses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.crypto import SecretBox, mask_pan, normalise_pan
from db.models import CARD_STATUSES, Card, CardPool
from db.repositories import audit
from db.repositories._common import as_uuid, aware, check_version, insert, slug, text
from db.repositories.errors import AlreadyExists, DuplicateCard, InvalidInput, NotFound
from domain import cards as domain_cards
from domain.errors import DomainError
from schemas.cards import CardConfigured


@dataclass(frozen=True, slots=True)
class PoolView:
    pool_id: str
    name: str
    description: str | None


@dataclass(frozen=True, slots=True)
class CardPublic:
    """What may be shown about a card to anyone allowed to see it: never the full number."""

    card_id: uuid.UUID
    pool_id: str
    pan_masked: str
    bank: str
    holder: str
    currency: str
    status: str
    expires_on: date
    holiday_until: datetime | None
    version: int


def _public(row: Card) -> CardPublic:
    return CardPublic(
        card_id=row.id,
        pool_id=row.pool_id,
        pan_masked=row.pan_masked,
        bank=row.bank,
        holder=row.holder,
        currency=row.currency,
        status=row.status,
        expires_on=row.expires_on,
        holiday_until=row.holiday_until,
        version=row.version,
    )


def _epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _config(row: Card) -> CardConfigured:
    return CardConfigured(
        card_id=str(row.id),
        pool_id=row.pool_id,
        pan_masked=row.pan_masked,
        currency=row.currency.strip(),
        status=domain_cards.CardStatus(row.status),
        expires_on=row.expires_on,
        holiday_until_ms=_epoch_ms(row.holiday_until),
        bank=row.bank,
        holder=row.holder,
        daily_limit_minor=row.daily_limit_minor,
        monthly_limit_minor=row.monthly_limit_minor,
        daily_count_limit=row.daily_count_limit,
        monthly_count_limit=row.monthly_count_limit,
        min_order_minor=row.min_order_minor,
        max_order_minor=row.max_order_minor,
        version=row.version,
    )


def _image(row: Card) -> dict[str, Any]:
    """Audit image: configuration and masked number only."""
    return _config(row).model_dump(mode="json")


# --- pools --------------------------------------------------------------------------------


def create_pool(
    session: Session, *, pool_id: str, name: str, description: str | None = None, actor: str
) -> PoolView:
    row = CardPool(id=slug("pool_id", pool_id), name=text("name", name), description=description)
    insert(
        session, row, {"pk_card_pools": lambda: AlreadyExists(f"pool {pool_id!r} already exists")}
    )
    view = PoolView(pool_id=row.id, name=row.name, description=row.description)
    audit.record(
        session,
        actor=actor,
        action="pool.create",
        entity="pool",
        entity_id=pool_id,
        before=None,
        after=asdict(view),
    )
    return view


def get_pool(session: Session, pool_id: str) -> PoolView | None:
    row = session.get(CardPool, pool_id)
    return None if row is None else PoolView(row.id, row.name, row.description)


def list_pools(session: Session) -> list[PoolView]:
    rows = session.scalars(select(CardPool).order_by(CardPool.id))
    return [PoolView(row.id, row.name, row.description) for row in rows]


# --- cards --------------------------------------------------------------------------------


def _check_limits(
    *,
    currency: str,
    expires_on: date,
    daily_limit_minor: int,
    monthly_limit_minor: int,
    daily_count_limit: int,
    monthly_count_limit: int,
    min_order_minor: int,
    max_order_minor: int,
) -> None:
    try:
        domain_cards.Card(
            card_id="new",
            pool_id="new",
            pan_masked="000000******0000",
            currency=currency,
            status=domain_cards.CardStatus.ACTIVE,
            expires_on=expires_on,
            daily_limit_minor=daily_limit_minor,
            monthly_limit_minor=monthly_limit_minor,
            daily_count_limit=daily_count_limit,
            monthly_count_limit=monthly_count_limit,
            min_order_minor=min_order_minor,
            max_order_minor=max_order_minor,
        )
    except DomainError as error:
        raise InvalidInput(error.message.replace("card 'new': ", "")) from None
    if daily_limit_minor > monthly_limit_minor or daily_count_limit > monthly_count_limit:
        raise InvalidInput("daily limits cannot exceed monthly limits")


def fingerprint(box: SecretBox, pan: str) -> bytes:
    return bytes.fromhex(box.pan_fingerprint(pan))


def find_card_by_pan(session: Session, box: SecretBox, pan: str) -> CardPublic | None:
    """The card registered under this number (in any pool), found by its fingerprint."""
    query = select(Card).where(Card.pan_fingerprint == fingerprint(box, pan))
    row = session.scalars(query).one_or_none()
    return None if row is None else _public(row)


def add_card(
    session: Session,
    box: SecretBox,
    *,
    pool_id: str,
    pan: str,
    bank: str,
    holder: str,
    currency: str,
    expires_on: date,
    daily_limit_minor: int,
    monthly_limit_minor: int,
    daily_count_limit: int,
    monthly_count_limit: int,
    min_order_minor: int,
    max_order_minor: int,
    actor: str,
) -> uuid.UUID:
    """Register a card; its id. The number is normalised and checked (``CardNumberError``);
    a number already registered anywhere is :class:`DuplicateCard`."""
    digits = normalise_pan(pan)
    if session.get(CardPool, pool_id) is None:
        raise NotFound(f"card pool {pool_id!r} does not exist")
    limits = {
        "daily_limit_minor": daily_limit_minor,
        "monthly_limit_minor": monthly_limit_minor,
        "daily_count_limit": daily_count_limit,
        "monthly_count_limit": monthly_count_limit,
        "min_order_minor": min_order_minor,
        "max_order_minor": max_order_minor,
    }
    _check_limits(currency=currency, expires_on=expires_on, **limits)
    masked = mask_pan(digits)
    existing = find_card_by_pan(session, box, digits)
    if existing is not None:
        raise DuplicateCard(f"card {masked} is already registered (card {existing.card_id})")
    row = Card(
        id=uuid.uuid4(),
        pool_id=pool_id,
        pan_encrypted=box.seal(digits).encode("ascii"),
        pan_masked=masked,
        pan_fingerprint=fingerprint(box, digits),
        bank=text("bank", bank),
        holder=text("holder", holder),
        currency=currency,
        expires_on=expires_on,
        status="active",
        **limits,
    )
    insert(
        session,
        row,
        {"uq_cards_pan_fingerprint": lambda: DuplicateCard(f"card {masked} is already registered")},
    )
    audit.record(
        session,
        actor=actor,
        action="card.create",
        entity="card",
        entity_id=str(row.id),
        before=None,
        after=_image(row),
    )
    return row.id


def _row(session: Session, card_id: uuid.UUID | str, *, lock: bool = False) -> Card | None:
    key = as_uuid(card_id)
    return None if key is None else session.get(Card, key, with_for_update=lock)


def card_pan(session: Session, box: SecretBox, card_id: uuid.UUID | str) -> str | None:
    """The card's full number (for the payer form of a deposit only), or ``None``."""
    row = _row(session, card_id)
    return None if row is None else box.open(row.pan_encrypted.decode("ascii"))


def card_pans(session: Session, box: SecretBox) -> dict[str, str]:
    """Every card's full number by card id (the API keeps them in memory; never log them)."""
    rows = session.execute(select(Card.id, Card.pan_encrypted))
    return {str(card_id): box.open(sealed.decode("ascii")) for card_id, sealed in rows}


def card_public(session: Session, card_id: uuid.UUID | str) -> CardPublic | None:
    row = _row(session, card_id)
    return None if row is None else _public(row)


def list_cards(session: Session, pool_id: str | None = None) -> list[CardPublic]:
    query = select(Card).order_by(Card.pool_id, Card.created_at, Card.id)
    if pool_id is not None:
        query = query.where(Card.pool_id == pool_id)
    return [_public(row) for row in session.scalars(query)]


def card_config(session: Session, card_id: uuid.UUID | str) -> CardConfigured | None:
    """The ``config.card`` message describing the card now, or ``None``."""
    row = _row(session, card_id)
    return None if row is None else _config(row)


def all_card_configs(
    session: Session, pool_ids: Iterable[str] | None = None
) -> list[CardConfigured]:
    query = select(Card).order_by(Card.pool_id, Card.created_at, Card.id)
    if pool_ids is not None:
        query = query.where(Card.pool_id.in_(list(pool_ids)))
    return [_config(row) for row in session.scalars(query)]


def _change(
    session: Session,
    card_id: uuid.UUID | str,
    *,
    action: str,
    actor: str,
    expected_version: int | None,
    apply: dict[str, Any],
) -> CardConfigured:
    row = _row(session, card_id, lock=True)
    if row is None:
        raise NotFound(f"card {card_id} does not exist")
    check_version("card", str(row.id), expected_version, row.version)
    before = _image(row)
    for column, value in apply.items():
        setattr(row, column, value)
    if _image(row) == before:
        return _config(row)  # nothing changed: no write, no audit row, no version bump
    session.flush()
    after = _config(row)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="card",
        entity_id=str(row.id),
        before=before,
        after=after.model_dump(mode="json"),
    )
    return after


def set_card_holiday(
    session: Session,
    card_id: uuid.UUID | str,
    until: datetime | None,
    *,
    actor: str,
    expected_version: int | None = None,
) -> CardConfigured:
    """Pause the card until ``until`` (``None`` ends the holiday)."""
    value = None if until is None else aware("until", until).astimezone(UTC)
    return _change(
        session,
        card_id,
        action="card.holiday",
        actor=actor,
        expected_version=expected_version,
        apply={"holiday_until": value},
    )


def set_card_status(
    session: Session,
    card_id: uuid.UUID | str,
    status: str,
    *,
    actor: str,
    expected_version: int | None = None,
) -> CardConfigured:
    if status not in CARD_STATUSES:
        raise InvalidInput(f"card status must be one of {', '.join(CARD_STATUSES)}")
    return _change(
        session,
        card_id,
        action="card.status",
        actor=actor,
        expected_version=expected_version,
        apply={"status": status},
    )


def update_card(
    session: Session,
    card_id: uuid.UUID | str,
    *,
    actor: str,
    expected_version: int | None = None,
    expires_on: date,
    daily_limit_minor: int,
    monthly_limit_minor: int,
    daily_count_limit: int,
    monthly_count_limit: int,
    min_order_minor: int,
    max_order_minor: int,
    bank: str | None = None,
    holder: str | None = None,
) -> CardConfigured:
    """Replace the card's limits and expiry (and bank / holder when given), checked by the
    same rules as :func:`add_card`; the number itself never changes."""
    row = _row(session, card_id)
    if row is None:
        raise NotFound(f"card {card_id} does not exist")
    limits = {
        "daily_limit_minor": daily_limit_minor,
        "monthly_limit_minor": monthly_limit_minor,
        "daily_count_limit": daily_count_limit,
        "monthly_count_limit": monthly_count_limit,
        "min_order_minor": min_order_minor,
        "max_order_minor": max_order_minor,
    }
    _check_limits(currency=row.currency.strip(), expires_on=expires_on, **limits)
    apply: dict[str, Any] = {"expires_on": expires_on, **limits}
    if bank is not None:
        apply["bank"] = text("bank", bank)
    if holder is not None:
        apply["holder"] = text("holder", holder)
    return _change(
        session,
        card_id,
        action="card.update",
        actor=actor,
        expected_version=expected_version,
        apply=apply,
    )


__all__ = [
    "CardPublic",
    "PoolView",
    "add_card",
    "all_card_configs",
    "card_config",
    "card_pan",
    "card_pans",
    "card_public",
    "create_pool",
    "find_card_by_pan",
    "get_pool",
    "list_cards",
    "list_pools",
    "set_card_holiday",
    "set_card_status",
    "update_card",
]
