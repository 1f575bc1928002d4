"""Judging a command against the newest version of an order, as the API does from its view."""

from __future__ import annotations

from domain.commands import (
    ApproveOrder,
    CancelOrder,
    ConfirmPayment,
    RejectOrder,
)
from domain.errors import DeadlinePassed, IllegalTransition, OrderConflict, OrderNotFound
from domain.orders import OrderStatus
from domain.outcomes import AWAITING, Done, Refused, explain, judge
from tests.unit.domain.builders import PARTNER, PAYER_CARD, T0, UID, open_order, order_in, run

S = OrderStatus


def approve(decision_id: str = "d-1", operator: str = "olga") -> ApproveOrder:
    return ApproveOrder(uid=UID, at_ms=T0 + 3_000, operator=operator, decision_id=decision_id)


def confirm(at_ms: int = T0 + 2_000) -> ConfirmPayment:
    return ConfirmPayment(uid=UID, at_ms=at_ms, payer_card_masked=PAYER_CARD)


# --- before sending -------------------------------------------------------------------------


def test_a_legal_command_awaits_the_next_version() -> None:
    assert judge(order_in(S.PROCESSING), approve()) is AWAITING
    assert judge(order_in(S.NEW), confirm()) is AWAITING


def test_a_new_order_awaits_and_an_unknown_one_is_refused() -> None:
    assert judge(None, open_order()) is AWAITING
    verdict = judge(None, approve())
    assert isinstance(verdict, Refused)
    assert isinstance(verdict.error, OrderNotFound)
    assert verdict.code == "order_not_found"


def test_an_illegal_transition_is_refused_at_once_naming_the_state() -> None:
    verdict = judge(order_in(S.NEW), approve())
    assert isinstance(verdict, Refused)
    assert verdict.code == "illegal_transition"
    assert verdict.message.endswith("the order is new")


def test_a_late_confirmation_is_refused_by_the_deadline() -> None:
    order = order_in(S.NEW)
    verdict = judge(order, confirm(at_ms=order.expires_at_ms))
    assert isinstance(verdict, Refused)
    assert isinstance(verdict.error, DeadlinePassed)


def test_another_partners_cancel_is_refused() -> None:
    verdict = judge(order_in(S.NEW), CancelOrder(uid=UID, at_ms=T0 + 2_000, partner_id="rival"))
    assert isinstance(verdict, Refused)
    assert verdict.code == "order_mismatch"


# --- after the next version -------------------------------------------------------------------


def test_the_version_that_applied_the_command_is_done() -> None:
    processing = order_in(S.PROCESSING)
    approved = run(processing, approve())
    assert judge(approved, approve()) == Done(approved)


def test_another_operators_decision_refuses_this_one_naming_who_decided() -> None:
    approved_by_ivan = run(order_in(S.PROCESSING), approve("d-ivan", "ivan"))
    verdict = judge(approved_by_ivan, approve("d-olga", "olga"))
    assert isinstance(verdict, Refused)
    assert isinstance(verdict.error, IllegalTransition)
    assert "decided by ivan at " in verdict.message
    rejected = judge(
        approved_by_ivan, RejectOrder(uid=UID, at_ms=T0, operator="o", decision_id="x")
    )
    assert isinstance(rejected, Refused)
    assert "the order is approved, decided by ivan" in rejected.message


def test_a_cancel_overtaken_by_the_payer_is_refused() -> None:
    verdict = judge(order_in(S.PROCESSING), CancelOrder(uid=UID, at_ms=T0, partner_id=PARTNER))
    assert isinstance(verdict, Refused)
    assert verdict.message.endswith("the order is processing")


# --- opening ------------------------------------------------------------------------------------


def test_an_opening_is_done_once_the_order_left_pending() -> None:
    assert judge(order_in(S.PENDING), open_order()) is AWAITING
    for status in (S.NEW, S.DECLINED, S.APPROVED):
        order = order_in(status)
        assert judge(order, open_order()) == Done(order)


def test_an_opening_with_other_terms_is_a_conflict_even_while_pending() -> None:
    for status in (S.PENDING, S.NEW):
        verdict = judge(order_in(status), open_order(amount_minor=150_001))
        assert isinstance(verdict, Refused)
        assert isinstance(verdict.error, OrderConflict)
        assert verdict.code == "order_conflict"


def test_a_repeated_opening_under_a_new_tariff_is_the_same_order() -> None:
    order = order_in(S.NEW)
    assert judge(order, open_order(fee_bp=999)) == Done(order)


def test_explain_without_an_order_is_the_errors_own_message() -> None:
    exc = OrderNotFound("order x does not exist")
    assert explain(None, exc) == "order x does not exist"
