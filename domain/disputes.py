"""Disputes: a payer says "I paid" for a deposit that closed without the money.

A deposit that expired or was rejected may still have been paid: the payer transferred late,
or the operator missed the transfer. The payer (from the payment form) or the partner (from
the API) opens a dispute with a receipt; an operator settles it before its deadline:

    open ──► accepted   (the order is credited late, by a posting that names the dispute)
      └───► rejected    (with a reason the payer and the partner see)

The order itself keeps its terminal status: terminal statuses never change (invariant 2).
The late credit is its own ledger transaction, ``dispute_credit``, which an order gets at
most once, and only an order that was never credited. An order has at most one dispute: a
resolved dispute is final.

The evidence is a receipt, or a bank notification an operator attached to the order (the
card's phone saw the credit arrive too late to match). A receipt is a PDF, PNG or JPEG of at
most :data:`MAX_RECEIPT_BYTES`. Its type is read from
its first bytes (:func:`receipt_type`); the name and the declared type a client sends are
never trusted.
"""

# Error names are the domain's vocabulary, as in domain.errors.
# ruff: noqa: N818

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from domain.errors import DomainError
from domain.orders import Direction, OrderStatus
from domain.text import FREE_TEXT, check_text


class DisputeStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class OpenedBy(StrEnum):
    PAYER = "payer"
    PARTNER = "partner"
    #: An operator who attached a bank notification to the closed order (ADR 0010): the
    #: notification, not a receipt, is the evidence.
    OPERATOR = "operator"


class DisputeVerdict(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


_D = DisputeStatus

#: Where each verdict takes an open dispute; a resolved one goes nowhere.
RESOLVES_TO: Final = MappingProxyType(
    {DisputeVerdict.ACCEPT: _D.ACCEPTED, DisputeVerdict.REJECT: _D.REJECTED}
)

#: The statuses of a deposit that may be disputed: it closed and moved no money.
DISPUTABLE: Final = frozenset({OrderStatus.EXPIRED, OrderStatus.REJECTED})

MAX_RECEIPT_BYTES: Final = 5 * 1024 * 1024
MAX_COMMENT_CHARS: Final = 1000
MAX_REASON_CHARS: Final = 500
DEFAULT_DEADLINE_S: Final = 24 * 3600

#: The first bytes of each accepted receipt type (the files' own signatures).
_SIGNATURES: Final = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
RECEIPT_TYPES: Final = frozenset(content_type for _, content_type in _SIGNATURES)


class NotDisputable(DomainError):
    """The order is not a deposit that closed without money (expired or rejected)."""

    code = "order_not_disputable"


class DisputeExists(DomainError):
    """The order has a dispute already: open (wait for it) or resolved (final)."""

    code = "dispute_exists"

    def __init__(self, dispute_id: str, status: DisputeStatus) -> None:
        super().__init__(f"order already has dispute {dispute_id} ({status})")
        self.dispute_id = dispute_id
        self.status = status


class DisputeResolved(DomainError):
    """A verdict on a dispute that is no longer open."""

    code = "dispute_resolved"

    def __init__(self, status: DisputeStatus) -> None:
        super().__init__(f"the dispute is {status} already")
        self.status = status


class InvalidReceipt(DomainError):
    """The receipt is empty, too large, or not a PDF, PNG or JPEG by its bytes."""

    code = "invalid_receipt"


class ReceiptTooLarge(InvalidReceipt):
    code = "receipt_too_large"


class ReceiptType(InvalidReceipt):
    code = "receipt_type"


class TextTooLong(DomainError):
    """A comment or reason longer than its field allows."""

    code = "text_too_long"


class ReasonRequired(DomainError):
    """A rejection must say why: the payer and the partner are shown the reason."""

    code = "reason_required"


def check_disputable(direction: Direction, status: OrderStatus) -> None:
    """Refuse a dispute on anything but an expired or rejected deposit."""
    if direction is not Direction.DEPOSIT or status not in DISPUTABLE:
        raise NotDisputable(
            f"only an expired or rejected deposit can be disputed; this is a {direction} "
            f"that is {status}"
        )


def receipt_type(data: bytes) -> str:
    """The receipt's media type from its own first bytes; refuse anything else."""
    if not data:
        raise InvalidReceipt("the receipt is empty")
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptTooLarge(
            f"the receipt has {len(data)} bytes; at most {MAX_RECEIPT_BYTES} are accepted"
        )
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            return content_type
    raise ReceiptType("the receipt must be a PDF, PNG or JPEG file (judged by its content)")


def resolve(status: DisputeStatus, verdict: DisputeVerdict, reason: str | None) -> DisputeStatus:
    """The status ``verdict`` gives an open dispute; a rejection needs a reason.

    Accepting an accepted dispute again is allowed and changes nothing: it is how a late
    credit whose command was lost is asked for once more (the desk books it once).
    """
    if status is DisputeStatus.ACCEPTED and verdict is DisputeVerdict.ACCEPT:
        return status
    if status is not DisputeStatus.OPEN:
        raise DisputeResolved(status)
    if verdict is DisputeVerdict.REJECT and not (reason or "").strip():
        raise ReasonRequired("say why the dispute is rejected: the payer and partner see it")
    return RESOLVES_TO[verdict]


def clean_text(field: str, value: str | None, max_chars: int) -> str | None:
    """An optional comment or reason: storable (the one text rule), at most ``max_chars``
    long; blank counts as absent."""
    if value is None or not value.strip():
        return None
    if len(value) > max_chars:
        raise TextTooLong(f"{field} has {len(value)} characters; at most {max_chars}")
    return check_text(field, value.strip(), FREE_TEXT)
