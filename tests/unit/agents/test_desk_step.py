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
from zoneinfo import ZoneInfo

import pytest

from domain.orders import Direction, OrderStatus
from schemas import ledger as wl
from schemas import orders as w
from schemas.envelope import Message
from stream_agents.desk.pool import Slot
from stream_agents.desk.step import (
    MAX_HANDOVERS,
    ORDER_RETENTION_MS,
    Desk,
    Overlay,
    latest_events_only,
)
from stream_agents.table_keys import (
    balance_key,
    card_key,
    horizon_key,
    operations_key,
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


def run_batch(
    table: dict[str, Any], batch: Batch, cards: dict[str, Any] = CARDS
) -> tuple[list[Out], list[tuple[str, Any]]]:
    """The batch as the agent runs it: the messages out, and the writes in flush order."""
    overlay, outputs = Overlay(table), []
    for message, at_ms in batch:
        desk = Desk(overlay.child(), cards, clock=lambda: T0 + 60_000)
        outputs += desk.run(message, at_ms)
        overlay.merge(desk.table)
    return outputs, [(key, json.loads(json.dumps(value))) for key, value in overlay.writes()]


def apply(table: dict[str, Any], writes: list[tuple[str, Any]]) -> dict[str, Any]:
    """The table after ``writes`` (``None``: the key is deleted)."""
    after = {**table, **dict(writes)}
    return {key: value for key, value in after.items() if value is not None}


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


# --- retention: a finished order leaves the table (ADR 0008) ----------------------------------

RETENTION = ORDER_RETENTION_MS


def forget(*orders: w.OpenOrder, at_ms: int) -> tuple[Message, int]:
    return w.ForgetOrders(desk=DESK, uids=[o.uid for o in orders]), at_ms


def settle(
    table: dict[str, Any], batches: list[Batch], cards: dict[str, Any] = CARDS
) -> tuple[dict[str, Any], list[Out]]:
    published: list[Out] = []
    for batch in batches:
        outputs, writes = run_batch(table, batch, cards)
        published += outputs
        table = apply(table, writes)
    return table, published


def own_keys(order: w.OpenOrder) -> set[str]:
    uid = str(order.uid)
    return {order_key(uid), placement_key(uid), operations_key(uid)}


def turnover_ids(table: dict[str, Any], card_id: str = "card-1") -> set[str]:
    return {uid for bucket in table[turnover_key(card_id)]["buckets"] for uid in bucket[6]}


def withdrawal_life(order: w.OpenOrder) -> list[Batch]:
    decision = decide(w.Verdict.APPROVE).model_copy(update={"uid": order.uid})
    card = w.ConfirmPayment(uid=order.uid, desk=DESK, payer_card_masked="411111******1111")
    return [[(order, T0 + 3_000)], [(card, T0 + 3_500)], [(decision, T0 + 4_000)]]


def test_a_finished_order_is_forgotten_after_the_retention_period_with_its_own_facts() -> None:
    order = opening()
    table, _ = settle({}, deposit_life(order))
    approved_at = T0 + 2_000
    assert own_keys(order) <= table.keys()
    assert str(order.uid) in turnover_ids(table)

    early, writes = run_batch(table, [forget(order, at_ms=approved_at + RETENTION - 1)])
    assert (early, [k for k, _ in writes]) == ([], [horizon_key(DESK)])  # not due: it stays

    outputs, writes = run_batch(table, [forget(order, at_ms=approved_at + RETENTION)])
    after = apply(table, writes)
    assert outputs == []
    assert not own_keys(order) & after.keys()
    assert str(order.uid) not in turnover_ids(after)  # the sums stay, the id goes
    monitored = {b[0]: (b[3], b[4]) for b in after[turnover_key("card-1")]["buckets"]}
    assert monitored == {"hour": (150_000, 1), "day": (150_000, 1), "month": (150_000, 1)}
    assert after[balance_key("acme")] == table[balance_key("acme")]
    assert after[card_key("pool-1", "card-1")] == table[card_key("pool-1", "card-1")]
    assert after[horizon_key(DESK)] == {"at_ms": approved_at}
    # deletions in the flush: horizon, the order, the shared entries, the order's own facts
    assert [write_rank(k, deleted=v is None) for k, v in writes] == [-2, -1, 1, 3, 3]


def test_an_order_that_is_not_finished_is_never_forgotten() -> None:
    order = opening()
    table, _ = settle({}, deposit_life(order)[:2])  # confirmed, not decided
    held = own_keys(order) & table.keys()  # no ledger operation yet
    assert held == {order_key(str(order.uid)), placement_key(str(order.uid))}
    _, writes = run_batch(table, [forget(order, at_ms=T0 + 10 * RETENTION)])
    assert held <= apply(table, writes).keys()


def test_every_command_of_a_forgotten_order_delivered_again_applies_nothing() -> None:
    """Kafka redelivers a batch, or a producer retry left a command twice in the log: the
    order is gone, so the core refuses every command but the opening (unknown order), and
    the opening is older than the desk's horizon. No money moves, nothing is published."""
    deposit, withdrawal = opening(amount_minor=300_000), opening(Direction.WITHDRAWAL, 100_000)
    lives = deposit_life(deposit) + withdrawal_life(withdrawal)
    table, published = settle({}, lives)
    assert "capture" in {getattr(o.message, "kind", None) for o in published}
    forgotten = apply(
        table, run_batch(table, [forget(deposit, withdrawal, at_ms=T0 + RETENTION + 5_000)])[1]
    )
    assert not (own_keys(deposit) | own_keys(withdrawal)) & forgotten.keys()
    for batch in lives:
        outputs, writes = run_batch(forgotten, batch)
        assert (outputs, writes) == ([], []), batch
    # an opening of a new order is served as ever
    fresh = opening(amount_minor=9_000)
    outputs, _ = run_batch(forgotten, [(fresh, T0 + RETENTION + 6_000)])
    assert [out.message.TYPE for out in outputs] == ["order.created"]


def forget_batch() -> tuple[dict[str, Any], Batch]:
    """Two approved deposits and an expired one on one card, forgotten in one batch with a
    repeated opening of one of them and a new order."""
    first, second, expired = (opening(amount_minor=a) for a in (100_000, 110_000, 120_000))
    batches = deposit_life(first) + deposit_life(second) + [[(expired, T0)]]
    batches.append([(w.ExpireOrder(uid=expired.uid, desk=DESK), T0 + 900_000)])
    table, _ = settle({}, batches)
    at = T0 + 900_000 + RETENTION
    batch = [
        forget(first, second, expired, at_ms=at),
        (first, T0),
        (opening(amount_minor=9_000), at),
    ]
    return table, batch


def test_a_forget_redelivered_after_a_crash_at_any_write_ends_as_without_the_crash() -> None:
    before, batch = forget_batch()
    expected_outputs, writes = run_batch(before, batch)
    expected = apply(before, writes)
    assert {write_rank(k, deleted=v is None) for k, v in writes} == {-2, -1, 0, 1, 2, 3}
    for cut in range(len(writes)):
        survived = apply(before, writes[:cut])
        outputs, again = run_batch(survived, batch)
        assert apply(survived, again) == expected, f"crash after {cut} writes"
        assert ids(outputs) == ids(expected_outputs), f"cut {cut}"


# --- turnover: the pool's limits and the monitor count a late approval alike -------------------


def test_a_late_approval_counts_in_its_own_day_and_month_for_the_pools_limits_and_the_monitor() -> (
    None
):
    """An approval decided at 23:59:59 reaches the desk after today's first approval on the
    same card: both the pool's limit check and the card monitor count it in yesterday's day
    (the pool, whose limits are today's, no longer keeps that day) and in this month."""
    today, late = opening(amount_minor=150_000), opening(amount_minor=70_000)
    midnight = T0 - (3 * 3_600_000 + 20 * 60_000)  # 2025-11-28T00:00Z
    late_life = [
        [(late, midnight - 40 * 60_000)],
        [(w.ConfirmPayment(uid=late.uid, desk=DESK), midnight - 30 * 60_000)],
    ]
    one_card = {"card-1": CARDS["card-1"]}
    table, _ = settle({}, late_life + deposit_life(today), one_card)
    decision = decide(w.Verdict.APPROVE).model_copy(update={"uid": late.uid})
    table, _ = settle(table, [[(decision, midnight - 1_000)]], one_card)

    slot = Slot.from_json(table[card_key("pool-1", "card-1")])
    load = slot.load(T0 + 3_000, ZoneInfo("UTC"))
    buckets = {(b[0], b[1]): (b[3], b[4]) for b in table[turnover_key("card-1")]["buckets"]}
    day_ms, month_start = 24 * 3_600_000, T0 - (27 * 24 + 3) * 3_600_000 - 20 * 60_000
    monitor_today = buckets[("day", midnight)]
    monitor_month = buckets[("month", month_start)]
    assert (load.day_turnover_minor, load.day_count) == monitor_today == (150_000, 1)
    assert (load.month_turnover_minor, load.month_count) == monitor_month == (220_000, 2)
    assert buckets[("day", midnight - day_ms)] == (70_000, 1)  # the late one's own day
