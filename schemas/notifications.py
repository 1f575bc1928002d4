"""Bank notifications at the desk: a parsed credit to match, a device's health, the outcome.

A phone that holds a platform card forwards the bank's messages to the API
(``POST /v1/devices/notifications``), which parses them (:mod:`domain.bank_messages`) and
sends every parsed credit to the card's pool desk as ``notification.match`` on
``order-commands``: the desk owns the card's open orders, so it is where a credit meets the
deposit it pays (ADR 0010). A device falling silent or heard again reaches the desk the same
way (``device.health``), so the pool part stops or resumes handing out the card. What the desk
decided about a notification is published once on ``notification-outcomes`` (key: the
notification's id) for PostgreSQL and the console.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, StrictInt

from schemas.desks import pool_desk
from schemas.envelope import AmountMinor, Currency, Message
from schemas.orders import EpochMs, PoolId
from schemas.registry import register

CardId = Annotated[str, Field(min_length=1, max_length=64)]
DeviceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class MatchPolicy(StrEnum):
    """What a pool's desk does with a credit that matches one open deposit."""

    AUTO = "auto"  # the system approves the order
    SUGGEST = "suggest"  # the operator queue shows the match; one click approves


class Outcome(StrEnum):
    APPROVED = "approved"
    SUGGESTED = "suggested"
    UNMATCHED = "unmatched"


class Unmatched(StrEnum):
    """Why a credit matched no order; the values are shown to operators."""

    NO_OPEN_ORDER = "no_open_order"  # no open deposit of that amount on the card
    AMBIGUOUS = "ambiguous"  # more than one
    OUTSIDE_WINDOW = "outside_window"  # before the order was created, or after its expiry
    # plus the grace period


@register
class MatchNotification(Message):
    """A parsed credit on ``card_id``, received by the phone at ``received_at_ms``: approve
    (``auto``) or suggest the open deposit it pays, if exactly one; else leave it unmatched.

    ``policy`` and ``grace_ms`` are the pool's and the API's at intake, carried so that a
    redelivered command decides exactly as the first time."""

    TYPE = "notification.match"

    notification_id: uuid.UUID
    pool_id: PoolId
    card_id: CardId
    device_id: DeviceId
    amount_minor: AmountMinor
    currency: Currency
    received_at_ms: EpochMs
    policy: MatchPolicy
    grace_ms: Annotated[StrictInt, Field(ge=0, le=24 * 3600 * 1000)]

    def message_key(self) -> str:
        return pool_desk(self.pool_id)


@register
class DeviceHealth(Message):
    """The device of ``card_id`` fell silent (``silent``) or was heard again, at ``at_ms``.

    The desk keeps the newest per card; a silent card leaves rotation until heard again."""

    TYPE = "device.health"

    pool_id: PoolId
    card_id: CardId
    device_id: DeviceId
    silent: bool
    at_ms: EpochMs

    def message_key(self) -> str:
        return pool_desk(self.pool_id)


#: At most this many notices in one ``desk.forget_notices``.
MAX_FORGET_NOTICES: Final = 500


@register
class ForgetNotices(Message):
    """Raised by the desk's retention timer: these notices of the pool's desk were decided
    longer than the retention period ago; take them out of the desk's table (ADR 0008).

    Safe to forget: a notice is only kept so that a redelivered ``notification.match``
    decides as the first time, and no redelivery comes that late; a notification older than
    every open order could match none of them anyway (it must be received after the order
    was created). The desk checks each notice's age again at the command's own instant."""

    TYPE = "desk.forget_notices"

    pool_id: PoolId
    notification_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_FORGET_NOTICES)

    def message_key(self) -> str:
        return pool_desk(self.pool_id)


@register
class NotificationSettled(Message):
    """What the desk decided about a notification; ``uid`` is the order it matched."""

    TYPE = "notification.settled"

    notification_id: uuid.UUID
    device_id: DeviceId
    card_id: CardId
    outcome: Outcome
    uid: uuid.UUID | None = None
    reason: Unmatched | None = None
    settled_at_ms: EpochMs

    def message_key(self) -> str:
        return str(self.notification_id)
