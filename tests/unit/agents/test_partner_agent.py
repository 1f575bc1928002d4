"""The partner agent's protocol through its pure handler: balances, postings, repeats."""

from __future__ import annotations

import json
import uuid

import pytest

from domain.ledger import PostingKind, is_balanced, postings_for
from domain.orders import DeclineReason, Direction, OrderStatus
from schemas import ledger as wl
from schemas import orders as w
from stream_agents.partner_agent import State, handle, legs
from stream_agents.wire import Out
from tests.unit.agents.builders import T0
from tests.unit.domain.builders import step_into

K = PostingKind


def op(
    kind: PostingKind, amount: int = 100_000, fee: int = 1_000, uid: uuid.UUID | None = None
) -> wl.ApplyLedgerOp:
    return wl.ApplyLedgerOp(
        partner_id="acme",
        uid=uid or uuid.uuid4(),
        currency="RUB",
        op=kind,
        amount_minor=amount,
        fee_minor=fee,
    )


class Ledger:
    def __init__(self) -> None:
        self.state: State | None = None

    def apply(self, message: wl.ApplyLedgerOp, now_ms: int = T0) -> list[Out]:
        state, outputs = handle(self.state, message, now_ms)
        if state is not None:
            self.state = json.loads(json.dumps(state))
        return outputs

    def posted(self, message: wl.ApplyLedgerOp) -> wl.LedgerPosted:
        [posting] = [
            o.message for o in self.apply(message) if isinstance(o.message, wl.LedgerPosted)
        ]
        return posting


@pytest.mark.parametrize(
    ("status", "direction"),
    [
        (OrderStatus.NEW, Direction.WITHDRAWAL),
        (OrderStatus.APPROVED, Direction.WITHDRAWAL),
        (OrderStatus.REJECTED, Direction.WITHDRAWAL),
        (OrderStatus.APPROVED, Direction.DEPOSIT),
    ],
)
def test_legs_agree_with_the_domain_postings(status: OrderStatus, direction: Direction) -> None:
    order, [event] = step_into(status, direction)
    postings = postings_for(order, event)
    expected = [(p.account, p.amount_minor) for p in postings]
    assert legs(postings[0].kind, "acme", order.amount_minor, order.fee_minor) == expected
    assert is_balanced(postings)


def test_zero_fee_legs_are_left_out() -> None:
    assert legs(K.DEPOSIT_CREDIT, "acme", 500, 0) == [
        ("external:settlement", -500),
        ("partner:acme:available", 500),
    ]


def test_a_deposit_credits_the_amount_less_fee() -> None:
    ledger = Ledger()
    posted = ledger.posted(op(K.DEPOSIT_CREDIT, 100_000, 2_000))
    assert (posted.available_minor, posted.held_minor, posted.balance_version) == (98_000, 0, 1)
    assert ("system:fees", 2_000) in [(leg.account, leg.amount_minor) for leg in posted.legs]


def test_a_hold_is_answered_and_settled_once() -> None:
    ledger = Ledger()
    ledger.apply(op(K.DEPOSIT_CREDIT, 300_000, 0))
    uid = uuid.uuid4()
    outputs = ledger.apply(op(K.HOLD, 100_000, 1_000, uid))
    assert [(o.topic, o.message.TYPE) for o in outputs] == [
        ("ledger-events", "ledger.posted"),
        ("order-commands", "order.mark_funds_held"),
    ]
    posted = outputs[0].message
    assert isinstance(posted, wl.LedgerPosted)
    assert (posted.available_minor, posted.held_minor) == (199_000, 101_000)
    captured = ledger.posted(op(K.CAPTURE, 100_000, 1_000, uid))
    assert (captured.available_minor, captured.held_minor, captured.balance_version) == (
        199_000,
        0,
        3,
    )
    assert ledger.apply(op(K.RELEASE, 100_000, 1_000, uid)) == []  # already settled


def test_a_repeated_operation_republishes_identical_messages() -> None:
    ledger = Ledger()
    ledger.apply(op(K.DEPOSIT_CREDIT, 300_000, 0))
    hold = op(K.HOLD)
    first = ledger.apply(hold, now_ms=T0)
    before = ledger.state
    again = ledger.apply(hold, now_ms=T0 + 5_000)
    assert ledger.state == before
    assert [o.encode() for o in again] == [o.encode() for o in first]


def test_an_uncovered_hold_is_declined_and_stays_declined() -> None:
    ledger = Ledger()
    ledger.apply(op(K.DEPOSIT_CREDIT, 50_000, 0))
    hold = op(K.HOLD, 100_000, 0)
    [declined] = ledger.apply(hold)
    assert isinstance(declined.message, w.DeclineOrder)
    assert declined.message.reason is DeclineReason.INSUFFICIENT_FUNDS
    ledger.apply(op(K.DEPOSIT_CREDIT, 500_000, 0))  # money arrives later: the answer stands
    assert [o.encode() for o in ledger.apply(hold)] == [declined.encode()]
    assert ledger.state is not None
    assert ledger.state["balances"]["RUB"]["held_minor"] == 0


def test_settling_without_a_hold_is_refused() -> None:
    ledger = Ledger()
    ledger.apply(op(K.DEPOSIT_CREDIT, 500_000, 0))
    before = ledger.state
    assert ledger.apply(op(K.RELEASE)) == []
    assert ledger.apply(op(K.CAPTURE)) == []
    assert ledger.state == before
