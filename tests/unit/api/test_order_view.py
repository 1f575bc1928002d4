"""The API's event-fed view and ``ask``: judged from the view, sent, followed to the outcome.

No broker: a fake bus records what would be sent and plays the order agent's events into the
view, as the order-events feed would.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any, cast

from domain.outcomes import Done, Refused
from ingest_api.bus import CommandBus
from ingest_api.order_view import OrderView
from ingest_api.outcomes import ask
from schemas import orders as w
from schemas.envelope import Message

UID = uuid.UUID("3f2b8c1e-8d4a-8c7e-9a1b-2c3d4e5f6a7b")
T0 = 1_764_300_000_000
S = w.OrderStatus


def snap(version: int, status: w.OrderStatus, **overrides: Any) -> w.OrderSnapshot:
    fields: dict[str, Any] = {
        "uid": UID,
        "version": version,
        "partner_id": "acme",
        "partner_order_id": "inv-1",
        "direction": w.Direction.DEPOSIT,
        "status": status,
        "amount_minor": 150_000,
        "fee_minor": 3_000,
        "currency": "RUB",
        "ttl_s": 900,
        "created_at_ms": T0,
        "expires_at_ms": 4_000_000_000_000,
        "updated_at_ms": T0 + version,
        "card_id": "card-1" if version > 1 else None,
        "card_masked": "220220******1234" if version > 1 else None,
    }
    return w.OrderSnapshot(**(fields | overrides))


class FakeBus:
    """Records sent commands; ``then`` is what the order agent publishes for each one."""

    def __init__(self, view: OrderView, *then: w.OrderSnapshot) -> None:
        self.view, self.then, self.sent = view, list(then), list[Message]()

    async def send(self, command: Message, occurred_at: datetime | None = None) -> uuid.UUID:
        self.sent.append(command)
        loop = asyncio.get_running_loop()
        for later in self.then:
            loop.call_soon(self.view.publish, later)
        return uuid.uuid4()


def bus(fake: FakeBus) -> CommandBus:
    return cast(CommandBus, fake)


def decide(operator: str, decision_id: uuid.UUID | None = None) -> w.DecideOrder:
    return w.DecideOrder(
        uid=UID,
        verdict=w.Verdict.APPROVE,
        operator=operator,
        decision_id=decision_id or uuid.uuid4(),
    )


def approved_by(operator: str, decision_id: uuid.UUID) -> w.OrderSnapshot:
    return snap(4, S.APPROVED, decided_by=operator, decision_id=str(decision_id))


# --- the view -----------------------------------------------------------------------------------


def test_the_view_keeps_the_newest_version_only() -> None:
    view = OrderView()
    view.publish(snap(2, S.NEW))
    view.publish(snap(1, S.PENDING))  # late or repeated
    view.publish(snap(2, S.NEW))
    latest = view.latest(UID)
    assert latest is not None
    assert latest.version == 2


def test_the_view_is_bounded_by_open_orders_and_recently_finished_ones() -> None:
    view = OrderView(finished_size=2)
    uids = [uuid.uuid4() for _ in range(4)]
    for uid in uids:
        view.publish(snap(3, S.PROCESSING, uid=uid))
    for uid in uids[:3]:
        view.publish(snap(4, S.APPROVED, uid=uid, decided_by="olga", decision_id="d"))
    assert view.latest(uids[0]) is None  # the oldest finished one went; PostgreSQL has it
    assert [view.latest(u) is not None for u in uids] == [False, True, True, True]
    assert len(view) == 3


# --- ask ----------------------------------------------------------------------------------------


async def test_an_illegal_command_is_refused_from_the_view_and_never_sent() -> None:
    view = OrderView()
    view.publish(snap(2, S.NEW))
    fake = FakeBus(view)
    outcome = await ask(view, bus(fake), decide("olga"), timeout_s=1)
    assert isinstance(outcome.judgement, Refused)
    assert outcome.judgement.code == "illegal_transition"
    assert outcome.judgement.message.endswith("the order is new")
    assert fake.sent == []


async def test_a_legal_command_is_sent_and_answered_by_its_event() -> None:
    view = OrderView()
    view.publish(snap(3, S.PROCESSING))
    decision = uuid.uuid4()
    fake = FakeBus(view, approved_by("olga", decision))
    outcome = await ask(view, bus(fake), decide("olga", decision), timeout_s=1)
    assert isinstance(outcome.judgement, Done)
    assert outcome.judgement.order.decided_by == "olga"
    assert len(fake.sent) == 1
    assert view.watch_count == 0


async def test_the_loser_of_a_race_is_refused_naming_who_decided() -> None:
    view = OrderView()
    view.publish(snap(3, S.PROCESSING))
    fake = FakeBus(view, approved_by("ivan", uuid.uuid4()))  # ivan's click got there first
    outcome = await ask(view, bus(fake), decide("olga"), timeout_s=1)
    assert isinstance(outcome.judgement, Refused)
    assert "decided by ivan" in outcome.judgement.message
    assert len(fake.sent) == 1


async def test_no_event_in_time_is_no_judgement() -> None:
    view = OrderView()
    view.publish(snap(3, S.PROCESSING))
    outcome = await ask(view, bus(FakeBus(view)), decide("olga"), timeout_s=0.05)
    assert outcome.judgement is None
    assert outcome.snapshot is not None
    assert outcome.snapshot.version == 3


async def test_an_order_not_in_the_view_is_looked_up() -> None:
    view = OrderView()
    looked: list[uuid.UUID] = []

    async def lookup(uid: uuid.UUID) -> w.OrderSnapshot | None:
        looked.append(uid)
        return snap(2, S.NEW)

    outcome = await ask(view, bus(FakeBus(view)), decide("olga"), timeout_s=1, lookup=lookup)
    assert looked == [UID]
    assert isinstance(outcome.judgement, Refused)
    missing = await ask(view, bus(FakeBus(view)), decide("olga"), timeout_s=1)
    assert isinstance(missing.judgement, Refused)
    assert missing.judgement.code == "order_not_found"


def open_order(amount_minor: int = 150_000) -> w.OpenOrder:
    return w.OpenOrder(
        uid=UID,
        partner_id="acme",
        partner_order_id="inv-1",
        direction=w.Direction.DEPOSIT,
        amount_minor=amount_minor,
        currency="RUB",
        ttl_s=900,
        fee_bp=200,
        pool_id="pool-1",
    )


async def test_create_waits_past_pending_for_the_created_event() -> None:
    view = OrderView()
    fake = FakeBus(view, snap(1, S.PENDING), snap(2, S.NEW))
    outcome = await ask(view, bus(fake), open_order(), timeout_s=1)
    assert isinstance(outcome.judgement, Done)
    assert outcome.judgement.order.status is S.NEW


async def test_a_repeated_create_with_another_body_is_a_conflict() -> None:
    view = OrderView()
    view.publish(snap(2, S.NEW))
    fake = FakeBus(view)
    outcome = await ask(view, bus(fake), open_order(amount_minor=150_001), timeout_s=1)
    assert isinstance(outcome.judgement, Refused)
    assert outcome.judgement.code == "order_conflict"
    assert fake.sent == []
    # Two creates racing, neither seen yet: the other body's events refuse this one.
    racing = OrderView()
    fake = FakeBus(racing, snap(1, S.PENDING), snap(2, S.NEW))
    outcome = await ask(racing, bus(fake), open_order(amount_minor=150_001), timeout_s=1)
    assert isinstance(outcome.judgement, Refused)
    assert outcome.judgement.code == "order_conflict"


async def test_a_repeated_create_of_a_settled_order_is_answered_from_the_view() -> None:
    view = OrderView()
    view.publish(snap(2, S.NEW))
    fake = FakeBus(view)
    outcome = await ask(view, bus(fake), open_order(), timeout_s=1)
    assert isinstance(outcome.judgement, Done)
    assert fake.sent == []


async def test_a_refusal_waits_for_the_view_to_catch_up_with_the_log() -> None:
    """A view one event behind (the payer's confirmation not fetched yet) must not refuse a
    decision the order now allows: the refusal waits for the feed to catch up first."""
    view = OrderView()
    view.publish(snap(2, S.NEW))
    decision = uuid.uuid4()
    fake = FakeBus(view, approved_by("olga", decision))
    caught_up: list[bool] = []

    async def catch_up() -> None:
        caught_up.append(True)
        view.publish(snap(3, S.PROCESSING))  # what the broker already held

    outcome = await ask(view, bus(fake), decide("olga", decision), timeout_s=1, catch_up=catch_up)
    assert caught_up == [True]
    assert isinstance(outcome.judgement, Done)
    assert len(fake.sent) == 1


async def test_a_finished_order_is_refused_without_catching_up() -> None:
    view = OrderView()
    view.publish(approved_by("ivan", uuid.uuid4()))

    async def catch_up() -> None:
        raise AssertionError("a terminal order cannot move on")

    outcome = await ask(view, bus(FakeBus(view)), decide("olga"), timeout_s=1, catch_up=catch_up)
    assert isinstance(outcome.judgement, Refused)
