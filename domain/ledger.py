"""Double-entry postings for order events, and partner balances that never go negative.

Every money-moving order event becomes one transaction: a few :class:`Posting` legs whose
signed amounts sum to zero per currency, so money is only ever moved, never made. A leg's
``amount_minor`` is the change of its account's balance (positive: the account grows).
Accounts are plain strings::

    partner:<id>:available   what the partner may withdraw
    partner:<id>:held        reserved for withdrawals in flight
    system:fees              Keeper's earned fees
    external:settlement      the outside world (bank cards): money in and out of Keeper

Each (order, kind) happens at most once in an order's life (one hold, then one release or
one capture; or one deposit credit; or, for a deposit that closed without money and whose
dispute was accepted, one ``dispute_credit``), so ``(order_uid, kind, account)`` is a natural
unique key: a store can write a redelivered transaction idempotently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from domain.errors import InsufficientFunds, InsufficientHeld, InvalidAmount, OrderMismatch
from domain.events import (
    Event,
    OrderApproved,
    OrderCancelled,
    OrderCreated,
    OrderExpired,
    OrderFailed,
    OrderRejected,
)
from domain.orders import Direction, Order

SYSTEM_FEES: Final = "system:fees"
EXTERNAL_SETTLEMENT: Final = "external:settlement"


def partner_available(partner_id: str) -> str:
    return f"partner:{partner_id}:available"


def partner_held(partner_id: str) -> str:
    return f"partner:{partner_id}:held"


class PostingKind(StrEnum):
    HOLD = "hold"
    RELEASE = "release"
    CAPTURE = "capture"
    DEPOSIT_CREDIT = "deposit_credit"
    #: A late credit of a deposit that expired or was rejected, after its dispute was
    #: accepted (:mod:`domain.disputes`): the same legs as a deposit credit.
    DISPUTE_CREDIT = "dispute_credit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Posting:
    """One leg of a transaction: ``amount_minor`` (signed, never zero) moves ``account``."""

    order_uid: str
    kind: PostingKind
    account: str
    currency: str
    amount_minor: int

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise InvalidAmount(f"posting amount must be an int, got {self.amount_minor!r}")
        if self.amount_minor == 0:
            raise InvalidAmount("a zero posting moves nothing; leave it out")


#: Events after which a withdrawal's held funds go back to the partner.
_RELEASING: Final = (OrderRejected, OrderFailed, OrderExpired, OrderCancelled)


def posting_kind(order: Order, event: Event) -> PostingKind | None:
    """Which transaction ``event`` triggers for ``order``, if any.

    Only a withdrawal touches the partner's balance before a decision (the hold when it
    becomes ``new``); a deposit moves money only once an operator approves it. A withdrawal
    declined in ``pending`` was never held, so it has nothing to release.
    """
    if order.direction is Direction.WITHDRAWAL:
        if isinstance(event, OrderCreated):
            return PostingKind.HOLD
        if isinstance(event, OrderApproved):
            return PostingKind.CAPTURE
        if isinstance(event, _RELEASING):
            return PostingKind.RELEASE
    elif isinstance(event, OrderApproved):
        return PostingKind.DEPOSIT_CREDIT
    return None


def postings_for(order: Order, event: Event) -> list[Posting]:
    """The balanced transaction ``event`` causes (empty if it moves no money).

    Zero legs (a zero fee, a deposit whose fee ate the whole amount) are left out.
    """
    if event.uid != order.uid:
        raise OrderMismatch(f"event for {event.uid} paired with order {order.uid}")
    kind = posting_kind(order, event)
    if kind is None:
        return []
    available, held = partner_available(order.partner_id), partner_held(order.partner_id)
    total, amount, fee = order.hold_minor, order.amount_minor, order.fee_minor
    legs: list[tuple[str, int]]
    if kind is PostingKind.HOLD:
        legs = [(available, -total), (held, total)]
    elif kind is PostingKind.RELEASE:
        legs = [(held, -total), (available, total)]
    elif kind is PostingKind.CAPTURE:
        legs = [(held, -total), (EXTERNAL_SETTLEMENT, amount), (SYSTEM_FEES, fee)]
    else:
        legs = [(EXTERNAL_SETTLEMENT, -amount), (available, amount - fee), (SYSTEM_FEES, fee)]
    return [
        Posting(
            order_uid=order.uid,
            kind=kind,
            account=account,
            currency=order.currency,
            amount_minor=value,
        )
        for account, value in legs
        if value
    ]


def is_balanced(postings: Iterable[Posting]) -> bool:
    """True if the legs sum to zero in every currency (an empty list is balanced)."""
    sums: defaultdict[str, int] = defaultdict(int)
    for posting in postings:
        sums[posting.currency] += posting.amount_minor
    return not any(sums.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    """A partner's money in one currency: what it may use, and what withdrawals hold."""

    available_minor: int = 0
    held_minor: int = 0

    def __post_init__(self) -> None:
        for name in ("available_minor", "held_minor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidAmount(f"{name} must be a non-negative int, got {value!r}")

    @property
    def total_minor(self) -> int:
        return self.available_minor + self.held_minor


def _amount(amount_minor: int) -> int:
    """Operations accept zero (a deposit whose fee took everything credits nothing)."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor < 0:
        raise InvalidAmount(f"amount must be a non-negative int, got {amount_minor!r}")
    return amount_minor


def hold(balance: Balance, amount_minor: int) -> Balance:
    """Move ``amount_minor`` from available to held, refusing to overdraw."""
    if balance.available_minor < _amount(amount_minor):
        raise InsufficientFunds(balance.available_minor, amount_minor)
    return Balance(
        available_minor=balance.available_minor - amount_minor,
        held_minor=balance.held_minor + amount_minor,
    )


def release(balance: Balance, amount_minor: int) -> Balance:
    """Give held funds back to available (the withdrawal did not happen)."""
    if balance.held_minor < _amount(amount_minor):
        raise InsufficientHeld(balance.held_minor, amount_minor)
    return Balance(
        available_minor=balance.available_minor + amount_minor,
        held_minor=balance.held_minor - amount_minor,
    )


def capture(balance: Balance, amount_minor: int) -> Balance:
    """Spend held funds (the withdrawal was paid out and its fee earned)."""
    if balance.held_minor < _amount(amount_minor):
        raise InsufficientHeld(balance.held_minor, amount_minor)
    return Balance(
        available_minor=balance.available_minor, held_minor=balance.held_minor - amount_minor
    )


def credit(balance: Balance, amount_minor: int) -> Balance:
    """Add to available (an approved deposit, net of fee)."""
    return Balance(
        available_minor=balance.available_minor + _amount(amount_minor),
        held_minor=balance.held_minor,
    )


def balance_after(balance: Balance, order: Order, event: Event) -> Balance:
    """The order's partner balance (in the order's currency) after ``event``.

    Derived from :func:`posting_kind` through the operations above, so a refused hold
    raises :class:`~domain.errors.InsufficientFunds` before anything is posted; it always
    agrees with the partner legs of :func:`postings_for`.
    """
    kind = posting_kind(order, event)
    if kind is PostingKind.HOLD:
        return hold(balance, order.hold_minor)
    if kind is PostingKind.RELEASE:
        return release(balance, order.hold_minor)
    if kind is PostingKind.CAPTURE:
        return capture(balance, order.hold_minor)
    if kind is PostingKind.DEPOSIT_CREDIT:
        return credit(balance, order.credit_minor)
    return balance
