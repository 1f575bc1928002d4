"""One desk step: the order, its pool's cards and its partner's balance, in one go (ADR 0005).

The step is driven through a plain dict standing for the table, batch by batch as the agent
does: every command of a batch over one overlay, then the overlay's writes in flush order.
The crash tests cut those writes at every point, redeliver the whole batch on what survived,
and expect exactly the table and the messages of a run without a crash.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest

from domain.orders import Direction, OrderStatus
from schemas import ledger as wl
from schemas import orders as w
from schemas.envelope import Message
from stream_agents.desk.step import MAX_HANDOVERS, Desk, Overlay, latest_events_only
from stream_agents.table_keys import (
    balance_key,
    card_key,
    order_key,
    placement_key,
    turnover_key,
    write_rank,
)
from stream_agents.wire import Out
from tests.unit.agents.builders import T0, decide
from tests.unit.agents.test_desk_pool import config

DESK = "pool:pool-1"
CARDS = {"card-1": config("card-1"), "card-2": config("card-2")}


def opening(direction: Direction = Direction.DEPOSIT, amount_minor: int = 150_000) -> w.OpenOrder:
    return w.OpenOrder(
        uid=uuid.uuid4(),
        partner_id="acme",
        partner_order_id=f"inv-{uuid.uuid4().hex[:8]}",
        direction=direction,
        amount_minor=amount_minor,
        currency="RUB",
        ttl_s=900,
        fee_bp=200,
        pool_id="pool-1" if direction is Direction.DEPOSIT else None,
        desk=DESK,
    )


Batch = list[tuple[Message, int]]


def run_batch(table: dict[str, Any], batch: Batch) -> tuple[list[Out], list[tuple[str, Any]]]:
    """The batch as the agent runs it: the messages out, and the writes in flush order."""
    overlay, outputs = Overlay(table), []
    for message, at_ms in batch:
        desk = Desk(overlay.child(), CARDS, clock=lambda: T0 + 60_000)
        outputs += desk.run(message, at_ms)
        overlay.merge(desk.table)
    return outputs, [(key, json.loads(json.dumps(value))) for key, value in overlay.writes()]


def apply(table: dict[str, Any], writes: list[tuple[str, Any]]) -> dict[str, Any]:
    return {**table, **dict(writes)}


def ids(outputs: list[Out]) -> list[uuid.UUID]:
    return [out.message_id for out in outputs]


def events(outputs: list[Out]) -> list[uuid.UUID]:
    return [out.message_id for out in outputs if out.topic == "order-events"]


def deposit_life(order: w.OpenOrder) -> list[Batch]:
    return [
        [(order, T0)],
        [(w.ConfirmPayment(uid=order.uid, desk=DESK), T0 + 1_000)],
        [(decide(w.Verdict.APPROVE).model_copy(update={"uid": order.uid}), T0 + 2_000)],
    ]


# --- the overlay --------------------------------------------------------------------------


def test_an_overlay_reads_its_own_writes_and_flushes_each_key_once_in_rank_order() -> None:
    base = {"order/u": {"v": 0}, "card/p/c": {"v": 0}}
    overlay = Overlay(base)
    overlay["order/u"] = {"v": 1}
    overlay["card/p/c"] = {"v": 1}
    overlay["placement/u"] = {"v": 1}
    overlay["order/u"] = {"v": 2}
    assert overlay.get("order/u") == {"v": 2}
    assert base["order/u"] == {"v": 0}  # nothing reaches the table before the flush
    assert [key for key, _ in overlay.writes()] == ["placement/u", "card/p/c", "order/u"]
    assert overlay.writes()[-1] == ("order/u", {"v": 2})


def test_a_child_overlay_is_merged_or_dropped_whole() -> None:
    overlay = Overlay({})
    kept, dropped = overlay.child(), overlay.child()
    kept["op/a"] = 1
    dropped["op/b"] = 2
    overlay.merge(kept)
    assert ("op/a" in overlay, "op/b" in overlay) == (True, False)


def test_write_ranks_put_an_orders_own_facts_first_and_the_order_last() -> None:
    ranks = [write_rank(k) for k in ("op/u", "placement/u", "balance/p", "card/p/c", "order/u")]
    assert ranks == [0, 0, 1, 1, 2]


# --- one step, three parts ------------------------------------------------------------------


def test_an_opening_deposit_gets_its_card_in_one_step_and_publishes_only_the_news() -> None:
    order = opening()
    outputs, writes = run_batch({}, [(order, T0)])
    [created] = [out.message for out in outputs]
    assert isinstance(created, w.OrderCreated)
    assert (created.order.status, created.order.card_id) == (OrderStatus.NEW, "card-1")
    assert created.order.desk == DESK
    table = dict(writes)
    uid = str(order.uid)
    assert table[placement_key(uid)]["card_id"] == "card-1"
    assert uid in table[card_key("pool-1", "card-1")]["open"]
    assert table[order_key(uid)]["status"] == "new"


def test_a_deposit_life_credits_the_partner_and_frees_the_card_with_its_turnover() -> None:
    order, table = opening(), {}
    published: list[Out] = []
    for batch in deposit_life(order):
        outputs, writes = run_batch(table, batch)
        published += outputs
        table = apply(table, writes)
    kinds = [out.message.TYPE for out in published]
    assert kinds == [
        "order.created",
        "order.payment_confirmed",
        "order.approved",
        "ledger.posted",
        "card.turnover_windows",  # the card's hour, day and month windows, in one record
    ]
    [posted] = [out.message for out in published if isinstance(out.message, wl.LedgerPosted)]
    assert (posted.kind, posted.available_minor) == ("deposit_credit", 150_000 - 3_000)
    assert table[balance_key("acme")]["RUB"]["available_minor"] == 147_000
    slot = table[card_key("pool-1", "card-1")]
    assert slot["open"] == {}
    assert (slot["day_minor"], slot["day_count"]) == (150_000, 1)
    monitored = {b[0]: (b[3], b[4]) for b in table[turnover_key("card-1")]["buckets"]}
    assert monitored == {"hour": (150_000, 1), "day": (150_000, 1), "month": (150_000, 1)}


def test_a_withdrawal_holds_the_partners_funds_at_the_same_desk() -> None:
    deposit, table = opening(amount_minor=200_000), {}
    for batch in deposit_life(deposit):
        table = apply(table, run_batch(table, batch)[1])
    withdrawal = opening(Direction.WITHDRAWAL, amount_minor=100_000)
    outputs, writes = run_batch(table, [(withdrawal, T0 + 3_000)])
    assert [out.message.TYPE for out in outputs] == ["ledger.posted", "order.created"]
    balance = dict(writes)[balance_key("acme")]["RUB"]
    assert (balance["available_minor"], balance["held_minor"]) == (196_000 - 102_000, 102_000)

    too_much = opening(Direction.WITHDRAWAL, amount_minor=10_000_000)
    outputs, _ = run_batch(apply(table, writes), [(too_much, T0 + 4_000)])
    [declined] = [out.message for out in outputs]
    assert isinstance(declined, w.OrderDeclined)
    assert declined.order.decline_reason == "insufficient_funds"


def test_two_openings_of_one_amount_in_one_batch_take_two_cards() -> None:
    first, second = opening(amount_minor=5_000), opening(amount_minor=5_000)
    outputs, _ = run_batch({}, [(first, T0), (second, T0)])
    cards = {out.message.order.card_id for out in outputs}  # type: ignore[attr-defined]
    assert cards == {"card-1", "card-2"}  # the batch reads its own writes


def test_a_third_opening_of_one_amount_is_declined_when_both_cards_hold_it() -> None:
    batch = [(opening(amount_minor=5_000), T0) for _ in range(3)]
    outputs, _ = run_batch({}, batch)
    statuses = [out.message.order.status for out in outputs]  # type: ignore[attr-defined]
    assert statuses == [OrderStatus.NEW, OrderStatus.NEW, OrderStatus.DECLINED]


def test_superseded_events_of_one_step_are_dropped_and_repeats_kept_once() -> None:
    order = opening()
    outputs, writes = run_batch({}, [(order, T0)])
    repeated, _ = run_batch(apply({}, writes), [(order, T0)])
    assert ids(repeated) == ids(outputs)  # a repeat re-publishes the same message
    assert latest_events_only(outputs + outputs) == outputs


def test_parts_that_answer_each_other_forever_are_stopped() -> None:
    class Echo(Desk):
        def _hand_to(
            self, part: str, message: Message, at_ms: int, *, redelivered: bool
        ) -> list[Out]:
            return [Out(part, message, uuid.uuid4(), at_ms)]

    with pytest.raises(RuntimeError, match=f"more than {MAX_HANDOVERS}"):
        Echo(Overlay({}), CARDS).run(opening(), T0)


# --- a crash at any point of a batch's writes --------------------------------------------------


def crash_batches() -> list[tuple[str, dict[str, Any], Batch]]:
    """Batches with writes of every rank, each after a prefix of history."""
    deposit, withdrawal = opening(amount_minor=300_000), opening(Direction.WITHDRAWAL, 100_000)
    table: dict[str, Any] = {}
    life = deposit_life(deposit)
    table = apply(table, run_batch(table, life[0] + life[1])[1])
    other = opening(amount_minor=7_000)
    approve_and_more = life[2] + [(withdrawal, T0 + 2_500), (other, T0 + 2_600)]
    return [
        ("openings", {}, [(opening(amount_minor=a), T0) for a in (5_000, 5_000, 6_000)]),
        ("approval, withdrawal, opening", table, approve_and_more),
    ]


@pytest.mark.parametrize(("name", "before", "batch"), crash_batches(), ids=lambda v: str(v)[:30])
def test_a_batch_redelivered_after_a_crash_at_any_write_ends_as_without_the_crash(
    name: str, before: dict[str, Any], batch: Batch
) -> None:
    expected_outputs, writes = run_batch(before, batch)
    expected = apply(before, writes)
    assert {write_rank(key) for key, _ in writes} == {0, 1, 2}, name
    for cut in range(len(writes)):
        survived = apply(before, writes[:cut])  # a crash loses the rest, in flush order
        outputs, again = run_batch(survived, batch)  # the offsets were not committed
        assert apply(survived, again) == expected, f"{name}: crash after {cut} writes"
        # the same messages (their order across topics is free; per order it is kept)
        assert Counter(ids(outputs)) == Counter(ids(expected_outputs)), f"{name}: cut {cut}"
        assert events(outputs) == events(expected_outputs), f"{name}: cut {cut}"
