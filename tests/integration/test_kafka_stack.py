"""The Python client stack against a real broker: aiokafka, and Faust as Keeper's agents use it.

Faust apps run in-process (``await app.start()`` / ``await app.stop()``) on the test's event loop:
that lets a test read a table or ``ask`` an agent directly, and start-up takes about a second.
Each app gets a unique id (so its consumer group and topics are new), a memory store, a
temporary data directory and no web server; every topic a test made is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faust.tables.manager import TableManager
from faust.types import TableT, TopicT

pytestmark = pytest.mark.integration

PARTITIONS = 3
DEADLINE_S = 30.0


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = DEADLINE_S
) -> None:
    """Poll ``check`` until it holds; a deadline instead of a guessed sleep."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


@pytest.fixture(autouse=True)
async def drop_test_topics(admin: AIOKafkaAdminClient, unique_name: str) -> AsyncIterator[None]:
    """Delete the test's topics afterwards: a long-lived local broker should not collect them."""
    yield
    leftovers = [topic for topic in await admin.list_topics() if topic.startswith(unique_name)]
    if leftovers:
        await admin.delete_topics(leftovers)


async def topic_config(admin: AIOKafkaAdminClient, topic: str, name: str) -> str | None:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})
    [response] = await admin.describe_configs([resource])
    [described] = response.to_object()["resources"]
    assert described["error_code"] == 0, described["error_message"]
    values = {entry["config_names"]: entry["config_value"] for entry in described["config_entries"]}
    return values.get(name)


async def partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    [described] = await admin.describe_topics([topic])
    assert described["error_code"] == 0, f"{topic}: error {described['error_code']}"
    return len(described["partitions"])


async def committed_lag(admin: AIOKafkaAdminClient, bootstrap: str, group: str, topic: str) -> int:
    """Messages of ``topic`` that consumer group ``group`` has not committed yet."""
    partitions = [TopicPartition(topic, p) for p in range(await partition_count(admin, topic))]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        end_offsets = await consumer.end_offsets(partitions)
        committed = [await consumer.committed(partition) or 0 for partition in partitions]
    finally:
        await consumer.stop()
    return int(sum(end_offsets[partition] for partition in partitions) - sum(committed))


def faust_app(app_id: str, bootstrap: str, datadir: Path, **settings: Any) -> faust.App:
    """A Faust app isolated from every other test: own id, memory store, no web server.

    Faust creates its topics at start and subscribes at once; on a busy broker the first
    assignment can come before the broker's metadata lists a new topic, and the topic is then
    left unassigned until the consumer next refreshes metadata (every 5 minutes by default).
    Refreshing every second turns that into a one-second hiccup and a rebalance.
    """
    return faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        consumer_metadata_max_age_ms=1000,
        **settings,
    )


@asynccontextmanager
async def running(app: faust.App) -> AsyncIterator[faust.App]:
    """Start ``app`` (this returns once table recovery is complete) and always stop it."""
    await asyncio.wait_for(app.start(), DEADLINE_S)
    try:
        yield app
    finally:
        await asyncio.wait_for(app.stop(), DEADLINE_S)


async def test_aiokafka_round_trip_keeps_content_and_per_key_order(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, unique_name: str
) -> None:
    topic = f"{unique_name}-transfers"
    await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])

    async def listed() -> bool:  # a consumer assigned before that would get no partitions
        return topic in await admin.list_topics()

    await eventually(listed, f"{topic} to be listed")
    sent: list[tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]] = []
    partition_of_key: dict[bytes, int] = {}

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for seq in range(24):
            key = f"payer-{seq % 4}".encode()
            value = f'{{"seq": {seq}, "amount_cents": {100 + seq}}}'.encode()
            headers = (("trace-id", f"trace-{seq}".encode()), ("schema", b"transfer.v1"))
            record = await producer.send_and_wait(topic, value, key=key, headers=list(headers))
            assert partition_of_key.setdefault(key, record.partition) == record.partition
            sent.append((key, value, headers))
    finally:
        await producer.stop()

    received: list[Any] = []
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(received) < len(sent) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                received.extend(messages)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert len(received) == len(sent)
    assert sorted((m.key, m.value, tuple(m.headers)) for m in received) == sorted(sent)
    for key, partition in partition_of_key.items():
        of_key = [m for m in received if m.key == key]
        assert {m.partition for m in of_key} == {partition}
        assert [m.value for m in of_key] == [value for k, value, _ in sent if k == key]
        assert [m.offset for m in of_key] == sorted(m.offset for m in of_key)
    assert await committed_lag(admin, kafka_bootstrap, unique_name, topic) == 0


async def test_faust_creates_source_and_compacted_changelog_topics(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, unique_name: str, tmp_path: Path
) -> None:
    app = faust_app(unique_name, kafka_bootstrap, tmp_path)
    payments = app.topic(f"{unique_name}-payments", key_type=str, internal=True)
    balances = app.Table("balances", default=int)

    @app.agent(payments)
    async def apply_payment(stream: faust.StreamT[int]) -> None:
        async for payer, amount in stream.items():
            balances[payer] += amount

    source, changelog = f"{unique_name}-payments", f"{unique_name}-balances-changelog"
    assert not {source, changelog} & set(await admin.list_topics())

    async with running(app):
        # Created is not yet listed: a KRaft broker publishes new topics to its metadata
        # cache moments after the controller has accepted them.
        async def both_listed() -> bool:
            return {source, changelog} <= set(await admin.list_topics())

        await eventually(both_listed, f"{source} and {changelog} to be listed")
        assert await partition_count(admin, source) == PARTITIONS
        assert await partition_count(admin, changelog) == PARTITIONS
        assert await topic_config(admin, changelog, "cleanup.policy") == "compact"
        assert await topic_config(admin, source, "cleanup.policy") == "delete"


def counting_app(
    app_id: str, bootstrap: str, datadir: Path
) -> tuple[faust.App, TopicT, TableT[str, int], list[str]]:
    """An app that counts events per key in a changelog-backed table.

    Returns the app, its source topic, the table and the keys its agent processed.
    """
    app = faust_app(app_id, bootstrap, datadir)
    events = app.topic(f"{app_id}-events", key_type=str, value_type=str, internal=True)
    counts = app.Table("counts", default=int)
    processed: list[str] = []

    @app.agent(events)
    async def count(stream: faust.StreamT[str]) -> None:
        async for key, _ in stream.items():
            processed.append(key)
            counts[key] += 1

    return app, events, counts, processed


async def test_faust_table_is_restored_from_changelog_by_a_new_instance(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, unique_name: str, tmp_path: Path
) -> None:
    keys = [f"wallet-{n % 5}" for n in range(40)] + ["wallet-0"] * 3
    expected = dict(Counter(keys))

    first, events, counts, processed = counting_app(unique_name, kafka_bootstrap, tmp_path / "a")
    async with running(first):
        for key in keys:
            await events.send(key=key, value="deposit")

        async def all_counted() -> bool:
            return len(processed) == len(keys)

        await eventually(all_counted, f"{len(keys)} events to be counted")
        assert dict(counts.items()) == expected
    lag = await committed_lag(admin, kafka_bootstrap, unique_name, f"{unique_name}-events")
    assert lag == 0, "the first instance left events uncommitted; the second would redo them"

    # Same app id, new process state: the memory store starts empty, every source event is
    # already committed, so the table can only be rebuilt from its changelog topic.
    second, _, restored, reprocessed = counting_app(unique_name, kafka_bootstrap, tmp_path / "b")
    async with running(second):
        assert cast(TableManager, second.tables).recovery.completed.is_set()
        assert dict(restored.items()) == expected
        assert reprocessed == []


async def test_faust_agent_answers_ask_with_computed_reply(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    # reply_create_topic: subscribe to the reply topic at start-up; otherwise the first ask
    # subscribes late and Faust's conductor waits 45 s before it resubscribes.
    # stream_wait_empty=False: Faust registers the reply topic twice (the ReplyConsumer's topic
    # and the clone it iterates), so one copy of each reply is never acked and stop() would
    # wait for it forever.
    app = faust_app(
        unique_name,
        kafka_bootstrap,
        tmp_path,
        reply_to=f"{unique_name}-replies",
        reply_create_topic=True,
        stream_wait_empty=False,
    )

    @app.agent()
    async def fee_quote(stream: faust.StreamT[int]) -> AsyncIterator[dict[str, int]]:
        async for amount_cents in stream:
            yield {"amount_cents": amount_cents, "fee_cents": max(1, amount_cents // 100)}

    amounts = [50, 1_000, 123_456]
    async with running(app):
        replies = await asyncio.wait_for(
            asyncio.gather(*(fee_quote.ask(value=amount) for amount in amounts)), DEADLINE_S
        )

    assert replies == [
        {"amount_cents": 50, "fee_cents": 1},
        {"amount_cents": 1_000, "fee_cents": 10},
        {"amount_cents": 123_456, "fee_cents": 1_234},
    ]
