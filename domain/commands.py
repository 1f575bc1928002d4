"""Commands: requests to change an order, named in the imperative.

A command may be refused; only the events :func:`domain.lifecycle.apply` returns are facts.
Each command checks its own fields when built, so a malformed request fails at the edge of
the core with a :class:`~domain.errors.DomainError` and never reaches the state machine.
Every command carries ``at_ms``, the instant it was issued: the core never reads a clock,
which keeps it deterministic and lets a replay reproduce the same events.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain import _checks
from domain.errors import InvalidCommand
from domain.money import validate_amount, validate_currency, validate_fee_bp
from domain.orders import MAX_TTL_S, MIN_TTL_S, DeclineReason, Direction

UID_MAX_LEN = 64
PARTNER_ORDER_ID_MAX_LEN = 128
OPERATOR_MAX_LEN = 64
REASON_MAX_LEN = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Fields every command has: the order it targets and when it was issued."""

    uid: str
    at_ms: int

    def __post_init__(self) -> None:
        _checks.text("uid", self.uid, UID_MAX_LEN)
        _checks.epoch_ms("at_ms", self.at_ms)
        self._check()

    def _check(self) -> None:
        """Subclass hook for field checks (zero-argument ``super()`` breaks with slots)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenOrder(Command):
    """Accept a partner's order; the fee is computed from ``fee_bp`` once, here."""

    partner_id: str
    partner_order_id: str
    direction: Direction
    amount_minor: int
    fee_bp: int
    currency: str
    ttl_s: int

    def _check(self) -> None:
        _checks.partner_id(self.partner_id)
        _checks.text("partner_order_id", self.partner_order_id, PARTNER_ORDER_ID_MAX_LEN)
        if not isinstance(self.direction, Direction):
            raise InvalidCommand(f"unknown direction {self.direction!r}")
        validate_amount(self.amount_minor)
        validate_fee_bp(self.fee_bp)
        validate_currency(self.currency)
        _checks.int_in("ttl_s", self.ttl_s, MIN_TTL_S, MAX_TTL_S)


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignCard(Command):
    """A deposit got a platform card to receive the payer's transfer."""

    card_id: str
    card_masked: str

    def _check(self) -> None:
        _checks.text("card_id", self.card_id, UID_MAX_LEN)
        _checks.masked_pan(self.card_masked)


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldFunds(Command):
    """A withdrawal's amount plus fee is now held on the partner's balance."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclineOrder(Command):
    """Resources could not be reserved, so the order never becomes ``new``."""

    reason: DeclineReason

    def _check(self) -> None:
        if not isinstance(self.reason, DeclineReason):
            raise InvalidCommand(f"unknown decline reason {self.reason!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmPayment(Command):
    """The payer says they paid (deposit) or gave the card to pay to (withdrawal).

    A withdrawal requires ``payer_card_masked``; the check lives in ``apply`` because it
    depends on the order's direction, which the command does not know.
    """

    payer_card_masked: str | None = None

    def _check(self) -> None:
        if self.payer_card_masked is not None:
            _checks.masked_pan(self.payer_card_masked)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecideOrder(Command):
    """An operator's verdict on an order in ``processing`` (base of the three verdicts).

    ``decision_id`` identifies one verdict (one click in the console). A redelivered
    decision carries the same id and is recognised as a repeat; another operator's verdict
    carries another id and is refused once the order is decided.
    """

    operator: str
    decision_id: str
    reason: str = ""

    def _check(self) -> None:
        _checks.text("operator", self.operator, OPERATOR_MAX_LEN)
        _checks.text("decision_id", self.decision_id, UID_MAX_LEN)
        _checks.short_text("reason", self.reason, REASON_MAX_LEN)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveOrder(DecideOrder):
    """The money moved as the payer said: settle the order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectOrder(DecideOrder):
    """The money did not arrive (deposit) or must not be paid (withdrawal)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FailOrder(DecideOrder):
    """The operation broke (bank outage, card blocked mid-way); nothing moved."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireOrder(Command):
    """The order's timer fired; ``at_ms`` is the timer's "now"."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Command):
    """The partner withdrew the order; ``partner_id`` must be the order's owner."""

    partner_id: str

    def _check(self) -> None:
        _checks.partner_id(self.partner_id)
