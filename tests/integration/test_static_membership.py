"""Static group membership on a real broker (ADR 0012), with real ``python -m stream_agents
worker`` processes (two slots, one standby replica, Faust's assignor), driven as ``make soak``
drives them: deposit lives straight into ``order-commands``.

- A worker killed -9 and replaced at once with its slot's group instance id: the replacement
  takes the slot's partitions in the same generation (no rebalance, so no wait for the
  session timeout), and the other worker keeps its own.
- A second live process with the same id: the one it replaced stops (exit 75, as if killed
  -9) instead of taking the id back; the newcomer serves.
- A worker that never comes back: its partitions move to the other worker after the
  session timeout.
- Three workers, more than the cards table's one partition and one replica: every worker
  still knows every card (the table is global), so no desk declines for want of one.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from bench.soak import Soak, Worker
from schemas.desks import pool_desk
from schemas.topics import ORDER_COMMANDS, ORDER_EVENTS
from stream_agents.membership import FENCED_EXIT

pytestmark = pytest.mark.integration

SESSION_TIMEOUT_S = 6.0  # the broker's minimum: the "never comes back" case waits this long
JOINED = re.compile(rb"Joined group '[^']+' \(generation (\d+)\)")


def generations(worker: Worker) -> list[int]:
    return [int(g) for g in JOINED.findall(worker.log_path.read_bytes())]


@pytest.fixture
async def soak(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Soak]:
    args = argparse.Namespace(
        bootstrap=kafka_bootstrap,
        store="memory://",
        standby=1,
        workdir=tmp_path,
        retention_s=30.0,
        sweep_s=1.0,
        segment_s=10,
        session_timeout_s=SESSION_TIMEOUT_S,
        static=True,
        pools=4,
        cards=1,
        settle_s=1.0,
        keep_topics=False,
    )
    tag = uuid.uuid4().hex[:8]
    soak = Soak(args, prefix=f"t-static-{tag}.", app_id=f"t-static-{tag}")
    await soak.create_topics()
    try:
        yield soak
    finally:
        for worker in soak.workers:
            worker.stop()
        await soak.drop_topics()


@pytest.fixture
async def clients(soak: Soak) -> AsyncIterator[tuple[AIOKafkaProducer, AIOKafkaConsumer]]:
    producer = AIOKafkaProducer(bootstrap_servers=soak.args.bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer(
        soak.prefix + ORDER_EVENTS.name,
        bootstrap_servers=soak.args.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    try:
        yield producer, consumer
    finally:
        await consumer.stop()
        await producer.stop()


def alive(worker: Worker) -> bool:
    return worker.process is not None and worker.process.poll() is None


async def ready(*workers: Worker) -> None:
    deadline = time.monotonic() + 90
    while not all(w.readies() for w in workers):
        assert time.monotonic() < deadline, "a worker never said it was ready"
        await asyncio.sleep(0.5)


async def served(soak: Soak, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
    """A life sent to every desk completes (each desk's partition is served)."""
    for i in range(len(soak.pools)):
        await soak.send_life(producer, soak.sent + i)
    soak.sent += len(soak.pools)
    await soak.drain(consumer, timeout_s=90)


async def test_a_slot_keeps_its_partitions_across_a_kill_a_twin_and_a_departure(
    soak: Soak, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
):
    producer, consumer = clients
    await soak.configure_cards(producer)
    first, second = soak.workers = [
        Worker(i, soak.env(i), soak.args.workdir / f"worker-{i}.log") for i in range(2)
    ]
    for worker in soak.workers:
        worker.start()
    await served(soak, producer, consumer)
    await ready(first, second)
    await asyncio.sleep(2)  # both in the group, standbys assigned
    settled = generations(first)[-1]
    assert generations(second)[-1] == settled

    # 1. kill -9 and an immediate replacement: same generation, the other worker untouched
    await soak.serve_time(producer, consumer)
    assert generations(second)[-1] == settled, "the replacement caused a rebalance"
    assert generations(first)[-1] == settled
    await served(soak, producer, consumer)

    # 2. a twin with the same id (another host, say: its own address, the same URL)
    twin_env = soak.env(1) | {"KEEPER_AGENTS_WEB_HOST": "127.0.0.2"}
    twin = Worker(1, twin_env, soak.args.workdir / "twin-1.log")
    replaced = second.process
    assert replaced is not None
    soak.workers.append(twin)
    twin.start()
    status = await asyncio.to_thread(replaced.wait, 90)
    assert status == FENCED_EXIT
    assert b"was replaced in group" in second.log_path.read_bytes()
    assert alive(twin)
    assert alive(first)
    await served(soak, producer, consumer)
    assert alive(twin), "the twin was pushed out in turn"

    # 3. the twin leaves for good: the first worker takes its partitions after the session
    # timeout (a new generation) and serves every desk
    soak.workers = [first, twin]
    unserved_s = await soak.serve_time(producer, consumer, replace=False)
    # its session lapses a session timeout after its last heartbeat (1 s apart at most)
    assert unserved_s >= SESSION_TIMEOUT_S - 1
    assert generations(first)[-1] > settled
    assert (await soak.invariants())["problems"] == []


async def test_every_worker_reads_every_card_however_many_share_the_group(
    soak: Soak, clients: tuple[AIOKafkaProducer, AIOKafkaConsumer]
):
    """Three workers, one standby replica: a table of one partition lives on two of them at
    most unless it is global. Each worker must recover the cards before its desks take a
    command, so a life sent to every desk is placed on a card, never declined."""
    producer, consumer = clients
    soak.args.pools = 8
    await soak.configure_cards(producer)
    partitions = list(range(ORDER_COMMANDS.partitions))
    desks_on = {
        DefaultPartitioner()(pool_desk(p).encode(), partitions, partitions) for p in soak.pools
    }
    assert desks_on == set(partitions), "a partition without a desk would test nothing"
    soak.workers = [Worker(i, soak.env(i), soak.args.workdir / f"worker-{i}.log") for i in range(3)]
    for worker in soak.workers:
        worker.start()
    await ready(*soak.workers)
    await asyncio.sleep(2)  # the group settled: every worker holds desks
    assert len({generations(w)[-1] for w in soak.workers}) == 1
    soak.approved.clear()
    soak.rejected_at_open.clear()
    for _ in range(3):
        await served(soak, producer, consumer)
    assert soak.rejected_at_open == set(), "declined: no card on the worker that served them"
    assert soak.completed == 3 * len(soak.pools)
