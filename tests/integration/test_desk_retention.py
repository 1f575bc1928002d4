"""Bounded state on a real broker (ADR 0008): finished orders leave the desk's table, so its
size follows the open work, not the orders ever processed.

The desk runs in-process with a retention of one second; each round drives a batch of
deposit lives (open, confirm, approve) straight into ``order-commands`` and waits until the
desk forgot them. The table ends every round at the same size, the partner's balance holds
every credit, and a forgotten order's opening delivered again reopens nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import faust
import pytest

from schemas import ledger as wl
from schemas import orders as w
from schemas.desks import pool_desk
from schemas.topics import LEDGER_EVENTS, ORDER_COMMANDS, ORDER_EVENTS
from stream_agents.settings import AgentSettings
from stream_agents.table_keys import BALANCE_PREFIX, ORDER_PREFIX, balance_key
from tests.integration.test_agents import (  # noqa: F401 (fixtures)
    DEADLINE_S,
    Pipeline,
    agents,
    card,
    configure,
    decide,
    drop_test_topics,
    open_order,
    pipeline,
)

pytestmark = pytest.mark.integration

LIVES_PER_ROUND = 60
ROUNDS = 3


@pytest.fixture
def settings(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        app_id=unique_name,
        topic_prefix=f"{unique_name}.",
        expiry_interval_s=0.2,
        deadline_rescan_s=2.0,
        order_retention_h=1 / 3600,  # one second
        retention_sweep_s=0.3,
        datadir=tmp_path,
        web_enabled=False,
        metadata_max_age_ms=1000,
    )


def per_order(table: Any) -> list[str]:
    """The table's entries of single orders (every other kind is per card, partner, desk)."""
    shared = ("card/", "turnover/", BALANCE_PREFIX, "horizon/")
    return [key for key in list(table.keys()) if not key.startswith(shared)]


async def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)


async def test_the_desk_table_stays_flat_as_finished_orders_grow(
    pipeline: Pipeline,  # noqa: F811
    agents: faust.App,  # noqa: F811
) -> None:
    await configure(
        pipeline, agents, card("pool-1", daily_count_limit=10**6, monthly_count_limit=10**7)
    )
    table: Any = agents.tables["desk"]
    sizes: list[int] = []
    first_raw = b""
    for round_ in range(ROUNDS):
        orders = [open_order(amount_minor=10_000 + i) for i in range(LIVES_PER_ROUND)]
        for order in orders:  # one desk, one partition: each command finds the one before
            _, raw = await pipeline.publish(ORDER_COMMANDS.name, order)
            pipeline.desks[order.uid] = pool_desk("pool-1")
            first_raw = first_raw or raw
            await pipeline.command(w.ConfirmPayment(uid=order.uid))
            await pipeline.command(decide(order.uid, w.Verdict.APPROVE))
        count = LIVES_PER_ROUND * (round_ + 1)
        await pipeline.wait(LEDGER_EVENTS.name, wl.LedgerPosted, count=count, what="credits")
        await until(lambda: not per_order(table), f"round {round_}: the desk forgets")
        sizes.append(len(table))

    assert len(set(sizes)) == 1, sizes  # the card, its turnover, the balance, the horizon
    assert not [key for key in list(table) if key.startswith(ORDER_PREFIX)]
    # one credit per life, none twice: the balance is the last posting's
    postings = [p for _, p in pipeline.found(LEDGER_EVENTS.name, wl.LedgerPosted, bool)]
    last = max(postings, key=lambda p: p.balance_version)
    assert last.balance_version == len({p.uid for p in postings}) == LIVES_PER_ROUND * ROUNDS
    balance = table[balance_key("acme")]["RUB"]
    assert balance["available_minor"] == last.available_minor
    assert balance["version"] == last.balance_version
    turnover = table["turnover/card-1"]["buckets"]
    assert all(bucket[6] == [] for bucket in turnover)  # forgotten ids leave the buckets
    assert {bucket[4] for bucket in turnover} == {LIVES_PER_ROUND * ROUNDS}  # sums stay

    # Kafka delivers the first opening again (a producer retry, a replayed batch): the order
    # is gone, the opening is older than the desk's horizon, nothing reopens.
    before = len(pipeline.seen)
    await pipeline.publish_raw(ORDER_COMMANDS.name, pool_desk("pool-1"), first_raw)
    await pipeline.settle(2.0)
    reopened = [m for name, _, m, _ in pipeline.seen[before:] if name == ORDER_EVENTS.name]
    assert reopened == []
    assert table[balance_key("acme")]["RUB"] == balance
