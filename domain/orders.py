"""The order aggregate: its statuses, the transition table and the ``Order`` value.

An order is a partner's request to take a deposit from its customer (the payer transfers to
one of the platform's cards) or to pay a withdrawal to the customer's card. Its life::

    pending ──► new ──► processing ──► approved | rejected | failed
       │         ├──► expired    (payer did not act before expires_at)
       │         └──► cancelled  (partner withdrew the order)
       └──► declined             (no card, no funds, partner inactive ...)

``processing`` never expires by itself: the payer says they paid, so only an operator may
close it. Terminal statuses never change. Commands, events and :func:`domain.lifecycle.apply`
live in their own modules; this one holds the state only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from domain import _checks
from domain.errors import InvalidAmount
from domain.money import validate_amount, validate_currency


class OrderStatus(StrEnum):
    PENDING = "pending"
    NEW = "new"
    PROCESSING = "processing"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Direction(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


class DeclineReason(StrEnum):
    """Why an order never reached ``new``; the values are part of the partner API."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    NO_REQUISITE = "no_requisite"
    PARTNER_INACTIVE = "partner_inactive"
    INVALID = "invalid"


_S = OrderStatus

#: Every status an order may move to from each status; absent pairs are illegal.
TRANSITIONS: Final = MappingProxyType(
    {
        _S.PENDING: frozenset({_S.NEW, _S.DECLINED}),
        _S.NEW: frozenset({_S.PROCESSING, _S.EXPIRED, _S.CANCELLED}),
        _S.PROCESSING: frozenset({_S.APPROVED, _S.REJECTED, _S.FAILED}),
        _S.APPROVED: frozenset[OrderStatus](),
        _S.REJECTED: frozenset[OrderStatus](),
        _S.FAILED: frozenset[OrderStatus](),
        _S.DECLINED: frozenset[OrderStatus](),
        _S.EXPIRED: frozenset[OrderStatus](),
        _S.CANCELLED: frozenset[OrderStatus](),
    }
)

#: Statuses with no way out; derived from the table so the two cannot disagree.
TERMINAL: Final = frozenset(s for s, targets in TRANSITIONS.items() if not targets)

#: Statuses in which an order occupies resources (a card's limits, a partner's held funds).
OPEN: Final = frozenset({_S.PENDING, _S.NEW, _S.PROCESSING})

#: Bounds of an order's time-to-live, as the partner API allows them.
MIN_TTL_S: Final = 60
MAX_TTL_S: Final = 24 * 3600


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """An order as it stands after ``version`` applied commands.

    Times are epoch milliseconds (UTC by definition) so the value crosses Kafka, JSON and
    the state store unchanged. ``expires_at_ms`` is fixed when the order is opened
    (``created_at_ms + ttl_s * 1000``): the partner promised its customer a deadline, and
    a slow card reservation must not extend it. Build orders through
    :func:`domain.lifecycle.apply`; the constructor only guards invariants, so that
    state loaded from storage is checked too.
    """

    uid: str
    version: int
    partner_id: str
    partner_order_id: str
    direction: Direction
    status: OrderStatus
    amount_minor: int
    fee_minor: int
    currency: str
    ttl_s: int
    created_at_ms: int
    expires_at_ms: int
    updated_at_ms: int
    card_id: str | None = None
    card_masked: str | None = None
    payer_card_masked: str | None = None
    decline_reason: DeclineReason | None = None
    decided_by: str | None = None
    decision_id: str | None = None
    decision_reason: str | None = None

    def __post_init__(self) -> None:
        _checks.int_in("version", self.version, 1)
        validate_amount(self.amount_minor)
        validate_currency(self.currency)
        if isinstance(self.fee_minor, bool) or not isinstance(self.fee_minor, int):
            raise InvalidAmount(f"fee must be an integer of minor units, got {self.fee_minor!r}")
        if not 0 <= self.fee_minor <= self.amount_minor:
            raise InvalidAmount(f"fee {self.fee_minor} outside 0..{self.amount_minor}")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def hold_minor(self) -> int:
        """What a withdrawal takes from the partner's balance: the payout plus our fee."""
        return self.amount_minor + self.fee_minor

    @property
    def credit_minor(self) -> int:
        """What an approved deposit adds to the partner's balance: the amount less our fee."""
        return self.amount_minor - self.fee_minor
