"""The topology's topics exist on a real broker with the policies schemas.topics declares."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.topics import ALL_TOPICS, Cleanup
from stream_agents.topology import ensure_topics

pytestmark = pytest.mark.integration


async def topic_configs(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _msg, _type, name, entries in response.resources:
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return configs


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


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
