"""Bank notifications at the desk (ADR 0010): a credit meets the deposit it pays, in the step
that owns the card's open orders; a redelivery approves nothing twice, a crash at any write
ends as without it; a silent device takes its card out of rotation."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.orders import OrderStatus
from schemas import ledger as wl
from schemas import notifications as wn
from schemas import orders as w
from stream_agents.desk.agent import notice_forgets
from stream_agents.desk.notices import Decision, decide
from stream_agents.desk.outputs import OrderEntry
from stream_agents.table_keys import balance_key, card_key, notice_key, order_key, write_rank
from tests.unit.agents.builders import T0
from tests.unit.agents.test_desk_step import (
    DESK,
    Batch,
    apply,
    events,
    ids,
    opening,
    run_batch,
)

GRACE_MS = 120_000
TTL_MS = 900_000


def notification(
    amount_minor: int = 150_000,
    *,
    card_id: str = "card-1",
    received_at_ms: int = T0 + 30_000,
    policy: wn.MatchPolicy = wn.MatchPolicy.AUTO,
    notification_id: uuid.UUID | None = None,
) -> wn.MatchNotification:
    return wn.MatchNotification(
        notification_id=notification_id or uuid.uuid4(),
        pool_id="pool-1",
        card_id=card_id,
        device_id="dev-1",
        amount_minor=amount_minor,
        currency="RUB",
        received_at_ms=received_at_ms,
        policy=policy,
        grace_ms=GRACE_MS,
    )


def opened(amount_minor: int = 150_000) -> tuple[w.OpenOrder, dict[str, Any]]:
    order = opening(amount_minor=amount_minor)
    return order, apply({}, run_batch({}, [(order, T0)])[1])


def confirmed(order: w.OpenOrder, table: dict[str, Any]) -> dict[str, Any]:
    confirm = w.ConfirmPayment(uid=order.uid, desk=DESK)
    return apply(table, run_batch(table, [(confirm, T0 + 10_000)])[1])


def status(table: dict[str, Any], order: w.OpenOrder) -> str:
    return str(table[order_key(str(order.uid))]["status"])


def settled(outputs: list[Any]) -> wn.NotificationSettled:
    [one] = [o.message for o in outputs if isinstance(o.message, wn.NotificationSettled)]
    return one


# --- matching -----------------------------------------------------------------------------------


def test_auto_a_credit_approves_the_new_deposit_it_pays_with_the_device_as_decider() -> None:
    order, table = opened()
    notice = notification()
    outputs, writes = run_batch(table, [(notice, T0 + 40_000)])
    table = apply(table, writes)
    kinds = [out.message.TYPE for out in outputs]
    assert kinds == [
        "notification.settled",
        "order.approved",
        "ledger.posted",
        "card.turnover_windows",
    ]
    [approved] = [o.message for o in outputs if isinstance(o.message, w.OrderApproved)]
    assert approved.order.decided_by == "device:dev-1"
    assert approved.order.decision_id == str(notice.notification_id)
    assert status(table, order) == OrderStatus.APPROVED
    assert table[balance_key("acme")]["RUB"]["available_minor"] == 150_000 - 3_000
    assert table[card_key("pool-1", "card-1")]["open"] == {}
    result = settled(outputs)
    assert (result.outcome, result.uid, result.reason) == ("approved", order.uid, None)


def test_auto_a_credit_approves_a_deposit_the_payer_confirmed_already() -> None:
    order, table = opened()
    table = confirmed(order, table)
    outputs, writes = run_batch(table, [(notification(), T0 + 40_000)])
    assert status(apply(table, writes), order) == OrderStatus.APPROVED
    [posted] = [o.message for o in outputs if isinstance(o.message, wl.LedgerPosted)]
    assert posted.kind == "deposit_credit"


def test_suggest_the_order_enters_the_operator_queue_and_nothing_is_approved() -> None:
    order, table = opened()
    outputs, writes = run_batch(table, [(notification(policy=wn.MatchPolicy.SUGGEST), T0 + 1)])
    table = apply(table, writes)
    assert status(table, order) == OrderStatus.PROCESSING
    assert [o.message.TYPE for o in outputs] == ["notification.settled", "order.payment_confirmed"]
    assert (settled(outputs).outcome, settled(outputs).uid) == ("suggested", order.uid)
    assert balance_key("acme") not in table


@pytest.mark.parametrize(
    ("notice", "reason"),
    [
        (notification(150_001), "no_open_order"),  # not exactly the amount
        (notification(card_id="card-2"), "no_open_order"),  # another card
        (notification(received_at_ms=T0 - 1), "outside_window"),  # before the order
        (notification(received_at_ms=T0 + TTL_MS), "outside_window"),  # new, paid too late
    ],
    ids=["amount", "card", "before", "after-deadline"],
)
def test_a_credit_that_pays_no_open_deposit_is_unmatched_with_the_reason(
    notice: wn.MatchNotification, reason: str
) -> None:
    order, table = opened()
    outputs, writes = run_batch(table, [(notice, T0 + 40_000)])
    table = apply(table, writes)
    assert status(table, order) == OrderStatus.NEW
    assert [o.message.TYPE for o in outputs] == ["notification.settled"]
    assert (settled(outputs).outcome, settled(outputs).reason) == ("unmatched", reason)


def test_a_confirmed_deposit_matches_until_its_expiry_plus_the_grace_period() -> None:
    order, table = opened()
    table = confirmed(order, table)
    late = notification(received_at_ms=T0 + TTL_MS + GRACE_MS + 1)
    outputs, _ = run_batch(table, [(late, T0 + TTL_MS + GRACE_MS + 5_000)])
    assert settled(outputs).reason == "outside_window"
    in_grace = notification(received_at_ms=T0 + TTL_MS + GRACE_MS)
    outputs, writes = run_batch(table, [(in_grace, T0 + TTL_MS + GRACE_MS + 5_000)])
    assert status(apply(table, writes), order) == OrderStatus.APPROVED


def test_a_credit_after_the_order_expired_is_unmatched() -> None:
    order, table = opened()
    expire = w.ExpireOrder(uid=order.uid, desk=DESK)
    table = apply(table, run_batch(table, [(expire, T0 + TTL_MS)])[1])
    outputs, _ = run_batch(table, [(notification(received_at_ms=T0 + 60_000), T0 + TTL_MS + 1)])
    assert (settled(outputs).outcome, settled(outputs).reason) == ("unmatched", "no_open_order")


def test_more_than_one_candidate_is_ambiguous() -> None:
    first, table = opened()
    second = opening()
    entry = OrderEntry.from_json(table[order_key(str(first.uid))])
    twin = OrderEntry.from_json({**entry.to_json(), "uid": str(second.uid)})
    slot = {"open": {str(first.uid): [150_000, T0], str(second.uid): [150_000, T0]}}
    found = {str(first.uid): entry, str(second.uid): twin}
    assert decide(notification(), slot, found.get) == Decision(
        wn.Outcome.UNMATCHED, reason=wn.Unmatched.AMBIGUOUS
    )


# --- at least once ----------------------------------------------------------------------------


def test_a_redelivered_notification_approves_nothing_twice() -> None:
    _, table = opened()
    notice = notification()
    first, writes = run_batch(table, [(notice, T0 + 40_000)])
    table = apply(table, writes)
    again, rewrites = run_batch(table, [(notice, T0 + 40_000)])
    assert ids(again) == ids(first)  # the same messages, dropped downstream by id
    assert apply(table, rewrites) == table  # nothing changes
    # the same credit sent again under another id finds no open order
    other, _ = run_batch(table, [(notification(), T0 + 50_000)])
    assert settled(other).reason == "no_open_order"
    assert table[balance_key("acme")]["RUB"]["available_minor"] == 147_000


def test_a_notification_decides_once_even_if_the_state_changed_since() -> None:
    order, table = opened()
    notice = notification(policy=wn.MatchPolicy.SUGGEST)
    table = apply(table, run_batch(table, [(notice, T0 + 40_000)])[1])
    approve = w.DecideOrder(
        uid=order.uid,
        desk=DESK,
        verdict=w.Verdict.REJECT,
        operator="olga",
        decision_id=uuid.uuid4(),
    )
    table = apply(table, run_batch(table, [(approve, T0 + 50_000)])[1])
    outputs, writes = run_batch(table, [(notice, T0 + 40_000)])
    assert settled(outputs).outcome == "suggested"  # the decision kept, not a new one
    assert apply(table, writes) == table


def crash_batches() -> list[tuple[str, dict[str, Any], Batch]]:
    _, table = opened()
    other, more = opening(amount_minor=7_000), opening(amount_minor=8_000)
    with_other = apply(table, run_batch(table, [(other, T0)])[1])
    return [
        ("auto match", table, [(notification(), T0 + 40_000)]),
        (
            "match among others",
            with_other,
            [
                (more, T0 + 30_000),
                (notification(), T0 + 40_000),
                (notification(7_000, policy=wn.MatchPolicy.SUGGEST), T0 + 41_000),
                (notification(9_999), T0 + 42_000),
            ],
        ),
    ]


@pytest.mark.parametrize(("name", "before", "batch"), crash_batches(), ids=lambda v: str(v)[:20])
def test_a_crash_at_any_write_of_a_matching_batch_ends_as_without_the_crash(
    name: str, before: dict[str, Any], batch: Batch
) -> None:
    expected_outputs, writes = run_batch(before, batch)
    expected = apply(before, writes)
    assert {write_rank(key) for key, _ in writes} == {0, 1, 2}, name
    assert any(key.startswith("notice/") for key, _ in writes)
    for cut in range(len(writes)):
        survived = apply(before, writes[:cut])
        outputs, again = run_batch(survived, batch)
        assert apply(survived, again) == expected, f"{name}: crash after {cut} writes"
        assert Counter(ids(outputs)) == Counter(ids(expected_outputs)), f"{name}: cut {cut}"
        assert events(outputs) == events(expected_outputs), f"{name}: cut {cut}"
    postings = [o for o in expected_outputs if isinstance(o.message, wl.LedgerPosted)]
    assert len(postings) == 1  # one approval, one credit


def test_the_notice_is_flushed_before_what_it_sets_off() -> None:
    _, table = opened()
    notice = notification()
    _, writes = run_batch(table, [(notice, T0 + 40_000)])
    keys = [key for key, _ in writes]
    assert keys.index(notice_key(str(notice.notification_id))) < keys.index(balance_key("acme"))


# --- device health ----------------------------------------------------------------------------


def health(silent: bool, at_ms: int, card_id: str = "card-1") -> wn.DeviceHealth:
    return wn.DeviceHealth(
        pool_id="pool-1", card_id=card_id, device_id="dev-1", silent=silent, at_ms=at_ms
    )


def card_of(outputs: list[Any]) -> str | None:
    [created] = [o.message for o in outputs if o.topic == "order-events"]
    return created.order.card_id  # type: ignore[no-any-return]


def test_a_card_whose_device_is_silent_leaves_rotation_until_heard_again() -> None:
    table = apply({}, run_batch({}, [(health(True, T0), T0)])[1])
    outputs, _ = run_batch(table, [(opening(), T0 + 1)])
    assert card_of(outputs) == "card-2"
    # a report older than the one kept changes nothing
    assert run_batch(table, [(health(False, T0 - 1), T0 + 2)])[1] == []
    table = apply(table, run_batch(table, [(health(False, T0 + 5), T0 + 5)])[1])
    outputs, _ = run_batch(table, [(opening(), T0 + 6)])
    assert card_of(outputs) == "card-1"


def test_with_every_device_silent_a_deposit_is_declined_for_want_of_a_card() -> None:
    table = apply({}, run_batch({}, [(health(True, T0), T0), (health(True, T0, "card-2"), T0)])[1])
    outputs, _ = run_batch(table, [(opening(), T0 + 1)])
    [declined] = [o.message for o in outputs]
    assert isinstance(declined, w.OrderDeclined)
    assert declined.order.decline_reason == "no_requisite"


# --- the match rule, for any card ---------------------------------------------------------------


@functools.cache
def _opened_entry() -> dict[str, Any]:
    _, table = opened()
    return next(v for k, v in table.items() if k.startswith("order/"))


def _entry(uid: str, amount_minor: int, status: OrderStatus) -> OrderEntry:
    """An open deposit on card-1 created at T0 (the opened one's entry, renamed)."""
    changes = {"uid": uid, "amount_minor": amount_minor, "fee_minor": 0, "status": status}
    return OrderEntry.from_json({**_opened_entry(), **changes})


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.integers(100, 10_000), min_size=0, max_size=6, unique=True),
    pick=st.integers(0, 7),
    other=st.integers(100, 10_000),
    statuses=st.lists(st.sampled_from([OrderStatus.NEW, OrderStatus.PROCESSING]), min_size=6),
    offset_ms=st.integers(-60_000, TTL_MS + 2 * GRACE_MS),
)
def test_a_credit_matches_exactly_the_open_order_of_its_amount_within_its_window(
    amounts: list[int], pick: int, other: int, statuses: list[OrderStatus], offset_ms: int
) -> None:
    credit = amounts[pick] if pick < len(amounts) else other  # mostly an amount on the card
    found = {f"u{i}": _entry(f"u{i}", amount, statuses[i]) for i, amount in enumerate(amounts)}
    slot = {"open": {uid: [e.order.amount_minor, T0] for uid, e in found.items()}}
    notice = notification(credit, received_at_ms=T0 + offset_ms)
    decision = decide(notice, slot, found.get)
    paying = [e for e in found.values() if e.order.amount_minor == credit]
    if not paying:
        assert decision == Decision(wn.Outcome.UNMATCHED, reason=wn.Unmatched.NO_OPEN_ORDER)
        return
    [order] = paying  # the unique-amount rule: at most one per card
    end = T0 + TTL_MS if order.order.status is OrderStatus.NEW else T0 + TTL_MS + GRACE_MS + 1
    if T0 <= T0 + offset_ms < end:
        assert decision == Decision(wn.Outcome.APPROVED, order.order.uid)
    else:
        assert decision == Decision(wn.Outcome.UNMATCHED, reason=wn.Unmatched.OUTSIDE_WINDOW)


# --- retention (ADR 0008) -------------------------------------------------------------------------

RETENTION_MS = 48 * 3600 * 1000


def test_a_decided_notice_is_forgotten_only_once_the_retention_has_passed() -> None:
    _, table = opened(amount_minor=71_000)
    notice = notification(amount_minor=99_900)  # pays nothing: unmatched, but kept
    table = apply(table, run_batch(table, [(notice, T0 + 40_000)])[1])
    key = notice_key(str(notice.notification_id))
    assert table[key]["pool_id"] == "pool-1"  # the timer's forget is addressed by it
    forget = wn.ForgetNotices(pool_id="pool-1", notification_ids=[notice.notification_id])
    early = apply(table, run_batch(table, [(forget, T0 + 40_000 + RETENTION_MS - 1)])[1])
    assert key in early  # not due yet: nothing is removed
    late = apply(table, run_batch(table, [(forget, T0 + 40_000 + RETENTION_MS)])[1])
    assert key not in late
    assert {k for k in late} == {k for k in table} - {key}  # nothing else goes with it


def test_the_retention_timer_forgets_due_notices_by_pool() -> None:
    seen = {"a" * 32: (T0, "pool-1"), "b" * 32: (T0 + 5, "pool-2"), "c" * 32: (T0 + 9, "pool-1")}
    outputs = notice_forgets(seen, due_by_ms=T0 + 5)
    forgets = sorted((o.message.pool_id, len(o.message.notification_ids)) for o in outputs)
    assert forgets == [("pool-1", 1), ("pool-2", 1)]
    assert list(seen) == ["c" * 32]  # the young one stays for a later sweep
    assert all(o.key == f"pool:{o.message.pool_id}".encode() for o in outputs)
