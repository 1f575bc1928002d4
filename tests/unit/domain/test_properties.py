"""Random command streams over a few orders of one partner: the invariants always hold.

Each example opens 1-3 orders, then throws a random sequence of commands at them (legal or
not, repeated or not, early or late), the way an at-least-once stream could. A refused
command changes nothing; an accepted one must respect the table, the version counter, the
idempotency rule and double entry; the partner balance must match its postings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, given, settings
from hypothesis import strategies as st

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
    OpenOrder,
    RejectOrder,
)
from domain.errors import DomainError, InsufficientFunds
from domain.events import STATUS_AFTER, Event
from domain.ledger import (
    Balance,
    Posting,
    balance_after,
    is_balanced,
    partner_available,
    partner_held,
    postings_for,
)
from domain.lifecycle import apply, is_duplicate
from domain.orders import DeclineReason, Direction, Order, OrderStatus, can_transition
from tests.unit.domain.builders import CARD_MASKED, OTHER_PAYER_CARD, PARTNER, PAYER_CARD, T0

AVAILABLE, HELD = partner_available(PARTNER), partner_held(PARTNER)

order_specs = st.lists(
    st.tuples(
        st.sampled_from(list(Direction)),
        st.integers(1, 10_000_000),  # amount_minor
        st.integers(0, 10_000),  # fee_bp
        st.integers(60, 600),  # ttl_s
    ),
    min_size=1,
    max_size=3,
)

# "advance" is the natural next command for the order's status (see ``command``); it is
# weighted up so that streams reach the deep statuses often, not just pile up refusals.
KINDS = [
    *("assign", "hold", "decline", "confirm", "approve", "reject", "fail", "expire", "cancel"),
    "reopen",  # the partner retries its OpenOrder
    *["advance"] * 8,
]

steps = st.lists(
    st.tuples(
        st.integers(0, 2),  # which order (modulo how many there are)
        st.sampled_from(KINDS),
        # ms after T0: mostly inside the shortest TTL, sometimes past every deadline
        st.one_of(st.integers(0, 59_999), st.integers(0, 1_200_000)),
        st.sampled_from(["card-1", "card-2"]),
        st.sampled_from([None, PAYER_CARD, OTHER_PAYER_CARD]),
        st.sampled_from(["d-1", "d-2"]),
        st.sampled_from(list(DeclineReason)),
    ),
    max_size=30,
)


def opener(index: int, spec: tuple[Direction, int, int, int]) -> OpenOrder:
    direction, amount_minor, fee_bp, ttl_s = spec
    return OpenOrder(
        uid=f"order-{index}",
        at_ms=T0,
        partner_id=PARTNER,
        partner_order_id=f"inv-{index}",
        direction=direction,
        amount_minor=amount_minor,
        fee_bp=fee_bp,
        currency="RUB",
        ttl_s=ttl_s,
    )


def command(
    order: Order,
    kind: str,
    at_ms: int,
    card: str,
    payer: str | None,
    decision: str,
    reason: DeclineReason,
    spec: tuple[Direction, int, int, int],
    index: int,
) -> Command:
    uid = order.uid
    if kind == "advance":
        kind = {
            OrderStatus.PENDING: "assign" if order.direction is Direction.DEPOSIT else "hold",
            OrderStatus.NEW: "expire" if at_ms >= order.expires_at_ms else "confirm",
            OrderStatus.PROCESSING: ("approve", "reject", "fail")[at_ms % 3],
        }.get(order.status, "expire")
        payer = payer or PAYER_CARD
    decide = {"approve": ApproveOrder, "reject": RejectOrder, "fail": FailOrder}
    if kind in decide:
        return decide[kind](uid=uid, at_ms=at_ms, operator="op", decision_id=decision)
    if kind == "assign":
        return AssignCard(uid=uid, at_ms=at_ms, card_id=card, card_masked=CARD_MASKED)
    if kind == "hold":
        return HoldFunds(uid=uid, at_ms=at_ms)
    if kind == "decline":
        return DeclineOrder(uid=uid, at_ms=at_ms, reason=reason)
    if kind == "confirm":
        return ConfirmPayment(uid=uid, at_ms=at_ms, payer_card_masked=payer)
    if kind == "expire":
        return ExpireOrder(uid=uid, at_ms=at_ms)
    if kind == "cancel":
        return CancelOrder(uid=uid, at_ms=at_ms, partner_id=PARTNER)
    return opener(index, spec)


@dataclass
class World:
    """One partner, its orders, its balance and every posting made so far."""

    initial_minor: int
    balance: Balance
    orders: dict[str, Order] = field(default_factory=dict)
    postings: list[Posting] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    first_terminal: dict[str, OrderStatus] = field(default_factory=dict)


def check_applied(before: Order, after: Order, events: list[Event], cmd: Command) -> None:
    assert not before.is_terminal, "a terminal order changed"
    assert len(events) == 1
    assert after.version == before.version + 1 == events[0].version
    assert events[0].uid == before.uid
    assert can_transition(before.status, after.status)
    assert STATUS_AFTER[type(events[0])] is after.status
    # A redelivery of the same command right away is a no-op.
    assert is_duplicate(after, cmd)
    assert apply(after, cmd) == (after, [])


def simulate(
    specs: list[tuple[Direction, int, int, int]],
    script: list[tuple[int, str, int, str, str | None, str, DeclineReason]],
    initial_minor: int,
) -> World:
    world = World(initial_minor=initial_minor, balance=Balance(available_minor=initial_minor))
    for index, spec in enumerate(specs):
        order, events = apply(None, opener(index, spec))
        world.orders[order.uid] = order
        world.events += events
    for which, kind, offset, card, payer, decision, reason in script:
        index = which % len(specs)
        before = world.orders[f"order-{index}"]
        cmd = command(before, kind, T0 + offset, card, payer, decision, reason, specs[index], index)
        try:
            after, events = apply(before, cmd)
        except DomainError as refused:
            event(f"refused: {refused.code}")
            continue  # refused: nothing changed, nothing to check
        if not events:
            assert after is before
            continue
        check_applied(before, after, events, cmd)
        try:
            balance = balance_after(world.balance, after, events[0])
        except InsufficientFunds:
            # The ledger refused the hold; the real flow declines the order instead.
            event("hold refused: insufficient funds")
            assert isinstance(cmd, HoldFunds)
            decline = DeclineOrder(
                uid=before.uid, at_ms=cmd.at_ms, reason=DeclineReason.INSUFFICIENT_FUNDS
            )
            after, events = apply(before, decline)
            check_applied(before, after, events, decline)
            balance = balance_after(world.balance, after, events[0])
        postings = postings_for(after, events[0])
        assert is_balanced(postings)
        world.postings += postings
        world.events += events
        world.balance = balance
        world.orders[after.uid] = after
        event(f"reached: {after.status}")
        if after.is_terminal:
            world.first_terminal.setdefault(after.uid, after.status)
    return world


@settings(max_examples=300, deadline=None)
@given(order_specs, steps, st.integers(0, 30_000_000))
def test_random_command_streams_keep_every_invariant(
    specs: list[tuple[Direction, int, int, int]],
    script: list[tuple[int, str, int, str, str | None, str, DeclineReason]],
    initial_minor: int,
) -> None:
    world = simulate(specs, script, initial_minor)

    # Terminal statuses never change once reached.
    for uid, status in world.first_terminal.items():
        assert world.orders[uid].status is status
    # Versions count applied commands: one per event of that order.
    for uid, order in world.orders.items():
        assert order.version == sum(1 for e in world.events if e.uid == uid)
    # Double entry: all postings together sum to zero, as does each transaction.
    assert is_balanced(world.postings)
    # The balance is exactly what the partner's legs say, and never negative.
    balance = world.balance
    assert balance.available_minor >= 0
    assert balance.held_minor >= 0
    assert balance.available_minor == world.initial_minor + sum(
        p.amount_minor for p in world.postings if p.account == AVAILABLE
    )
    assert balance.held_minor == sum(p.amount_minor for p in world.postings if p.account == HELD)
    # Held money is exactly the open withdrawals' amount plus fee.
    assert balance.held_minor == sum(
        o.hold_minor
        for o in world.orders.values()
        if o.direction is Direction.WITHDRAWAL
        and o.status in {OrderStatus.NEW, OrderStatus.PROCESSING}
    )


@settings(max_examples=50, deadline=None)
@given(order_specs, steps, st.integers(0, 30_000_000))
def test_replaying_a_stream_gives_the_same_events(
    specs: list[tuple[Direction, int, int, int]],
    script: list[tuple[int, str, int, str, str | None, str, DeclineReason]],
    initial_minor: int,
) -> None:
    first = simulate(specs, script, initial_minor)
    second = simulate(specs, script, initial_minor)
    assert first.events == second.events
    assert first.orders == second.orders
    assert first.balance == second.balance
