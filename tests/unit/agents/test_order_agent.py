"""The order agent's protocol through its pure handler: state, outputs, replies, repeats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.ledger import PostingKind
from domain.orders import DeclineReason, Direction, OrderStatus
from schemas import cards as wc
from schemas import ledger as wl
from schemas import orders as w
from stream_agents.order_agent import due_expiries
from stream_agents.order_outputs import OrderEntry
from stream_agents.wire import Out
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


@pytest.fixture
def driver() -> OrderDriver:
    return OrderDriver()


def replies(step_outputs: list[Out]) -> list[w.OrderReply]:
    return of_type(step_outputs, w.OrderReply)


def test_open_deposit_asks_the_pool_and_waits_to_answer(driver: OrderDriver) -> None:
    step = driver.send(open_order())
    assert step.changed
    assert step.entry is not None
    assert step.entry.order.status is S.PENDING
    assert types(step.outputs) == [("order-events", "order.opened"), ("card-pool", "card.request")]
    [opened] = of_type(step.outputs, w.OrderOpened)
    assert (opened.pool_id, opened.callback_url) == ("pool-1", "https://partner.example/cb")
    [request] = of_type(step.outputs, wc.RequestCard)
    assert (request.pool_id, request.amount_minor, request.currency) == ("pool-1", 150_000, "RUB")
    assert len(step.entry.waiting) == 1
    assert step.deadline_ms is None


def test_leaving_pending_answers_every_waiting_open(driver: OrderDriver) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    for command_id in ids:  # the API retried with a new message id
        assert replies(driver.send(open_order(), message_id=command_id).outputs) == []
    assert driver.entry is not None
    assert driver.entry.waiting == tuple(str(i) for i in ids)
    step = driver.send(assign(), at_ms=T0 + 500)
    answers = replies(step.outputs)
    assert [a.command_id for a in answers] == ids
    assert all(a.accepted and a.order and a.order.status is S.NEW for a in answers)
    assert answers[0].order is not None
    assert answers[0].order.card_id == "card-1"
    assert step.deadline_ms == T0 + 900_000


def test_a_repeated_command_republishes_identical_outputs(driver: OrderDriver) -> None:
    driver.send(open_order())
    assign_env = env(assign(), T0 + 500)
    first = driver.deliver(assign_env, assign())
    again = driver.deliver(assign_env, assign())
    assert not again.changed
    assert [(o.message_id, o.encode()) for o in again.outputs] == [
        (o.message_id, o.encode()) for o in first.outputs
    ]
    assert len(replies(again.outputs)) == 1  # the answer owed to the open is repeated too


def test_an_open_repeated_after_pending_is_answered_at_once(driver: OrderDriver) -> None:
    driver.send(open_order())
    driver.send(assign())
    retry_id = uuid.uuid4()
    step = driver.send(open_order(fee_bp=300), message_id=retry_id)  # tariff changed: a repeat
    assert not step.changed
    [answer] = [a for a in replies(step.outputs) if a.command_id == retry_id]
    assert answer.accepted
    assert answer.order is not None
    assert (answer.order.status, answer.order.version) == (S.NEW, 2)
    assert types(step.outputs)[0] == ("order-events", "order.created")


def test_a_conflicting_open_is_refused_and_changes_nothing(driver: OrderDriver) -> None:
    driver.send(open_order())
    before = driver.stored
    step = driver.send(open_order(amount_minor=1))
    assert not step.changed
    assert driver.stored == before
    [answer] = replies(step.outputs)
    assert (answer.accepted, answer.code) == (False, "order_conflict")
    assert types(step.outputs) == [("order-replies", "order.reply")]


def test_a_deposit_without_a_pool_declines_itself(driver: OrderDriver) -> None:
    step = driver.send(open_order(pool_id=None))
    [decline] = of_type(step.outputs, w.DeclineOrder)
    assert decline.reason is DeclineReason.NO_REQUISITE
    assert ("order-commands", "order.decline") in types(step.outputs)
    step = driver.send(decline)
    [answer] = replies(step.outputs)
    assert answer.order is not None
    assert answer.order.status is S.DECLINED


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
    step = driver.send(
        w.ConfirmPayment(uid=UID, payer_card_ciphertext="sealed", reply=True), at_ms=T0 + 1_000
    )
    assert types(step.outputs) == [
        ("order-events", "order.payment_confirmed"),
        ("order-replies", "order.reply"),
    ]
    assert of_type(step.outputs, w.PaymentConfirmed)[0].payer_card_ciphertext == "sealed"
    assert step.deadline_ms is None  # processing never expires
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
    deadline = step.deadline_ms
    assert deadline is not None
    [expire] = due_expiries([(str(UID), deadline)], deadline)
    assert isinstance(expire.message, w.ExpireOrder)
    step = driver.send(expire.message, at_ms=expire.occurred_at_ms)
    assert step.entry is not None
    assert step.entry.order.status is S.EXPIRED
    assert step.deadline_ms is None
    if direction is Direction.DEPOSIT:
        assert [r.approved for r in of_type(step.outputs, wc.ReleaseCard)] == [False]
    else:
        assert [op.op for op in of_type(step.outputs, wl.ApplyLedgerOp)] == [PostingKind.RELEASE]


def test_due_expiries_are_dated_at_their_deadline_and_stable() -> None:
    deadlines = [("a0000000-0000-4000-8000-000000000001", T0), (str(UID), T0 + 1)]
    [due] = due_expiries(deadlines, T0)
    assert due.occurred_at_ms == T0
    assert due.message_id == due_expiries(deadlines, T0 + 5_000)[0].message_id


def test_a_second_verdict_is_refused_with_who_decided(driver: OrderDriver) -> None:
    _to_processing(driver, Direction.DEPOSIT)
    driver.send(decide(w.Verdict.APPROVE, "alice"), at_ms=T0 + 2_000)
    step = driver.send(decide(w.Verdict.REJECT, "bob"), at_ms=T0 + 2_001)
    assert not step.changed
    [answer] = replies(step.outputs)
    assert (answer.accepted, answer.code) == (False, "illegal_transition")
    assert "approved" in answer.message
    decided_at = datetime.fromtimestamp((T0 + 2_000) / 1000, UTC)
    assert f"decided by alice at {decided_at:%Y-%m-%d %H:%M:%S} UTC" in answer.message
    assert types(step.outputs) == [("order-replies", "order.reply")]


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
    step = driver.send(w.ConfirmPayment(uid=UID, reply=True))
    assert step.entry is None
    [answer] = replies(step.outputs)
    assert (answer.accepted, answer.code, answer.order) == (False, "order_not_found", None)
    assert answer.uid == UID


def test_the_entry_survives_the_table_round_trip(driver: OrderDriver) -> None:
    command_id = uuid.uuid4()
    driver.send(open_order(), message_id=command_id)
    driver.send(assign())
    assert driver.stored is not None
    entry = OrderEntry.from_json(driver.stored)
    assert OrderEntry.from_json(entry.to_json()) == entry
    assert (entry.waiting, entry.answered) == ((), (str(command_id),))


def test_reply_ids_depend_on_command_and_version_only(driver: OrderDriver) -> None:
    command_id = uuid.uuid4()
    driver.send(open_order(), message_id=command_id)
    first = replies(driver.send(assign()).outputs)[0]
    repeat = driver.send(open_order(), message_id=command_id)
    assert [o.message_id for o in repeat.outputs if isinstance(o.message, w.OrderReply)] == [
        o.message_id for o in driver.steps[1].outputs if isinstance(o.message, w.OrderReply)
    ]
    assert first.command_id == command_id
