"""Pieces the partner, payer and operator endpoints share."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Final, Protocol

from sqlalchemy.exc import SQLAlchemyError

from db.repositories import cards as cards_repo
from db.repositories import orders as orders_repo
from db.repositories import partners as partners_repo
from db.repositories.partners import PartnerTerms
from domain.orders import Direction
from domain.outcomes import Done, Refused
from ingest_api.deps import Services
from ingest_api.errors import ApiError
from ingest_api.models import CardToPay, OrderPublic
from ingest_api.outcomes import Lookup, Outcome, refusal
from ingest_api.views import from_snapshot
from schemas.cards import CardConfigured, PartnerConfigured
from schemas.orders import OrderSnapshot

log = logging.getLogger(__name__)


class HasCard(Protocol):
    @property
    def direction(self) -> str: ...

    @property
    def card_id(self) -> object: ...


#: The one spelling of an order id Keeper issues and accepts: lowercase 8-4-4-4-12 hex.
CANONICAL_UID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_uid(raw: str) -> uuid.UUID:
    """An order id from a path, in its canonical form only. Anything else (uppercase, no
    dashes, braces, ``urn:uuid:``, any other text) names no order: ``404 order_not_found``,
    the same answer as an unknown or another partner's order, so the answer reveals nothing."""
    if CANONICAL_UID.fullmatch(raw) is None:
        raise ApiError(404, "order_not_found", "no such order")
    return uuid.UUID(raw)


async def card_to_pay(services: Services, order: HasCard) -> CardToPay | None:
    """The full number of the card a deposit pays to (the payer must type it into a bank).

    From memory (the config topics and the process's card numbers, ADR 0006); a card not
    there yet is read from PostgreSQL."""
    if Direction(order.direction) is not Direction.DEPOSIT or order.card_id is None:
        return None
    card_id = str(order.card_id)
    card: CardConfigured | cards_repo.CardPublic | None = None
    if services.config is not None:
        card = services.config.card(card_id)
    if card is None:
        card = await services.db(lambda s: cards_repo.card_public(s, card_id))
    if services.card_numbers is not None:
        number = await services.card_numbers.get(card_id)
    else:
        number = await services.db(lambda s: cards_repo.card_pan(s, services.box, card_id))
    if card is None or number is None:
        return None
    return CardToPay(number=number, masked=card.pan_masked, bank=card.bank, holder=card.holder)


async def partner_terms(
    services: Services, partner_id: str
) -> PartnerConfigured | PartnerTerms | None:
    """The partner's fees, pool and status: from ``config-partners`` in memory (ADR 0006),
    else (a partner not published yet) from PostgreSQL."""
    terms = services.config.partner(partner_id) if services.config is not None else None
    if terms is not None:
        return terms
    return await services.db(lambda s: partners_repo.get_partner(s, partner_id))


async def public_from_snapshot(services: Services, snap: OrderSnapshot) -> OrderPublic:
    card = await card_to_pay(services, snap)
    return from_snapshot(snap, services.settings.public_base_url, card)


async def stored_order(services: Services, uid: uuid.UUID) -> OrderSnapshot | None:
    """The order as PostgreSQL last recorded it (for an uid the view does not hold)."""
    found = await services.db(lambda s: orders_repo.latest_event_order(s, uid))
    return None if found is None else OrderSnapshot.model_validate(found)


#: How long a create waits for PostgreSQL's copy of an order its view lacks (ADR 0006
#: addendum): past it, or with the database away, the opening is sent as if unknown.
FORGOTTEN_LOOKUP_S: Final = 0.25


async def forgotten_order(services: Services, uid: uuid.UUID) -> OrderSnapshot | None:
    """For a create: PostgreSQL's copy of an order the view lacks (one the desk may have
    forgotten, ADR 0008), if the database answers at once. A database that is away must not
    stop creates (ADR 0006); the cost is that a repeat of an order older than the retention,
    sent exactly while the database is away, is opened again instead of answered."""
    try:
        return await asyncio.wait_for(stored_order(services, uid), FORGOTTEN_LOOKUP_S)
    except (TimeoutError, SQLAlchemyError) as error:
        log.warning(
            "create %s: no stored order lookup (%s); sent as new", uid, type(error).__name__
        )
        return None


async def current_order(services: Services, uid: uuid.UUID) -> OrderSnapshot | None:
    """The newest version of the order: the event-fed view, else PostgreSQL."""
    return services.view.latest(uid) or await stored_order(services, uid)


def answered(outcome: Outcome, what: str) -> OrderSnapshot:
    """The order after a command that took effect; a refusal or no answer in time raises."""
    judgement = outcome.judgement
    if isinstance(judgement, Refused):
        raise refusal(judgement)
    if not isinstance(judgement, Done) or outcome.snapshot is None:
        raise ApiError(504, "timeout", f"the order did not answer in time; {what}")
    return outcome.snapshot


def known(snap: OrderSnapshot) -> Lookup:
    """A lookup that answers with ``snap``, already read by the caller."""

    async def lookup(_: uuid.UUID) -> OrderSnapshot | None:
        return snap

    return lookup
