"""Domain errors: what the core refuses, and why, in words a machine can match on.

Each error class carries a stable ``code`` (a snake_case string that never changes once
published), so adapters can map refusals to HTTP statuses, decline reasons or metrics
without parsing messages. The core knows nothing about HTTP: status codes are the API's
business, not ours. Extra context rides on attributes, never only inside the message text.
"""

# Error names are the domain's vocabulary ("insufficient funds", "illegal transition"),
# as in cosmicpython; an "Error" suffix on each would add noise, not meaning.
# ruff: noqa: N818

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class DomainError(Exception):
    """Base of every refusal raised by the domain core."""

    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidAmount(DomainError):
    """An amount is not a positive integer of minor units within the cap."""

    code = "invalid_amount"


class InvalidFee(DomainError):
    """A fee rate is not an integer number of basis points in 0..10000."""

    code = "invalid_fee"


class InvalidCurrency(DomainError):
    """A currency code is not three uppercase ASCII letters."""

    code = "invalid_currency"


class UnknownCurrency(DomainError):
    """A well-formed ISO 4217 code that Keeper does not handle."""

    code = "unknown_currency"

    def __init__(self, currency: str) -> None:
        super().__init__(f"currency {currency!r} is not supported")
        self.currency = currency


class InvalidCommand(DomainError):
    """A command field is malformed (empty id, TTL out of range, bad timestamp ...)."""

    code = "invalid_command"


class InvalidPayerCard(DomainError):
    """A payer card is not a masked PAN; the core refuses to hold a full card number."""

    code = "invalid_payer_card"


class PayerCardRequired(DomainError):
    """A withdrawal cannot be paid out without the card to pay to."""

    code = "payer_card_required"


class IllegalTransition(DomainError):
    """The order's current status does not allow the command's target status.

    ``status`` is the order's current status, so a caller retrying a command that already
    took effect in a different way can still tell what happened to the order.
    """

    code = "illegal_transition"

    def __init__(self, status: str, target: str, command: str) -> None:
        super().__init__(f"{command}: cannot move an order from {status} to {target}")
        self.status = status
        self.target = target
        self.command = command


class DirectionMismatch(DomainError):
    """A command meant for deposits was sent for a withdrawal, or the other way round."""

    code = "direction_mismatch"


class NotYetExpired(DomainError):
    """An expiry arrived before the order's deadline (a clock or timer bug upstream)."""

    code = "not_yet_expired"


class DeadlinePassed(DomainError):
    """The payer acted at or after the deadline; the order must expire instead."""

    code = "deadline_passed"


class OrderNotFound(DomainError):
    """A command other than opening was sent for an order that does not exist."""

    code = "order_not_found"


class OrderMismatch(DomainError):
    """A command names another order, or another partner than the order's owner."""

    code = "order_mismatch"


class OrderConflict(DomainError):
    """An order with this uid exists with different terms (amount, currency ...)."""

    code = "order_conflict"


class InsufficientFunds(DomainError):
    """The partner's available balance cannot cover a hold."""

    code = "insufficient_funds"

    def __init__(self, available_minor: int, required_minor: int) -> None:
        super().__init__(f"available {available_minor} < required {required_minor}")
        self.available_minor = available_minor
        self.required_minor = required_minor


class InsufficientHeld(DomainError):
    """A release or capture asks for more than is held: the ledger would go negative."""

    code = "insufficient_held"

    def __init__(self, held_minor: int, required_minor: int) -> None:
        super().__init__(f"held {held_minor} < required {required_minor}")
        self.held_minor = held_minor
        self.required_minor = required_minor


class InvalidCard(DomainError):
    """A card configuration breaks an invariant (limits, order bounds ...)."""

    code = "invalid_card"


class NoEligibleCard(DomainError):
    """No card in the pool can take the order; ``reasons`` maps card id to why not."""

    code = "no_eligible_card"

    def __init__(self, reasons: Mapping[str, str]) -> None:
        super().__init__(f"no eligible card among {len(reasons)} candidate(s)")
        self.reasons = dict(reasons)
