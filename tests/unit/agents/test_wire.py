"""Translation between wire and core: orders, commands, events, ids and times."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

import domain
from domain.lifecycle import apply
from domain.orders import OrderStatus
from schemas import orders as w
from schemas.registry import decode
from schemas.translation import (
    EVENT_BY_STATUS,
    epoch_ms,
    event_matches,
    from_epoch_ms,
    order_from_dict,
    order_to_dict,
    snapshot,
    to_command,
    wire_event,
)
from stream_agents.wire import Out, message_id
from tests.unit.agents.builders import PAYER_CARD, T0, UID, assign, decide, open_order
from tests.unit.domain.builders import order_in


def test_epoch_ms_is_exact_both_ways() -> None:
    moment = datetime(2025, 11, 28, 3, 20, 0, 123_999, tzinfo=UTC)
    assert epoch_ms(moment) == 1_764_300_000_123
    assert epoch_ms(from_epoch_ms(T0)) == T0


def test_message_ids_are_deterministic_and_distinct() -> None:
    assert message_id("u", 1, "order.opened") == message_id("u", 1, "order.opened")
    assert message_id("u", 1, "order.opened") != message_id("u", 2, "order.opened")
    assert message_id("u", 1, "order.opened").version == 5


@pytest.mark.parametrize("status", list(OrderStatus))
def test_order_survives_a_json_table_round_trip(status: OrderStatus) -> None:
    order = order_in(status)
    stored = json.loads(json.dumps(order_to_dict(order)))
    assert order_from_dict(stored) == order


@pytest.mark.parametrize("status", list(OrderStatus))
def test_snapshot_carries_every_order_field(status: OrderStatus) -> None:
    order = order_in(status)
    snap = snapshot(order)
    assert snap.uid == uuid.UUID(order.uid)
    assert snap.model_dump(mode="json") == {**order_to_dict(order), "uid": order.uid, "desk": None}
    assert snapshot(order, "pool:p1").desk == "pool:p1"


def test_wire_commands_become_core_commands_at_the_envelope_time() -> None:
    opened = to_command(open_order(), T0)
    assert isinstance(opened, domain.OpenOrder)
    assert (opened.uid, opened.at_ms, opened.fee_bp) == (str(UID), T0, 200)
    assert isinstance(to_command(assign(), T0), domain.AssignCard)
    assert isinstance(to_command(w.MarkFundsHeld(uid=UID), T0), domain.HoldFunds)
    confirm = to_command(w.ConfirmPayment(uid=UID, payer_card_masked=PAYER_CARD), T0)
    assert isinstance(confirm, domain.ConfirmPayment)
    assert confirm.payer_card_masked == PAYER_CARD
    verdicts = {
        w.Verdict.APPROVE: domain.ApproveOrder,
        w.Verdict.REJECT: domain.RejectOrder,
        w.Verdict.FAIL: domain.FailOrder,
    }
    for verdict, command_type in verdicts.items():
        message = decide(verdict)
        command = to_command(message, T0)
        assert type(command) is command_type
        assert isinstance(command, domain.DecideOrder)
        assert command.decision_id == str(message.decision_id)
    cancel = to_command(w.CancelOrder(uid=UID, partner_id="acme"), T0)
    assert isinstance(cancel, domain.CancelOrder)
    assert isinstance(to_command(w.ExpireOrder(uid=UID), T0), domain.ExpireOrder)
    reason = domain.DeclineReason.NO_REQUISITE
    declined = to_command(w.DeclineOrder(uid=UID, reason=reason), T0)
    assert isinstance(declined, domain.DeclineOrder)
    assert declined.reason is reason


def test_every_domain_event_has_the_wire_event_of_its_status() -> None:
    order, events = apply(None, to_command(open_order(), T0))
    assert event_matches(order, events[0])
    event = wire_event(order, pool_id="pool-1", callback_url="https://x.example")
    assert isinstance(event, w.OrderOpened)
    assert event.pool_id == "pool-1"
    assert set(EVENT_BY_STATUS) == set(OrderStatus)
    confirmed = wire_event(order_in(OrderStatus.PROCESSING), payer_card_ciphertext="sealed")
    assert isinstance(confirmed, w.PaymentConfirmed)
    assert confirmed.payer_card_ciphertext == "sealed"


def test_an_output_encodes_to_identical_bytes_every_time() -> None:
    order = order_in(OrderStatus.NEW)
    event = wire_event(order)
    out = Out("order-events", event, message_id(order.uid, order.version, event.TYPE), T0)
    assert out.encode() == out.encode()
    env, decoded = decode(out.encode())
    assert (env.message_id, epoch_ms(env.occurred_at), env.key) == (out.message_id, T0, str(UID))
    assert decoded == event
    assert out.key == str(UID).encode()
