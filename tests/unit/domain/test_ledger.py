"""Postings per event kind, balance checks, and partner balance operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain import events as ev
from domain.commands import ApproveOrder, ConfirmPayment
from domain.errors import InsufficientFunds, InsufficientHeld, InvalidAmount, OrderMismatch
from domain.ledger import (
    EXTERNAL_SETTLEMENT,
    SYSTEM_FEES,
    Balance,
    Posting,
    PostingKind,
    balance_after,
    capture,
    credit,
    hold,
    is_balanced,
    partner_available,
    partner_held,
    posting_kind,
    postings_for,
    release,
)
from domain.lifecycle import apply
from domain.orders import Direction, OrderStatus
from tests.unit.domain.builders import (
    PAYER_CARD,
    T0,
    UID,
    open_order,
    order_in,
    reserve,
    run,
    step_into,
)

S = OrderStatus
AVAILABLE, HELD = partner_available("acme"), partner_held("acme")


def legs(postings: list[Posting]) -> list[tuple[PostingKind, str, int]]:
    return [(p.kind, p.account, p.amount_minor) for p in postings]


# 150_000 amount, 3_000 fee (200 bp): a withdrawal holds 153_000.
EXPECTED = {
    (S.NEW, Direction.WITHDRAWAL): [
        (PostingKind.HOLD, AVAILABLE, -153_000),
        (PostingKind.HOLD, HELD, 153_000),
    ],
    (S.APPROVED, Direction.WITHDRAWAL): [
        (PostingKind.CAPTURE, HELD, -153_000),
        (PostingKind.CAPTURE, EXTERNAL_SETTLEMENT, 150_000),
        (PostingKind.CAPTURE, SYSTEM_FEES, 3_000),
    ],
    (S.APPROVED, Direction.DEPOSIT): [
        (PostingKind.DEPOSIT_CREDIT, EXTERNAL_SETTLEMENT, -150_000),
        (PostingKind.DEPOSIT_CREDIT, AVAILABLE, 147_000),
        (PostingKind.DEPOSIT_CREDIT, SYSTEM_FEES, 3_000),
    ],
}
for closing in (S.REJECTED, S.FAILED, S.EXPIRED, S.CANCELLED):
    EXPECTED[closing, Direction.WITHDRAWAL] = [
        (PostingKind.RELEASE, HELD, -153_000),
        (PostingKind.RELEASE, AVAILABLE, 153_000),
    ]


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("status", [s for s in OrderStatus if s is not S.PENDING])
def test_postings_per_event(status: OrderStatus, direction: Direction) -> None:
    order, events = step_into(status, direction)
    postings = postings_for(order, events[0])
    assert legs(postings) == EXPECTED.get((status, direction), [])
    assert is_balanced(postings)
    assert all(p.order_uid == UID and p.currency == "RUB" for p in postings)


def test_opening_moves_no_money() -> None:
    order, events = apply(None, open_order(Direction.WITHDRAWAL))
    assert postings_for(order, events[0]) == []
    assert posting_kind(order, events[0]) is None


def test_zero_legs_are_left_out() -> None:
    free = run(None, open_order(Direction.WITHDRAWAL, fee_bp=0))
    free, events = apply(free, reserve(free))
    assert legs(postings_for(free, events[0])) == [
        (PostingKind.HOLD, AVAILABLE, -150_000),
        (PostingKind.HOLD, HELD, 150_000),
    ]
    # A deposit whose fee is the whole amount credits the partner nothing.
    greedy = run(None, open_order(fee_bp=10_000))
    greedy = run(greedy, reserve(greedy), ConfirmPayment(uid=UID, at_ms=T0 + 2_000))
    greedy, events = apply(
        greedy, ApproveOrder(uid=UID, at_ms=T0 + 3_000, operator="o", decision_id="d")
    )
    assert legs(postings_for(greedy, events[0])) == [
        (PostingKind.DEPOSIT_CREDIT, EXTERNAL_SETTLEMENT, -150_000),
        (PostingKind.DEPOSIT_CREDIT, SYSTEM_FEES, 150_000),
    ]
    assert balance_after(Balance(), greedy, events[0]) == Balance()


def test_postings_refuse_a_foreign_event() -> None:
    order = order_in(S.NEW, Direction.WITHDRAWAL)
    with pytest.raises(OrderMismatch):
        postings_for(order, ev.OrderExpired(uid="other", version=3, at_ms=T0))


def test_is_balanced() -> None:
    def leg(currency: str, amount: int) -> Posting:
        return Posting(
            order_uid=UID,
            kind=PostingKind.HOLD,
            account=AVAILABLE,
            currency=currency,
            amount_minor=amount,
        )

    assert is_balanced([])
    assert is_balanced([leg("RUB", 5), leg("RUB", -5)])
    assert not is_balanced([leg("RUB", 5), leg("RUB", -4)])
    assert not is_balanced([leg("RUB", 5), leg("USD", -5)])  # currencies never net out


@pytest.mark.parametrize("amount", [0, True, 1.5])
def test_posting_amount_must_be_a_nonzero_int(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        Posting(
            order_uid=UID,
            kind=PostingKind.HOLD,
            account=AVAILABLE,
            currency="RUB",
            amount_minor=amount,  # type: ignore[arg-type]
        )


def test_balance_operations() -> None:
    start = Balance(available_minor=1_000, held_minor=0)
    held = hold(start, 1_000)  # exactly everything is fine
    assert held == Balance(available_minor=0, held_minor=1_000)
    assert release(held, 400) == Balance(available_minor=400, held_minor=600)
    assert capture(held, 1_000) == Balance(available_minor=0, held_minor=0)
    assert credit(held, 5) == Balance(available_minor=5, held_minor=1_000)
    assert credit(held, 0) == held
    assert held.total_minor == 1_000


def test_hold_refuses_to_overdraw() -> None:
    with pytest.raises(InsufficientFunds) as caught:
        hold(Balance(available_minor=999), 1_000)
    assert (caught.value.available_minor, caught.value.required_minor) == (999, 1_000)
    assert caught.value.code == "insufficient_funds"


@pytest.mark.parametrize("operation", [release, capture])
def test_held_funds_never_go_negative(operation: Callable[[Balance, int], Balance]) -> None:
    with pytest.raises(InsufficientHeld) as caught:
        operation(Balance(available_minor=10**6, held_minor=9), 10)
    assert caught.value.held_minor == 9


@pytest.mark.parametrize("operation", [hold, release, capture, credit])
@pytest.mark.parametrize("amount", [-1, True, 2.5])
def test_operations_refuse_bad_amounts(
    operation: Callable[[Balance, int], Balance], amount: Any
) -> None:
    with pytest.raises(InvalidAmount):
        operation(Balance(available_minor=10, held_minor=10), amount)


@pytest.mark.parametrize(("available", "held"), [(-1, 0), (0, -1), (True, 0), (0, 1.0)])
def test_balance_is_never_negative(available: object, held: object) -> None:
    with pytest.raises(InvalidAmount):
        Balance(available_minor=available, held_minor=held)  # type: ignore[arg-type]


def test_balance_after_follows_the_withdrawal() -> None:
    order = order_in(S.PENDING, Direction.WITHDRAWAL)
    balance = Balance(available_minor=200_000)
    order, events = apply(order, reserve(order))
    balance = balance_after(balance, order, events[0])
    assert balance == Balance(available_minor=47_000, held_minor=153_000)
    order, events = apply(
        order, ConfirmPayment(uid=UID, at_ms=T0 + 2_000, payer_card_masked=PAYER_CARD)
    )
    assert balance_after(balance, order, events[0]) == balance
    order, events = apply(
        order, ApproveOrder(uid=UID, at_ms=T0 + 3_000, operator="o", decision_id="d")
    )
    assert balance_after(balance, order, events[0]) == Balance(available_minor=47_000)
