"""The Kafka-side reconciliation checks find each broken state, and only broken ones."""

from __future__ import annotations

import uuid
from typing import Any

from stream_agents.reconcile.kafka import (
    RowOrder,
    balances_match_table,
    log_matches_table,
    one_order_per_request,
    orders_match_table,
    unreadable_records,
)
from stream_agents.reconcile.kafka_state import KafkaState, LoggedEvent, LoggedPosting

UID = "373b4458-457d-8ede-a22f-cbcc805f62d8"
OTHER = "0b7a1f4e-1111-8222-9333-444455556666"


def entry(uid: str = UID, version: int = 3, status: str = "processing", poid: str = "A-1"):
    return {
        "uid": uid,
        "version": version,
        "status": status,
        "partner_id": "shop",
        "partner_order_id": poid,
    }


def event(
    type_: str, version: int, uid: str = UID, poid: str = "A-1", message_id: uuid.UUID | None = None
) -> LoggedEvent:
    return LoggedEvent(message_id or uuid.uuid4(), type_, uid, version, "shop", poid)


def consistent() -> tuple[KafkaState, dict[str, RowOrder]]:
    state = KafkaState(
        orders={UID: entry()},
        balances={"shop": {"RUB": {"available_minor": 900, "held_minor": 100, "version": 2}}},
        events=[
            event("order.opened", 1),
            event("order.created", 2),
            event("order.payment_confirmed", 3),
        ],
        postings=[LoggedPosting(uuid.uuid4(), UID, "hold")],
    )
    return state, {UID: RowOrder("processing", 3, "shop", "A-1")}


def invariants(found: list[Any]) -> set[str]:
    return {mismatch.invariant for mismatch in found}


def test_a_consistent_state_has_no_mismatch():
    state, rows = consistent()
    balances = {("shop", "RUB"): (900, 100)}

    assert balances_match_table(state, balances) == []
    assert orders_match_table(state, rows) == []
    assert log_matches_table(state) == []
    assert one_order_per_request(state, rows) == []
    assert unreadable_records(state) == []


def test_balance_differs_from_the_database():
    state, _ = consistent()

    found = balances_match_table(state, {("shop", "RUB"): (1000, 0)})

    assert invariants(found) == {"1"}
    assert "shop RUB" in found[0].subject
    assert "(900, 100)" in found[0].detail


def test_balance_missing_on_either_side():
    state, _ = consistent()

    assert invariants(balances_match_table(state, {})) == {"1"}
    assert invariants(balances_match_table(KafkaState(), {("shop", "RUB"): (5, 0)})) == {"1"}
    # A zero balance on one side and none on the other is the same balance.
    assert balances_match_table(KafkaState(), {("shop", "RUB"): (0, 0)}) == []


def test_negative_available_in_the_agent():
    state, _ = consistent()
    state.balances["shop"]["RUB"]["available_minor"] = -1

    found = balances_match_table(state, {("shop", "RUB"): (-1, 100)})

    assert [m.detail for m in found] == ["agent's available is negative: -1"]


def test_order_acknowledged_by_the_agent_but_missing_in_the_database():
    state, _ = consistent()

    assert invariants(orders_match_table(state, {})) == {"6"}


def test_order_in_the_database_but_not_in_the_agent():
    _, rows = consistent()

    assert invariants(orders_match_table(KafkaState(), rows)) == {"6"}


def test_a_finished_order_forgotten_by_the_desk_is_consistent_an_unfinished_one_is_not():
    state, _ = consistent()
    state.orders.clear()  # the desk forgot the order (ADR 0008)
    state.events.append(event("order.approved", 4))
    finished = {UID: RowOrder("approved", 4, "shop", "A-1")}
    assert orders_match_table(state, finished) == []
    assert log_matches_table(state) == []

    state, rows = consistent()
    state.orders.clear()  # missing while still processing: lost, not forgotten
    assert invariants(orders_match_table(state, rows)) == {"6"}
    assert invariants(log_matches_table(state)) == {"6"}


def test_database_row_at_another_version_or_status():
    state, _ = consistent()
    behind = {UID: RowOrder("new", 2, "shop", "A-1")}
    other_status = {UID: RowOrder("approved", 3, "shop", "A-1")}

    assert invariants(orders_match_table(state, behind)) == {"2"}
    assert invariants(orders_match_table(state, other_status)) == {"2"}


def test_log_behind_or_ahead_of_the_table():
    state, _ = consistent()
    state.events.pop()
    assert invariants(log_matches_table(state)) == {"6"}

    state, _ = consistent()
    state.events.append(event("order.approved", 4))
    assert invariants(log_matches_table(state)) == {"6"}


def test_an_order_with_two_terminal_events():
    state, _ = consistent()
    state.orders[UID] = entry(version=5, status="rejected")
    state.events += [event("order.approved", 4), event("order.rejected", 5)]

    found = log_matches_table(state)

    assert invariants(found) == {"2"}
    assert "order.approved:4" in found[0].detail


def test_a_republished_terminal_event_is_not_a_second_one():
    state, _ = consistent()
    state.orders[UID] = entry(version=4, status="approved")
    same = uuid.uuid4()
    state.events += [event("order.approved", 4, message_id=same)] * 2

    assert log_matches_table(state) == []


def test_two_orders_from_one_partner_request():
    state, rows = consistent()
    state.orders[OTHER] = entry(uid=OTHER, version=1, status="pending")

    found = one_order_per_request(state, rows)

    assert invariants(found) == {"7"}
    assert OTHER in found[0].detail


def test_two_orders_from_one_request_seen_only_in_the_database():
    state, rows = consistent()
    rows[OTHER] = RowOrder("new", 2, "shop", "A-1")

    assert invariants(one_order_per_request(state, rows)) == {"7"}


def test_a_second_hold_under_another_id():
    state, rows = consistent()
    state.postings.append(LoggedPosting(uuid.uuid4(), UID, "hold"))

    found = one_order_per_request(state, rows)

    assert invariants(found) == {"7"}
    assert "hold posted 2 times" in found[0].detail


def test_a_redelivered_posting_is_not_a_second_one():
    state, rows = consistent()
    state.postings.append(state.postings[0])

    assert one_order_per_request(state, rows) == []


def test_unreadable_records_are_reported():
    state = KafkaState(unreadable={"order-events": 2})

    assert [str(m) for m in unreadable_records(state)] == [
        "[log] topic order-events: 2 record(s) could not be read"
    ]
