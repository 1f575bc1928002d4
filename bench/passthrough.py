"""A raw aiokafka consume → produce pass-through chain: the earlier pipeline benchmark's
baseline (today's topology, hop by hop), kept as a standalone tool; ``make bench`` now
measures the new design's topology instead (``bench/raw_pipeline.py``).

A chain of ``hops`` stages: stage ``k`` consumes topic ``<prefix>-k`` in a consumer group and
produces every record, unchanged (same key, same bytes), to ``<prefix>-(k+1)`` with
``acks=all`` and idempotence (as Keeper's producers do), committing offsets once the batch
is acknowledged. ``messages`` records of ``size`` bytes are loaded into topic 0 first; the
clock runs from the moment the stages start until the last topic holds every record. The
stages are spread over ``processes`` OS processes (Keeper runs its agents, projector and
API as separate processes on the same cores).

    .venv/bin/python bench/passthrough.py --bootstrap 127.0.0.1:9092 --hops 20 --size 900

It is what Keeper's pipeline would cost with no domain logic, no state, no HTTP and no
database: an upper bound for the same record count on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BATCH = 500


async def _create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
        # Wait for every partition's leader: producing earlier only earns retries
        # (NotLeaderForPartitionError) and their noise in the output.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            described = await admin.describe_topics(names)
            if all(
                not topic.get("error_code") and all(p["leader"] >= 0 for p in topic["partitions"])
                for topic in described
            ):
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    except Exception:  # noqa: S110 - best effort clean-up of a private broker
        pass
    finally:
        await admin.close()


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1
    )


async def _load(bootstrap: str, topic: str, messages: int, size: int) -> None:
    producer = _producer(bootstrap)
    await producer.start()
    try:
        body = (b"x" * size)[:size]
        pending = []
        for i in range(messages):
            key = uuid.UUID(int=i).hex.encode()
            pending.append(await producer.send(topic, key=key, value=body))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _stage(bootstrap: str, group: str, source: str, sink: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=BATCH,
    )
    producer = _producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=BATCH)
            if not batches:
                continue
            futures = [
                await producer.send(sink, key=record.key, value=record.value)
                for records in batches.values()
                for record in records
            ]
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def _end_total(consumer: AIOKafkaConsumer, topic: str, partitions: int) -> int:
    return await _produced(consumer, [topic], partitions)


async def _produced(consumer: AIOKafkaConsumer, topics: list[str], partitions: int) -> int:
    """Records ever written to ``topics`` (the probe is assigned them all up front)."""
    tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
    return sum((await consumer.end_offsets(tps)).values())


async def _run_stages(
    bootstrap: str, prefix: str, stages: list[int], until: float, finished: Any
) -> None:
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            _stage(bootstrap, f"{prefix}-g{k}", f"{prefix}-{k}", f"{prefix}-{k + 1}", stop)
        )
        for k in stages
    ]
    while time.time() < until and not finished.is_set():  # noqa: ASYNC110 - another process's
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def _worker(
    bootstrap: str, prefix: str, stages: list[int], until: float, finished: Any, out: Any
) -> None:
    asyncio.run(_run_stages(bootstrap, prefix, stages, until, finished))
    out.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


async def measure(
    bootstrap: str,
    *,
    hops: int,
    size: int,
    messages: int,
    partitions: int = 4,
    processes: int = 2,
    timeout_s: float = 20,
) -> dict[str, Any]:
    """Run the chain once; msgs/s counts records produced by the stages (hops per message)."""
    prefix = f"pt-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{k}" for k in range(hops + 1)]
    await _create_topics(bootstrap, names, partitions)
    try:
        await _load(bootstrap, names[0], messages, size)
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        finished = ctx.Event()
        until = time.time() + timeout_s + 180
        started = time.monotonic()
        procs = [
            ctx.Process(
                target=_worker,
                args=(bootstrap, prefix, list(range(i, hops, processes)), until, finished, out),
            )
            for i in range(processes)
        ]
        for proc in procs:
            proc.start()
        probe = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
        )
        await probe.start()
        probe.assign([TopicPartition(t, p) for t in names for p in range(partitions)])
        window = None
        try:
            # Steady state only: wait until records come out of the last hop (every stage has
            # joined its group and the chain is full), then count what the stages produce
            # over the window.
            ready_by = time.monotonic() + 120
            while time.monotonic() < ready_by:
                if await _end_total(probe, names[-1], partitions) > 0:
                    break
                await asyncio.sleep(0.2)
            first = await _produced(probe, names[1:], partitions)
            t_first = time.monotonic()
            await asyncio.sleep(timeout_s)
            last = await _produced(probe, names[1:], partitions)
            window = time.monotonic() - t_first
            through = await _end_total(probe, names[-1], partitions)
        finally:
            await probe.stop()
            finished.set()
        rss = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=30)
        return {
            "hops": hops,
            "message_bytes": size,
            "messages": messages,
            "partitions": partitions,
            "processes": processes,
            "window_s": round(window, 2),
            "startup_s": round(t_first - started, 2),
            "records_per_s": round((last - first) / window, 1),
            "messages_through": through,
            "peak_rss_mib": [round(kib / 1024, 1) for kib in rss],
        }
    finally:
        await _delete_topics(bootstrap, names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--hops", type=int, default=20)
    parser.add_argument("--size", type=int, default=900)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20, help="measuring window")
    args = parser.parse_args()
    result = asyncio.run(
        measure(
            args.bootstrap,
            hops=args.hops,
            size=args.size,
            messages=args.messages,
            processes=args.processes,
            timeout_s=args.seconds,
        )
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
