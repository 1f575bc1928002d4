"""An accepted dispute's late credit at the desk: once, only for a deposit never credited,
and as safe against a crash at any write as every other step."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from domain.ledger import PostingKind
from domain.orders import Direction
from schemas import disputes as wd
from schemas import ledger as wl
from schemas import orders as w
from stream_agents.table_keys import balance_key, order_key
from tests.unit.agents.builders import T0, decide
from tests.unit.agents.test_desk_step import (
    DESK,
    Batch,
    apply,
    deposit_life,
    ids,
    opening,
    run_batch,
)


def settle(order: w.OpenOrder, dispute_id: uuid.UUID | None = None) -> wd.SettleDispute:
    return wd.SettleDispute(
        dispute_id=dispute_id or uuid.uuid4(),
        uid=order.uid,
        partner_id=order.partner_id,
        currency=order.currency,
        amount_minor=order.amount_minor,
        fee_minor=order.amount_minor * order.fee_bp // 10_000,
        desk=DESK,
    )


def expired(order: w.OpenOrder) -> dict[str, Any]:
    """The table after ``order`` opened and expired without payment."""
    table: dict[str, Any] = {}
    table = apply(table, run_batch(table, [(order, T0)])[1])
    expire = w.ExpireOrder(uid=order.uid, desk=DESK)
    table = apply(table, run_batch(table, [(expire, T0 + 900_000)])[1])
    assert table[order_key(str(order.uid))]["status"] == "expired"
    return table


def available(table: dict[str, Any], partner: str = "acme") -> int:
    funds = table.get(balance_key(partner), {}).get("RUB")
    return 0 if funds is None else int(funds["available_minor"])


def postings(outputs: list[Any]) -> list[wl.LedgerPosted]:
    return [out.message for out in outputs if isinstance(out.message, wl.LedgerPosted)]


def test_an_accepted_dispute_credits_an_expired_deposit_once_naming_the_dispute() -> None:
    order = opening(amount_minor=150_000)
    table = expired(order)
    command = settle(order)
    outputs, writes = run_batch(table, [(command, T0 + 1_000_000)])
    table = apply(table, writes)
    [posted] = postings(outputs)
    assert posted.kind is PostingKind.DISPUTE_CREDIT
    assert posted.reference == f"dispute:{command.dispute_id}"
    assert available(table) == 150_000 - 3_000
    assert sum(leg.amount_minor for leg in posted.legs) == 0
    again, rewrites = run_batch(table, [(command, T0 + 1_000_000)])
    assert apply(table, rewrites) == table  # a redelivery moves nothing
    assert ids(again) == ids(outputs)  # and re-publishes the same posting, by id


def test_a_second_dispute_credit_for_the_same_order_moves_nothing() -> None:
    order = opening(amount_minor=150_000)
    table = expired(order)
    table = apply(table, run_batch(table, [(settle(order), T0 + 1_000_000)])[1])
    outputs, writes = run_batch(table, [(settle(order), T0 + 1_100_000)])
    assert available(apply(table, writes)) == 150_000 - 3_000
    assert all(p.reference == postings(outputs)[0].reference for p in postings(outputs))


def test_a_deposit_credited_already_is_never_credited_again_by_a_dispute() -> None:
    order = opening(amount_minor=150_000)
    table: dict[str, Any] = {}
    for batch in deposit_life(order):
        table = apply(table, run_batch(table, batch)[1])
    assert available(table) == 147_000
    outputs, writes = run_batch(table, [(settle(order), T0 + 5_000)])
    assert (postings(outputs), available(apply(table, writes))) == ([], 147_000)


def test_a_withdrawal_is_never_credited_by_a_dispute() -> None:
    funded = opening(amount_minor=500_000)
    table: dict[str, Any] = {}
    for batch in deposit_life(funded):
        table = apply(table, run_batch(table, batch)[1])
    withdrawal = opening(Direction.WITHDRAWAL, 100_000)
    table = apply(table, run_batch(table, [(withdrawal, T0 + 3_000)])[1])
    before = available(table)
    outputs, writes = run_batch(table, [(settle(withdrawal), T0 + 4_000)])
    assert (postings(outputs), available(apply(table, writes))) == ([], before)


@pytest.mark.parametrize("rejected", [False, True], ids=["expired", "rejected"])
def test_a_late_credit_redelivered_after_a_crash_at_any_write_ends_as_without_it(
    rejected: bool,
) -> None:
    order = opening(amount_minor=80_000)
    if rejected:
        table: dict[str, Any] = {}
        reject = decide(w.Verdict.REJECT).model_copy(update={"uid": order.uid})
        life = [*deposit_life(order)[:2], [(reject, T0 + 2_000)]]
        for batch in life:
            table = apply(table, run_batch(table, batch)[1])
        assert table[order_key(str(order.uid))]["status"] == "rejected"
    else:
        table = expired(order)
    batch: Batch = [(settle(order), T0 + 1_000_000), (opening(amount_minor=9_000), T0 + 1_000_001)]
    expected_outputs, writes = run_batch(table, batch)
    expected = apply(table, writes)
    for cut in range(len(writes)):
        survived = apply(table, writes[:cut])
        outputs, again = run_batch(survived, batch)
        assert apply(survived, again) == expected, f"crash after {cut} writes"
        assert Counter(ids(outputs)) == Counter(ids(expected_outputs)), f"cut {cut}"
