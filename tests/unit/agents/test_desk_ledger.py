"""The partner agent's protocol through its pure handler: balances, postings, repeats."""

from __future__ import annotations

import json
import uuid

import pytest

from domain.ledger import PostingKind, is_balanced, postings_for
from domain.orders import DeclineReason, Direction, OrderStatus
from schemas import ledger as wl
from schemas import orders as w
from stream_agents.desk.ledger import Entry, Step, handle, legs
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
    """Keeps the table's entries between operations, through JSON, as the table does."""

    def __init__(self) -> None:
        self.balances: Entry | None = None
        self.operations: dict[str, Entry] = {}

    def step(self, message: wl.ApplyLedgerOp, now_ms: int = T0) -> Step:
        return handle(self.balances, self.operations.get(str(message.uid)), message, now_ms)

    def keep(self, message: wl.ApplyLedgerOp, step: Step) -> None:
        if step.operations is not None:
            self.operations[str(message.uid)] = json.loads(json.dumps(step.operations))
        if step.balances is not None:
            self.balances = json.loads(json.dumps(step.balances))

    def apply(self, message: wl.ApplyLedgerOp, now_ms: int = T0) -> list[Out]:
        step = self.step(message, now_ms)
        self.keep(message, step)
        return step.outputs

    @property
    def state(self) -> tuple[Entry | None, dict[str, Entry]]:
        return json.loads(json.dumps(self.balances)), json.loads(json.dumps(self.operations))

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
        ("desk/order", "order.mark_funds_held"),
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
    assert ledger.balances is not None
    assert ledger.balances["RUB"]["held_minor"] == 0


def test_settling_without_a_hold_is_refused() -> None:
    ledger = Ledger()
    ledger.apply(op(K.DEPOSIT_CREDIT, 500_000, 0))
    before = ledger.state
    assert ledger.apply(op(K.RELEASE)) == []
    assert ledger.apply(op(K.CAPTURE)) == []
    assert ledger.state == before


def test_each_write_stays_small_however_many_orders_came_before() -> None:
    ledger = Ledger()
    sizes = []
    for _ in range(2_000):
        message = op(K.DEPOSIT_CREDIT, 10_000, 100)
        step = ledger.step(message)
        ledger.keep(message, step)
        sizes.append(len(json.dumps(step.operations)) + len(json.dumps(step.balances)))
    assert max(sizes) - sizes[0] < 16  # only the balance's figures grow a few digits
    assert ledger.balances is not None
    assert ledger.balances["RUB"]["available_minor"] == 2_000 * 9_900


def test_a_balance_write_lost_in_a_crash_is_rolled_forward_on_redelivery() -> None:
    ledger = Ledger()
    ledger.apply(op(K.DEPOSIT_CREDIT, 300_000, 0))
    hold = op(K.HOLD, 100_000, 1_000)
    step = ledger.step(hold)
    assert step.operations is not None
    assert step.balances is not None
    # The crash: the order's entry reached the changelog, the balance after it did not.
    ledger.operations[str(hold.uid)] = json.loads(json.dumps(step.operations))
    again = ledger.step(hold, now_ms=T0 + 9_000)
    assert again.operations is None
    assert again.balances == step.balances
    assert [o.encode() for o in again.outputs] == [o.encode() for o in step.outputs]
    ledger.keep(hold, again)
    # Delivered once more, nothing is applied twice.
    assert (ledger.step(hold).operations, ledger.step(hold).balances) == (None, None)
    assert ledger.balances is not None
    assert ledger.balances["RUB"] == {
        "available_minor": 199_000,
        "held_minor": 101_000,
        "version": 2,
    }
