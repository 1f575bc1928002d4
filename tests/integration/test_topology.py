"""The topology's topics exist on a real broker with the policies schemas.topics declares."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.topics import ALL_TOPICS, CONFIG_CARDS, Cleanup
from schemas.topology import TopologyError, ensure_topics

pytestmark = pytest.mark.integration


#: How long a topic just created may take to show in the broker's answers (a busy machine).
SETTLE_S = 20.0


async def topic_configs(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configuration, once the broker describes every one of them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + SETTLE_S
    try:
        while True:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
            )
            configs: dict[str, dict[str, str]] = {}
            for response in responses:
                for _code, _msg, _type, name, entries in response.resources:
                    configs[name] = {entry[0]: entry[1] for entry in entries}
            if all(configs.get(name) for name in names) or time.monotonic() > deadline:
                return configs
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    """Each topic's partition count, once the broker lists every one of them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + SETTLE_S
    try:
        while True:
            described = await admin.describe_topics(names)
            counts = {t["topic"]: len(t["partitions"]) for t in described}
            if all(counts.get(name) for name in names) or time.monotonic() > deadline:
                return counts
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def test_ensure_topics_creates_the_topology_once(kafka_bootstrap: str, unique_name: str):
    prefix = f"{unique_name}."
    names = [prefix + spec.name for spec in ALL_TOPICS]

    created = await ensure_topics(kafka_bootstrap, prefix=prefix)
    again = await ensure_topics(kafka_bootstrap, prefix=prefix)

    assert sorted(created) == sorted(names)
    assert again == []
    configs = await topic_configs(kafka_bootstrap, names)
    counts = await partition_counts(kafka_bootstrap, names)
    for spec in ALL_TOPICS:
        name = prefix + spec.name
        assert configs[name]["cleanup.policy"] == spec.cleanup.value
        assert counts[name] == spec.partitions
        if spec.cleanup is Cleanup.DELETE and spec.retention_ms is not None:
            assert configs[name]["retention.ms"] == str(spec.retention_ms)
    assert configs[prefix + "order-events"]["retention.ms"] == "-1"


async def test_a_topic_created_with_other_partitions_is_refused(
    kafka_bootstrap: str, unique_name: str
):
    """``config-cards`` made by someone else first (as the broker's auto-creation does on a
    first send, with its default partition count) before ``make topics``: the agents' card
    table would dead-letter every card, so the topology refuses to go on and names it."""
    prefix = f"{unique_name}."
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        wrong = NewTopic(prefix + CONFIG_CARDS.name, CONFIG_CARDS.partitions + 2, 1)
        await admin.create_topics([wrong])
    finally:
        await admin.close()
    # It exists (as far as the broker's metadata says) before the topology is applied.
    counts = await partition_counts(kafka_bootstrap, [wrong.name])
    assert counts == {wrong.name: CONFIG_CARDS.partitions + 2}

    with pytest.raises(TopologyError, match=rf"{prefix}config-cards has \d+ partition"):
        await ensure_topics(kafka_bootstrap, prefix=prefix)
