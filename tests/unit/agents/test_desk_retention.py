"""The desk's retention index and the forgets its timer sends (ADR 0008)."""

from __future__ import annotations

import uuid

from domain.orders import OrderStatus
from schemas import orders as w
from stream_agents.desk.agent import Retirements, forgets
from stream_agents.desk.outputs import OrderEntry
from tests.unit.agents.builders import T0, OrderDriver, assign, open_order

HOUR = 3_600_000


def entry(status: OrderStatus) -> OrderEntry:
    driver = OrderDriver()
    driver.send(open_order(desk="pool:pool-1"))
    driver.send(assign())
    if status is OrderStatus.EXPIRED:
        driver.send(w.ExpireOrder(uid=open_order().uid), at_ms=T0 + 900_000)
    found = driver.entry
    assert found is not None
    assert found.order.status is status
    return found


def test_a_finished_order_is_due_once_its_retention_has_passed_and_an_open_one_never() -> None:
    retirements = Retirements(48 * HOUR)
    finished, open_ = entry(OrderStatus.EXPIRED), entry(OrderStatus.NEW)
    retirements.note("done", finished)
    retirements.note("open", open_)
    due_at = finished.order.updated_at_ms + 48 * HOUR
    assert retirements.due(due_at - 1) == []
    assert retirements.due(due_at) == [("done", "pool:pool-1")]
    assert retirements.due(due_at + 100 * HOUR) == [("done", "pool:pool-1")]
    retirements.note("done", None)  # forgotten: it leaves the index
    assert len(retirements) == 0


def test_forgets_go_one_per_desk_in_bounded_chunks_and_one_per_uid_without_a_desk() -> None:
    uids = [str(uuid.uuid4()) for _ in range(w.MAX_FORGET + 3)]
    legacy = [str(uuid.uuid4()) for _ in range(2)]
    due = [(u, "pool:a") for u in uids] + [(u, None) for u in legacy] + [(uids[0], "pool:b")]
    outputs = forgets(due, T0)
    messages = [out.message for out in outputs]
    assert all(isinstance(m, w.ForgetOrders) for m in messages)
    sizes = sorted((str(m.desk), len(m.uids)) for m in messages)  # type: ignore[attr-defined]
    assert sizes == [("None", 1), ("None", 1), ("pool:a", 3), ("pool:a", 500), ("pool:b", 1)]
    assert {out.topic for out in outputs} == {"order-commands"}
    assert all(out.occurred_at_ms == T0 for out in outputs)
    assert len({out.message_id for out in outputs}) == len(outputs)
    named = {str(u) for out in outputs for u in out.message.uids}  # type: ignore[attr-defined]
    assert named == set(uids) | set(legacy)
