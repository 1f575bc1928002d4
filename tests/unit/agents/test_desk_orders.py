"""The order agent's protocol through its pure handler: state, outputs, refusals, repeats."""

from __future__ import annotations

import uuid

import pytest

from domain.ledger import PostingKind
from domain.orders import DeclineReason, Direction, OrderStatus
from schemas import cards as wc
from schemas import ledger as wl
from schemas import orders as w
from stream_agents.desk.orders import Deadline, Step, deadline_of, due_expiries
from stream_agents.desk.outputs import OrderEntry
from tests.unit.agents.builders import (
    PAYER_CARD,
    T0,
    UID,
    OrderDriver,
    assign,
    decide,
    env,
    of_type,
    open_order,
    types,
)

S = OrderStatus


def deadline_ms(step: Step) -> int | None:
    """When the order of ``step`` expires, if it can (the desk's index keeps this)."""
    deadline = deadline_of(step.entry) if step.entry is not None else None
    return None if deadline is None else deadline.expires_at_ms


@pytest.fixture
def driver() -> OrderDriver:
    return OrderDriver()


def test_open_deposit_asks_the_pool(driver: OrderDriver) -> None:
    step = driver.send(open_order())
    assert step.changed
    assert step.entry is not None
    assert step.entry.order.status is S.PENDING
    assert types(step.outputs) == [("order-events", "order.opened"), ("desk/pool", "card.request")]
    [opened] = of_type(step.outputs, w.OrderOpened)
    assert (opened.pool_id, opened.callback_url) == ("pool-1", "https://partner.example/cb")
    [request] = of_type(step.outputs, wc.RequestCard)
    assert (request.pool_id, request.amount_minor, request.currency) == ("pool-1", 150_000, "RUB")
    assert deadline_ms(step) is None


def test_leaving_pending_publishes_the_created_event(driver: OrderDriver) -> None:
    driver.send(open_order())
    step = driver.send(assign(), at_ms=T0 + 500)
    assert types(step.outputs) == [("order-events", "order.created")]
    [created] = of_type(step.outputs, w.OrderCreated)
    assert (created.order.status, created.order.version) == (S.NEW, 2)
    assert created.order.card_id == "card-1"
    assert deadline_ms(step) == T0 + 900_000


def test_a_repeated_command_republishes_identical_outputs(driver: OrderDriver) -> None:
    driver.send(open_order())
    assign_env = env(assign(), T0 + 500)
    first = driver.deliver(assign_env, assign())
    again = driver.deliver(assign_env, assign())
    assert not again.changed
    assert [(o.message_id, o.encode()) for o in again.outputs] == [
        (o.message_id, o.encode()) for o in first.outputs
    ]


def test_an_open_repeated_after_pending_republishes_the_current_event(
    driver: OrderDriver,
) -> None:
    driver.send(open_order())
    created = driver.send(assign())
    step = driver.send(open_order(fee_bp=300), message_id=uuid.uuid4())  # tariff changed: a repeat
    assert not step.changed
    assert types(step.outputs) == [("order-events", "order.created")]
    assert step.outputs[0].encode() == created.outputs[0].encode()  # the API's waiter sees it


def test_a_conflicting_open_is_refused_and_publishes_nothing(driver: OrderDriver) -> None:
    driver.send(open_order())
    before = driver.stored
    step = driver.send(open_order(amount_minor=1))
    assert not step.changed
    assert driver.stored == before
    assert step.outputs == []


def test_a_deposit_without_a_pool_declines_itself(driver: OrderDriver) -> None:
    step = driver.send(open_order(pool_id=None))
    [decline] = of_type(step.outputs, w.DeclineOrder)
    assert decline.reason is DeclineReason.NO_REQUISITE
    assert ("desk/order", "order.decline") in types(step.outputs)
    step = driver.send(decline)
    [declined] = of_type(step.outputs, w.OrderDeclined)
    assert declined.order.status is S.DECLINED


def test_withdrawal_is_held_before_it_is_new(driver: OrderDriver) -> None:
    step = driver.send(open_order(Direction.WITHDRAWAL, fee_bp=100))
    [hold] = of_type(step.outputs, wl.ApplyLedgerOp)
    assert (hold.op, hold.amount_minor, hold.fee_minor) == (PostingKind.HOLD, 150_000, 1_500)
    assert hold.partner_id == "acme"
    step = driver.send(w.MarkFundsHeld(uid=UID))
    assert step.entry is not None
    assert step.entry.order.status is S.NEW


def test_payment_confirmation_awaits_an_operator(driver: OrderDriver) -> None:
    driver.send(open_order())
    driver.send(assign())
    step = driver.send(w.ConfirmPayment(uid=UID, payer_card_ciphertext="sealed"), at_ms=T0 + 1_000)
    assert types(step.outputs) == [("order-events", "order.payment_confirmed")]
    assert of_type(step.outputs, w.PaymentConfirmed)[0].payer_card_ciphertext == "sealed"
    assert deadline_ms(step) is None  # processing never expires
    assert driver.entry is not None
    assert driver.entry.payer_card_ciphertext == "sealed"


def _to_processing(driver: OrderDriver, direction: Direction) -> None:
    driver.send(open_order(direction))
    driver.send(assign() if direction is Direction.DEPOSIT else w.MarkFundsHeld(uid=UID))
    driver.send(w.ConfirmPayment(uid=UID, payer_card_masked=PAYER_CARD), at_ms=T0 + 1_000)


@pytest.mark.parametrize(
    ("direction", "verdict", "ledger", "release"),
    [
        (Direction.DEPOSIT, w.Verdict.APPROVE, PostingKind.DEPOSIT_CREDIT, True),
        (Direction.DEPOSIT, w.Verdict.REJECT, None, False),
        (Direction.DEPOSIT, w.Verdict.FAIL, None, False),
        (Direction.WITHDRAWAL, w.Verdict.APPROVE, PostingKind.CAPTURE, None),
        (Direction.WITHDRAWAL, w.Verdict.REJECT, PostingKind.RELEASE, None),
        (Direction.WITHDRAWAL, w.Verdict.FAIL, PostingKind.RELEASE, None),
    ],
)
def test_a_verdict_settles_money_and_frees_the_card(
    driver: OrderDriver,
    direction: Direction,
    verdict: w.Verdict,
    ledger: PostingKind | None,
    release: bool | None,
) -> None:
    _to_processing(driver, direction)
    step = driver.send(decide(verdict), at_ms=T0 + 2_000)
    assert [op.op for op in of_type(step.outputs, wl.ApplyLedgerOp)] == ([ledger] if ledger else [])
    releases = of_type(step.outputs, wc.ReleaseCard)
    assert [r.approved for r in releases] == ([] if release is None else [release])
    for r in releases:
        assert (r.pool_id, r.card_id, r.amount_minor) == ("pool-1", "card-1", 150_000)


@pytest.mark.parametrize("direction", list(Direction))
def test_expiry_frees_what_the_order_held(driver: OrderDriver, direction: Direction) -> None:
    driver.send(open_order(direction))
    step = driver.send(assign() if direction is Direction.DEPOSIT else w.MarkFundsHeld(uid=UID))
    deadline = deadline_ms(step)
    assert deadline is not None
    [expire] = due_expiries([(str(UID), Deadline(deadline, "pool:pool-1"))], deadline)
    assert expire.key == b"pool:pool-1"  # to the order's desk
    assert isinstance(expire.message, w.ExpireOrder)
    step = driver.send(expire.message, at_ms=expire.occurred_at_ms)
    assert step.entry is not None
    assert step.entry.order.status is S.EXPIRED
    assert deadline_ms(step) is None
    if direction is Direction.DEPOSIT:
        assert [r.approved for r in of_type(step.outputs, wc.ReleaseCard)] == [False]
    else:
        assert [op.op for op in of_type(step.outputs, wl.ApplyLedgerOp)] == [PostingKind.RELEASE]


def test_due_expiries_are_dated_at_their_deadline_and_stable() -> None:
    deadlines = [
        ("a0000000-0000-4000-8000-000000000001", Deadline(T0, "pool:pool-1")),
        (str(UID), Deadline(T0 + 1, "pool:pool-1")),
    ]
    [due] = due_expiries(deadlines, T0)
    assert due.occurred_at_ms == T0
    assert due.message_id == due_expiries(deadlines, T0 + 5_000)[0].message_id


def test_a_second_verdict_is_refused_and_publishes_nothing(driver: OrderDriver) -> None:
    _to_processing(driver, Direction.DEPOSIT)
    driver.send(decide(w.Verdict.APPROVE, "alice"), at_ms=T0 + 2_000)
    before = driver.stored
    step = driver.send(decide(w.Verdict.REJECT, "bob"), at_ms=T0 + 2_001)
    assert not step.changed
    assert driver.stored == before
    assert step.outputs == []  # the API refuses bob from alice's order.approved (ADR 0003)


def test_a_refused_assignment_frees_a_card_the_order_does_not_hold(driver: OrderDriver) -> None:
    driver.send(open_order())
    driver.send(assign("card-1"))
    step = driver.send(assign("card-2", "220220******9999"))
    [release] = of_type(step.outputs, wc.ReleaseCard)
    assert (release.card_id, release.approved) == ("card-2", False)
    cancelled = driver.send(w.CancelOrder(uid=UID, partner_id="acme"))
    assert [r.card_id for r in of_type(cancelled.outputs, wc.ReleaseCard)] == ["card-1"]
    late_same_card = driver.send(assign("card-1"))
    assert of_type(late_same_card.outputs, wc.ReleaseCard) == []


def test_commands_for_an_unknown_order_are_refused(driver: OrderDriver) -> None:
    step = driver.send(w.ConfirmPayment(uid=UID))
    assert step.entry is None
    assert step.outputs == []


def test_the_entry_survives_the_table_round_trip(driver: OrderDriver) -> None:
    driver.send(open_order())
    driver.send(w.ConfirmPayment(uid=UID), at_ms=T0 + 1)  # refused: still pending
    driver.send(assign())
    assert driver.stored is not None
    entry = OrderEntry.from_json(driver.stored)
    assert OrderEntry.from_json(entry.to_json()) == entry


def test_an_entry_written_with_reply_bookkeeping_still_loads(driver: OrderDriver) -> None:
    driver.send(open_order())
    assert driver.stored is not None
    old = {**driver.stored, "waiting": ["a"], "answered": ["b"]}  # before ADR 0003
    assert OrderEntry.from_json(old) == OrderEntry.from_json(driver.stored)
