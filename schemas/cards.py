"""Card assignment within a pool's desk, automatic holidays, and card/partner configuration.

Configuration messages go to compacted topics keyed by entity id: the newest message per key
is the entity's current configuration, so an agent that starts fresh reads the whole topic.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictInt

from domain.cards import CardStatus
from schemas.desks import pool_desk
from schemas.envelope import AmountMinor, Currency, Message, NonNegativeMinor
from schemas.orders import EpochMs, FeeBp, MaskedPan, PartnerId, PoolId
from schemas.registry import register


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


@register
class RequestCard(Message):
    """Ask the pool agent for a card that can take ``amount_minor`` now."""

    TYPE = "card.request"

    pool_id: PoolId
    uid: uuid.UUID
    amount_minor: AmountMinor
    currency: Currency

    def message_key(self) -> str:
        return self.pool_id


@register
class ReleaseCard(Message):
    """The order left the open states; its amount no longer occupies the card."""

    TYPE = "card.release"

    pool_id: PoolId
    uid: uuid.UUID
    card_id: str
    amount_minor: AmountMinor
    approved: bool

    def message_key(self) -> str:
        return self.pool_id


@register
class PauseCard(Message):
    """Stop handing out ``card_id`` until ``until_ms`` (an automatic holiday of the monitor).

    The pool's desk keeps the latest end per card; a later card configuration (an admin's
    edit, which carries the holiday PostgreSQL holds) takes precedence over it.
    """

    TYPE = "card.pause"

    pool_id: PoolId
    card_id: str = Field(min_length=1, max_length=64)
    until_ms: EpochMs
    reason: str = Field(min_length=1, max_length=64)

    def message_key(self) -> str:
        return pool_desk(self.pool_id)  # to the pool's desk, on ``order-commands``


@register
class CardConfigured(Message):
    TYPE = "config.card"

    card_id: str
    pool_id: PoolId
    pan_masked: MaskedPan
    currency: Currency
    status: CardStatus
    expires_on: date
    holiday_until_ms: EpochMs | None = None
    bank: str | None = None
    holder: str | None = None
    daily_limit_minor: NonNegativeMinor
    monthly_limit_minor: NonNegativeMinor
    daily_count_limit: Annotated[StrictInt, Field(ge=0)]
    monthly_count_limit: Annotated[StrictInt, Field(ge=0)]
    min_order_minor: AmountMinor
    max_order_minor: AmountMinor
    version: Annotated[StrictInt, Field(ge=1)]

    def message_key(self) -> str:
        return self.card_id


@register
class PartnerConfigured(Message):
    TYPE = "config.partner"

    partner_id: PartnerId
    status: PartnerStatus
    deposit_fee_bp: FeeBp
    withdrawal_fee_bp: FeeBp
    pool_id: PoolId | None = None
    callback_url: str | None = None
    version: Annotated[StrictInt, Field(ge=1)]

    def message_key(self) -> str:
        return self.partner_id
