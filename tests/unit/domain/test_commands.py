"""Malformed commands and impossible orders are refused when built, with a stable code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from domain.commands import (
    ApproveOrder,
    AssignCard,
    ConfirmPayment,
    DeclineOrder,
    HoldFunds,
)
from domain.errors import DomainError
from domain.orders import DeclineReason, Direction, OrderStatus, can_transition
from tests.unit.domain.builders import CARD_MASKED, T0, UID, open_order, order_in

BAD_OPEN: list[tuple[dict[str, Any], str]] = [
    ({"uid": ""}, "invalid_command"),
    ({"uid": "u" * 65}, "invalid_command"),
    ({"at_ms": -1}, "invalid_command"),
    ({"at_ms": True}, "invalid_command"),
    ({"at_ms": 1.5}, "invalid_command"),
    ({"partner_id": "Acme"}, "invalid_command"),
    ({"partner_id": "acme:evil"}, "invalid_command"),
    ({"partner_id": ""}, "invalid_command"),
    ({"partner_order_id": ""}, "invalid_command"),
    ({"partner_order_id": "x" * 129}, "invalid_command"),
    ({"direction": "sideways"}, "invalid_command"),
    ({"amount_minor": 0}, "invalid_amount"),
    ({"amount_minor": 99.5}, "invalid_amount"),
    ({"fee_bp": 10_001}, "invalid_fee"),
    ({"currency": "rub"}, "invalid_currency"),
    ({"currency": "XAU"}, "unknown_currency"),
    ({"ttl_s": 59}, "invalid_command"),
    ({"ttl_s": 86_401}, "invalid_command"),
]


@pytest.mark.parametrize(("change", "code"), BAD_OPEN)
def test_bad_open_order_is_refused(change: dict[str, Any], code: str) -> None:
    with pytest.raises(DomainError) as caught:
        open_order(**change)
    assert caught.value.code == code


def test_ttl_bounds_are_inclusive() -> None:
    assert open_order(ttl_s=60).ttl_s == 60
    assert open_order(ttl_s=86_400).ttl_s == 86_400


BAD_COMMANDS: list[tuple[Callable[[], object], str]] = [
    (lambda: AssignCard(uid=UID, at_ms=T0, card_id="", card_masked=CARD_MASKED), "invalid_command"),
    (
        lambda: AssignCard(uid=UID, at_ms=T0, card_id="c", card_masked="2202201234561234"),
        "invalid_payer_card",
    ),
    (lambda: DeclineOrder(uid=UID, at_ms=T0, reason="bored"), "invalid_command"),  # type: ignore[arg-type]
    (
        lambda: ConfirmPayment(uid=UID, at_ms=T0, payer_card_masked="4111 1111"),
        "invalid_payer_card",
    ),
    (
        lambda: ConfirmPayment(uid=UID, at_ms=T0, payer_card_masked="411111******111"),
        "invalid_payer_card",
    ),
    (lambda: ApproveOrder(uid=UID, at_ms=T0, operator="", decision_id="d"), "invalid_command"),
    (
        lambda: ApproveOrder(uid=UID, at_ms=T0, operator="o" * 65, decision_id="d"),
        "invalid_command",
    ),
    (lambda: ApproveOrder(uid=UID, at_ms=T0, operator="olga", decision_id=""), "invalid_command"),
    (
        lambda: ApproveOrder(uid=UID, at_ms=T0, operator="olga", decision_id="d", reason="r" * 501),
        "invalid_command",
    ),
    (
        lambda: ApproveOrder(uid=UID, at_ms=T0, operator="olga", decision_id="d", reason=None),  # type: ignore[arg-type]
        "invalid_command",
    ),
    (lambda: HoldFunds(uid=None, at_ms=T0), "invalid_command"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("build", "code"), BAD_COMMANDS)
def test_bad_command_is_refused(build: Callable[[], object], code: str) -> None:
    with pytest.raises(DomainError) as caught:
        build()
    assert caught.value.code == code


def test_valid_commands_build() -> None:
    assert ConfirmPayment(uid=UID, at_ms=0, payer_card_masked="411111******1111").at_ms == 0
    assert DeclineOrder(uid=UID, at_ms=T0, reason=DeclineReason.INVALID).reason == "invalid"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"version": 0}, "invalid_command"),
        ({"fee_minor": 150_001}, "invalid_amount"),
        ({"fee_minor": -1}, "invalid_amount"),
        ({"fee_minor": True}, "invalid_amount"),
        ({"amount_minor": 0}, "invalid_amount"),
        ({"currency": "ZZZ"}, "unknown_currency"),
    ],
)
def test_order_guards_its_invariants(change: dict[str, Any], code: str) -> None:
    with pytest.raises(DomainError) as caught:
        replace(order_in(OrderStatus.PENDING), **change)
    assert caught.value.code == code


def test_order_amounts_for_the_ledger() -> None:
    order = order_in(OrderStatus.NEW, Direction.WITHDRAWAL)
    assert (order.amount_minor, order.fee_minor) == (150_000, 3_000)
    assert order.hold_minor == 153_000
    assert order.credit_minor == 147_000
    assert not order.is_terminal
    assert order_in(OrderStatus.EXPIRED).is_terminal


def test_can_transition() -> None:
    assert can_transition(OrderStatus.PENDING, OrderStatus.NEW)
    assert not can_transition(OrderStatus.PENDING, OrderStatus.PROCESSING)
    assert not can_transition(OrderStatus.APPROVED, OrderStatus.REJECTED)
