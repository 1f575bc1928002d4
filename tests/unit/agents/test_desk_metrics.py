"""The desk's metrics: a life through real desk steps moves the order counters once per
change (a redelivered command counts nowhere), the operator's reaction time comes from the
order's own timestamps, and the census counts the table by state, pool and kind."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from domain.orders import Direction
from schemas import orders as w
from schemas.envelope import Message
from stream_agents.desk import metrics
from stream_agents.desk.step import Desk, Overlay
from stream_agents.wire import Out
from tests.unit.agents.builders import T0, decide
from tests.unit.agents.test_desk_step import CARDS, DESK, opening


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def step(table: dict[str, Any], message: Message, at_ms: int) -> list[Out]:
    """One command as the agent runs it, metrics included."""
    overlay = Overlay(table)
    before = metrics.entry_before(message, overlay)
    desk = Desk(overlay.child(), CARDS, clock=lambda: T0 + 60_000)
    outputs = desk.run(message, at_ms)
    overlay.merge(desk.table)
    metrics.observe_step(message, before, outputs, desk.touched)
    table.update(dict(overlay.writes()))
    return outputs


def test_a_deposit_life_counts_each_event_once_and_times_the_decision() -> None:
    order = opening(Direction.DEPOSIT)
    labels = {"partner": "acme", "direction": "deposit"}
    counted = {e: sample("keeper_orders_total", event=e, **labels) for e in
               ("created", "payment_confirmed", "approved")}  # fmt: skip
    reactions = sample("keeper_operator_reaction_seconds_count", verdict="approved")
    reaction_sum = sample("keeper_operator_reaction_seconds_sum", verdict="approved")
    table: dict[str, Any] = {}

    step(table, order, T0)
    step(table, order, T0)  # redelivered: re-publishes, counts nothing
    confirm = w.ConfirmPayment(uid=order.uid, desk=DESK)
    step(table, confirm, T0 + 1_000)
    approve = decide(w.Verdict.APPROVE).model_copy(update={"uid": order.uid})
    step(table, approve, T0 + 91_000)
    step(table, approve, T0 + 95_000)  # a repeated decision changes nothing

    for event, before in counted.items():
        assert sample("keeper_orders_total", event=event, **labels) == before + 1, event
    assert sample("keeper_operator_reaction_seconds_count", verdict="approved") == reactions + 1
    assert sample("keeper_operator_reaction_seconds_sum", verdict="approved") == (
        reaction_sum + 90.0
    )

    found = metrics.census(table.items(), at_s=(T0 + 100_000) / 1000)
    assert found.orders_by_state == {"approved": 1}
    assert found.queue_depth == 0
    assert found.open_by_pool == {}
    assert found.entries_by_kind["order"] == 1


def test_the_census_counts_states_pools_the_queue_and_deadlines() -> None:
    table: dict[str, Any] = {}
    waiting, fresh = opening(Direction.DEPOSIT), opening(Direction.DEPOSIT, amount_minor=160_000)
    step(table, waiting, T0)
    step(table, fresh, T0)
    step(table, w.ConfirmPayment(uid=waiting.uid, desk=DESK), T0 + 5_000)

    found = metrics.census(table.items(), at_s=(T0 + 65_000) / 1000)
    assert found.orders_by_state == {"processing": 1, "new": 1}
    assert found.open_by_pool == {"pool-1": 2}
    assert found.queue_depth == 1
    assert found.deadlines == 1
    families = {f.name: f for f in metrics.census_families(found)}
    [oldest] = families["keeper_operator_queue_oldest_age_seconds"].samples
    assert oldest.value == 60.0
    states = {s.labels["state"]: s.value for s in families["keeper_desk_orders"].samples}
    assert states["processing"] == 1
    assert states["approved"] == 0  # every state, zeros too


def test_an_empty_queue_has_no_age() -> None:
    found = metrics.census([], at_s=1.0)
    families = {f.name: f for f in metrics.census_families(found)}
    assert families["keeper_operator_queue_oldest_age_seconds"].samples[0].value == 0
