"""Fault suites: orders keep flowing while the agents are killed -9, the broker restarts and
PostgreSQL restarts; afterwards nothing acknowledged is lost, nothing is doubled, and every
invariant of DESIGN.md section 5 holds (``make reconcile`` reports zero mismatches). Two
deposits in ten are confirmed by the bank's notification instead of an operator (ADR 0010), so
a worker killed while it matches must lose nothing and approve nothing twice.

Each suite runs on a private stack (its own broker, database and processes, see
``tests/fixtures/stack.py``). The size is ``KEEPER_FAULT_SCALE``: ``ci`` (default, a reduced
but real run) or ``full`` (``make faults``); docs/reliability.md records the figures.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.fixtures.load import Life, Load, plan
from tests.fixtures.pan_scan import card_numbers
from tests.fixtures.stack import CURRENCY, OPERATORS, PASSWORD, Stack

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1800)]


@dataclass(frozen=True)
class Size:
    orders: int
    concurrency: int
    kills: int
    broker_restarts: int
    database_restarts: int


SIZES = {
    "ci": Size(orders=200, concurrency=12, kills=3, broker_restarts=2, database_restarts=2),
    "full": Size(orders=2000, concurrency=30, kills=20, broker_restarts=5, database_restarts=5),
}
SIZE = SIZES[os.environ.get("KEEPER_FAULT_SCALE", "ci")]


def load_for(stack: Stack) -> Load:
    return Load(
        api_url=stack.api_url,
        key_id=stack.key_id,
        secret=stack.secret,
        operators=OPERATORS,
        password=PASSWORD,
        currency=CURRENCY,
        deadline_s=300,
        phones=stack.phones,  # two deposits in ten are confirmed by the bank (ADR 0010)
    )


async def under_faults(
    stack: Stack, lives: list[Life], times: int, fault: Callable[[], None], pause_s: float
) -> int:
    """Strike ``times`` times, ``pause_s`` apart, always under load: ``lives`` runs, and
    should it finish first (a fast machine, slow faults) another batch is added to it and
    started. Returns the number of strikes."""
    load = load_for(stack)
    batch = len(lives)
    traffic = asyncio.create_task(load.run(list(lives), SIZE.concurrency))
    struck = 0
    while struck < times:
        await asyncio.sleep(pause_s)
        if traffic.done():
            await traffic
            more = plan(batch, start=len(lives), devices=True)
            lives.extend(more)
            traffic = asyncio.create_task(load.run(more, SIZE.concurrency))
            await asyncio.sleep(pause_s)
        await asyncio.to_thread(fault)
        struck += 1
    await traffic
    return struck


async def eventually(probe: Callable[[], Awaitable[bool] | bool], what: str, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if await result if asyncio.iscoroutine(result) else result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def assert_nothing_lost_or_doubled(stack: Stack, lives: list[Life]) -> None:
    acknowledged = [life for life in lives if life.acknowledged]
    assert len(acknowledged) == len(lives), [life.errors for life in lives if not life.acknowledged]

    # 6: every acknowledged order is in PostgreSQL (the projector may trail a little).
    wanted = {life.uid for life in acknowledged}

    def all_recorded() -> bool:
        rows = stack.sql("SELECT uid::text FROM orders WHERE uid::text = ANY(:u)", u=list(wanted))
        return len(rows) == len(wanted)

    # A component that died on its own (not one the test killed) is a finding: say which,
    # then restart it as a supervisor would, and hold the system to its word regardless.
    crashed = stack.dead()
    if crashed:
        stack.events.append(f"found dead after the load: {crashed}")
        stack.up()
    try:
        await eventually(all_recorded, "every acknowledged order in PostgreSQL", 180)
    except BaseException:
        missing = len(wanted) - len(
            stack.sql("SELECT uid::text FROM orders WHERE uid::text = ANY(:u)", u=list(wanted))
        )
        print(f"{missing} acknowledged orders missing; events {stack.events}")
        print("projector log:\n" + stack.tail("projector"))
        raise
    assert crashed == [], f"components crashed during the load: {crashed}"

    # 2: a decision the API confirmed is the order's final state, made by who was told so.
    def rows() -> dict[str, tuple[str, str, object]]:
        found = stack.sql("SELECT uid::text, partner_order_id, status, decided_by FROM orders")
        return {uid: (poid, status, decided_by) for uid, poid, status, decided_by in found}

    def decisions_recorded() -> bool:
        current = rows()
        return all(
            current.get(life.uid, ("", "", None))[1:] == (life.status, life.decided_by)
            for life in acknowledged
            if life.decided_by
        )

    await eventually(decisions_recorded, "decisions in PostgreSQL", 120)

    # 7: one order per partner order id.
    per_request = Counter(poid for poid, _, _ in rows().values())
    assert [poid for poid, n in per_request.items() if n > 1] == []

    # Every order finished its life: nothing is left half-way.
    unfinished = [life for life in acknowledged if life.status is None]
    assert unfinished == [], [(life.uid, life.errors[-3:]) for life in unfinished]

    # 1-4, 6, 7 across the agents' tables, the logs and PostgreSQL.
    checked = stack.reconcile()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "reconcile: 0 mismatch(es)" in checked.stdout

    # No card number (the payers' and the platform's) reached any component's log.
    assert card_numbers(stack.log_text()) == []


def summary(lives: list[Life], struck: int, what: str) -> str:
    statuses = Counter(life.status for life in lives)
    accepted = sum(1 for life in lives if 202 in life.creates)
    retries = sum(len(life.errors) for life in lives)
    by_bank = sum(1 for life in lives if (life.decided_by or "").startswith("device:"))
    return (
        f"{len(lives)} orders, {struck} {what}: {accepted} creates answered 202, "
        f"{retries} calls retried; outcomes {dict(statuses)}; {by_bank} approved by a bank "
        "notification"
    )


async def test_agents_killed_repeatedly_under_load(stack: Stack):
    lives = plan(SIZE.orders, devices=True)

    def kill_and_restart() -> None:
        stack.kill("agents")
        time.sleep(1)
        stack.up()

    struck = await under_faults(stack, lives, SIZE.kills, kill_and_restart, pause_s=4)

    assert struck == SIZE.kills
    await assert_nothing_lost_or_doubled(stack, lives)
    print(summary(lives, struck, "kill -9 of the agents"))


async def test_broker_restarted_under_load(stack: Stack):
    lives = plan(SIZE.orders, devices=True)

    def restart() -> None:
        stack.restart_broker()
        stack.up()  # a component that gave up while the broker was away comes back

    struck = await under_faults(stack, lives, SIZE.broker_restarts, restart, pause_s=5)

    assert struck == SIZE.broker_restarts
    await assert_nothing_lost_or_doubled(stack, lives)
    print(summary(lives, struck, "broker restarts"))


async def test_database_restarted_while_the_projector_writes(stack: Stack):
    lives = plan(SIZE.orders, devices=True)

    def restart() -> None:
        stack.restart_database()
        stack.up()

    struck = await under_faults(stack, lives, SIZE.database_restarts, restart, pause_s=4)

    assert struck == SIZE.database_restarts
    await assert_nothing_lost_or_doubled(stack, lives)
    print(summary(lives, struck, "PostgreSQL restarts"))


async def test_cluster_loses_a_broker_and_a_worker_under_load(cluster_stack: Stack):
    """Three brokers (replication 3, min.insync.replicas 2, acks=all) and two agent workers:
    a broker and a worker go down and come back, in turns, while orders flow."""
    stack = cluster_stack
    lives = plan(SIZE.orders, devices=True)
    faults = iter(range(SIZE.broker_restarts * 2))

    def strike() -> None:
        turn = next(faults)
        if turn % 2 == 0:
            stack.restart_cluster_node(turn // 2 % 3 + 1)
        else:
            stack.kill("agents-2" if turn % 4 == 1 else "agents")
            time.sleep(1)
            stack.up()

    struck = await under_faults(stack, lives, SIZE.broker_restarts * 2, strike, pause_s=4)

    assert struck == SIZE.broker_restarts * 2
    await assert_nothing_lost_or_doubled(stack, lives)
    print(summary(lives, struck, "broker restarts and worker kills on the cluster"))
