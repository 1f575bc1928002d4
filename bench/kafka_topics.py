"""What Keeper wrote to Kafka: records per topic and their sizes, read from the broker (every
topic but Kafka's own), so the harness needs no knowledge of which agent writes what."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def partitions(bootstrap: str) -> dict[str, list[int]]:
    """Every topic but Kafka's own, with its partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if not t.startswith("__")]
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described}


async def topic_offsets(bootstrap: str) -> dict[str, int]:
    """Records ever written to each topic (the sum of its partitions' end offsets)."""
    tps = [
        TopicPartition(t, p) for t, parts in (await partitions(bootstrap)).items() for p in parts
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        consumer.assign(tps)  # so that its metadata covers these topics
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    totals: dict[str, int] = {}
    for tp, end in ends.items():
        totals[tp.topic] = totals.get(tp.topic, 0) + end
    return totals


async def record_sizes(
    bootstrap: str, topics: dict[str, int], per_topic: dict[str, int], sample: int = 400
) -> float:
    """Mean value+key size of Keeper's records, each topic weighted by its count; the mean of
    each topic goes into ``per_topic``.

    The newest ``sample`` records of each topic, read in one pass over all of them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        known = await partitions(bootstrap)
        tps = [TopicPartition(t, p) for t in topics for p in known.get(t, ())]
        if not tps:
            return 0.0
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        ends = {tp: await consumer.position(tp) for tp in tps}
        for tp in tps:
            consumer.seek(tp, max(0, ends[tp] - sample // len(known[tp.topic])))
        sizes: dict[str, list[int]] = {t: [] for t in topics}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for tp, records in batch.items():
                sizes[tp.topic] += [len(r.value or b"") + len(r.key or b"") for r in records]
            if not batch and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                break  # every partition read to its end
        total_bytes = total_count = 0.0
        for topic, count in topics.items():
            if sizes[topic]:
                mean = sum(sizes[topic]) / len(sizes[topic])
                per_topic[topic] = round(mean)
                total_bytes += mean * count
                total_count += count
        return total_bytes / total_count if total_count else 0.0
    finally:
        await consumer.stop()
