"""The order state machine: the full status x command matrix, then each guard on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain import events as ev
from domain.commands import (
    ApproveOrder,
    AssignCard,
    CancelOrder,
    Command,
    ConfirmPayment,
    DeclineOrder,
    ExpireOrder,
    FailOrder,
    HoldFunds,
    RejectOrder,
)
from domain.errors import (
    DeadlinePassed,
    DirectionMismatch,
    IllegalTransition,
    NotYetExpired,
    OrderConflict,
    OrderMismatch,
    OrderNotFound,
    PayerCardRequired,
)
from domain.lifecycle import apply, is_duplicate
from domain.orders import TERMINAL, TRANSITIONS, DeclineReason, Direction, Order, OrderStatus
from tests.unit.domain.builders import (
    CARD_MASKED,
    OTHER_PAYER_CARD,
    PARTNER,
    PAYER_CARD,
    T0,
    UID,
    open_order,
    order_in,
    run,
)

S = OrderStatus
NOW = T0 + 5_000  # inside every order's deadline

# Commands carrying facts different from those ``order_in`` recorded, so that a command
# aimed at the status an order is already in is a conflict, not a repeat.
FRESH: dict[str, Callable[[Order], Command]] = {
    "assign_card": lambda o: AssignCard(
        uid=o.uid, at_ms=NOW, card_id="card-2", card_masked=CARD_MASKED
    ),
    "hold_funds": lambda o: HoldFunds(uid=o.uid, at_ms=NOW),
    "decline": lambda o: DeclineOrder(
        uid=o.uid, at_ms=NOW, reason=DeclineReason.INSUFFICIENT_FUNDS
    ),
    "confirm": lambda o: ConfirmPayment(uid=o.uid, at_ms=NOW, payer_card_masked=OTHER_PAYER_CARD),
    "approve": lambda o: ApproveOrder(uid=o.uid, at_ms=NOW, operator="ivan", decision_id="d-2"),
    "reject": lambda o: RejectOrder(uid=o.uid, at_ms=NOW, operator="ivan", decision_id="d-2"),
    "fail": lambda o: FailOrder(uid=o.uid, at_ms=NOW, operator="ivan", decision_id="d-2"),
    "expire": lambda o: ExpireOrder(uid=o.uid, at_ms=o.expires_at_ms),
    "cancel": lambda o: CancelOrder(uid=o.uid, at_ms=NOW, partner_id=PARTNER),
}

# The business rules, written out by hand (not derived from the module under test).
LEGAL: dict[tuple[OrderStatus, str], tuple[OrderStatus, type[ev.Event]]] = {
    (S.PENDING, "assign_card"): (S.NEW, ev.OrderCreated),
    (S.PENDING, "hold_funds"): (S.NEW, ev.OrderCreated),
    (S.PENDING, "decline"): (S.DECLINED, ev.OrderDeclined),
    (S.NEW, "confirm"): (S.PROCESSING, ev.PaymentConfirmed),
    (S.NEW, "expire"): (S.EXPIRED, ev.OrderExpired),
    (S.NEW, "cancel"): (S.CANCELLED, ev.OrderCancelled),
    (S.PROCESSING, "approve"): (S.APPROVED, ev.OrderApproved),
    (S.PROCESSING, "reject"): (S.REJECTED, ev.OrderRejected),
    (S.PROCESSING, "fail"): (S.FAILED, ev.OrderFailed),
}
# Commands without facts of their own: aimed at the status they lead to, they are repeats.
REPEATS = {(S.NEW, "hold_funds"), (S.EXPIRED, "expire"), (S.CANCELLED, "cancel")}
ONE_DIRECTION = {"assign_card": Direction.DEPOSIT, "hold_funds": Direction.WITHDRAWAL}


def test_hand_written_rules_match_the_transition_table() -> None:
    table = {(src, dst) for src, targets in TRANSITIONS.items() for dst in targets}
    assert table == {(src, dst) for (src, _), (dst, _) in LEGAL.items()}
    assert {S.APPROVED, S.REJECTED, S.FAILED, S.DECLINED, S.EXPIRED, S.CANCELLED} == TERMINAL


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("kind", list(FRESH))
@pytest.mark.parametrize("status", list(OrderStatus))
def test_status_command_matrix(status: OrderStatus, kind: str, direction: Direction) -> None:
    order = order_in(status, direction)
    command = FRESH[kind](order)
    wanted_direction = ONE_DIRECTION.get(kind)

    if wanted_direction is not None and wanted_direction is not direction:
        with pytest.raises(DirectionMismatch):
            apply(order, command)
    elif (status, kind) in LEGAL:
        target, event_type = LEGAL[status, kind]
        after, events = apply(order, command)
        assert after.status is target
        assert after.version == order.version + 1
        assert after.updated_at_ms == command.at_ms
        assert [type(e) for e in events] == [event_type]
        assert events[0].version == after.version
        assert events[0].uid == order.uid
    elif (status, kind) in REPEATS:
        assert apply(order, command) == (order, [])
    else:
        with pytest.raises(IllegalTransition) as caught:
            apply(order, command)
        assert caught.value.status is status
        assert caught.value.code == "illegal_transition"
        assert caught.value.command == type(command).__name__


def test_open_order_starts_pending_with_fixed_terms() -> None:
    order, events = apply(None, open_order(amount_minor=12_345, fee_bp=150))
    assert order.status is S.PENDING
    assert order.version == 1
    assert order.fee_minor == 185  # 185.175 rounds to 185
    assert order.expires_at_ms == T0 + 900_000
    assert events == [
        ev.OrderOpened(
            uid=UID,
            version=1,
            at_ms=T0,
            partner_id=PARTNER,
            partner_order_id="inv-1001",
            direction=Direction.DEPOSIT,
            amount_minor=12_345,
            fee_minor=185,
            currency="RUB",
            expires_at_ms=T0 + 900_000,
        )
    ]


def test_repeated_open_is_a_no_op_even_if_the_tariff_changed() -> None:
    order = order_in(S.PROCESSING)
    assert apply(order, open_order(fee_bp=999, at_ms=T0 + 50)) == (order, [])


@pytest.mark.parametrize(
    "change",
    [
        {"amount_minor": 150_001},
        {"currency": "USD"},
        {"direction": Direction.WITHDRAWAL},
        {"ttl_s": 600},
        {"partner_order_id": "inv-1002"},
        {"partner_id": "other"},
    ],
)
def test_open_with_other_terms_conflicts(change: dict[str, Any]) -> None:
    with pytest.raises(OrderConflict):
        apply(order_in(S.PENDING), open_order(**change))


def test_assign_card_records_the_card() -> None:
    order = order_in(S.NEW)
    assert (order.card_id, order.card_masked) == ("card-1", CARD_MASKED)


@pytest.mark.parametrize(
    ("status", "repeat"),
    [
        (S.NEW, AssignCard(uid=UID, at_ms=T0 + 9, card_id="card-1", card_masked=CARD_MASKED)),
        (S.DECLINED, DeclineOrder(uid=UID, at_ms=T0 + 9, reason=DeclineReason.NO_REQUISITE)),
        (S.PROCESSING, ConfirmPayment(uid=UID, at_ms=T0 + 9, payer_card_masked=PAYER_CARD)),
        (S.APPROVED, ApproveOrder(uid=UID, at_ms=T0 + 9, operator="olga", decision_id="d-1")),
        (S.REJECTED, RejectOrder(uid=UID, at_ms=T0 + 9, operator="olga", decision_id="d-1")),
        (S.FAILED, FailOrder(uid=UID, at_ms=T0 + 9, operator="olga", decision_id="d-1")),
    ],
)
def test_a_command_that_already_took_effect_is_a_no_op(
    status: OrderStatus, repeat: Command
) -> None:
    order = order_in(status)
    assert is_duplicate(order, repeat)
    after, events = apply(order, repeat)
    assert after is order
    assert events == []


def test_another_decision_on_a_decided_order_is_refused() -> None:
    order = order_in(S.APPROVED)
    with pytest.raises(IllegalTransition) as caught:
        apply(order, RejectOrder(uid=UID, at_ms=NOW, operator="olga", decision_id="d-1"))
    assert caught.value.status is S.APPROVED


def test_is_duplicate_is_false_without_an_order_or_for_another_uid() -> None:
    order = order_in(S.EXPIRED)
    assert not is_duplicate(None, ExpireOrder(uid=UID, at_ms=NOW))
    assert not is_duplicate(order, ExpireOrder(uid="other", at_ms=NOW))


def test_decision_records_operator_and_reason() -> None:
    order = run(
        order_in(S.PROCESSING),
        FailOrder(uid=UID, at_ms=NOW, operator="olga", decision_id="d-7", reason="bank down"),
    )
    assert (order.decided_by, order.decision_id, order.decision_reason) == (
        "olga",
        "d-7",
        "bank down",
    )


def test_expiry_boundary() -> None:
    order = order_in(S.NEW)
    with pytest.raises(NotYetExpired):
        apply(order, ExpireOrder(uid=UID, at_ms=order.expires_at_ms - 1))
    expired, _ = apply(order, ExpireOrder(uid=UID, at_ms=order.expires_at_ms))
    assert expired.status is S.EXPIRED


def test_processing_never_expires() -> None:
    order = order_in(S.PROCESSING)
    with pytest.raises(IllegalTransition):
        apply(order, ExpireOrder(uid=UID, at_ms=order.expires_at_ms + 10**9))


def test_payer_confirmation_boundary() -> None:
    order = order_in(S.NEW)
    last_chance = ConfirmPayment(uid=UID, at_ms=order.expires_at_ms - 1)
    assert apply(order, last_chance)[0].status is S.PROCESSING
    with pytest.raises(DeadlinePassed):
        apply(order, ConfirmPayment(uid=UID, at_ms=order.expires_at_ms))


def test_deposit_confirmation_needs_no_card_but_a_withdrawal_does() -> None:
    deposit = run(order_in(S.NEW), ConfirmPayment(uid=UID, at_ms=NOW))
    assert deposit.payer_card_masked is None
    with pytest.raises(PayerCardRequired) as caught:
        apply(order_in(S.NEW, Direction.WITHDRAWAL), ConfirmPayment(uid=UID, at_ms=NOW))
    assert caught.value.code == "payer_card_required"


def test_withdrawal_reserve_holds_without_a_card() -> None:
    order, events = apply(order_in(S.PENDING, Direction.WITHDRAWAL), HoldFunds(uid=UID, at_ms=NOW))
    assert order.card_id is None
    assert events == [
        ev.OrderCreated(uid=UID, version=2, at_ms=NOW, card_id=None, card_masked=None)
    ]


def test_commands_need_an_existing_order() -> None:
    with pytest.raises(OrderNotFound):
        apply(None, CancelOrder(uid=UID, at_ms=NOW, partner_id=PARTNER))


def test_command_for_another_order_is_refused() -> None:
    with pytest.raises(OrderMismatch):
        apply(order_in(S.NEW), CancelOrder(uid="other", at_ms=NOW, partner_id=PARTNER))


def test_open_for_another_uid_is_a_mismatch_not_a_conflict() -> None:
    with pytest.raises(OrderMismatch):
        apply(order_in(S.NEW), open_order(uid="other"))


def test_only_the_owner_may_cancel() -> None:
    with pytest.raises(OrderMismatch):
        apply(order_in(S.NEW), CancelOrder(uid=UID, at_ms=NOW, partner_id="mallory"))
    with pytest.raises(OrderMismatch):  # even when the order is already cancelled
        apply(order_in(S.CANCELLED), CancelOrder(uid=UID, at_ms=NOW, partner_id="mallory"))


def test_base_command_is_not_an_order_command() -> None:
    with pytest.raises(TypeError):
        apply(order_in(S.NEW), Command(uid=UID, at_ms=NOW))
