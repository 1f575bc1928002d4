"""Apply the topic catalogue to a broker, and read a topic's partitions back.

Faust creates the topics its agents consume, but with broker defaults; compacted config topics
and the retained event log need their own policy, so the topology is declared once in
:mod:`schemas.topics` and applied by :func:`ensure_topics`, idempotently.
:func:`topic_partitions` reads a topic's partitions back, for the readers that assign
partitions themselves instead of joining a group. Both sit beside the catalogue because the
agents, the API and the reconciliation all use them: none of those imports another for them.
``python -m stream_agents.topology`` applies the catalogue with the agents' settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)

_OK = 0
_TOPIC_ALREADY_EXISTS = 36
#: How often :func:`topic_partitions` looks again for a topic it waits for.
_TOPIC_POLL_S = 0.2


class TopologyError(RuntimeError):
    """The broker refused to create a topic of the topology, or one exists with another
    partition count than the topology's."""


async def _check_partitions(
    admin: AIOKafkaAdminClient, specs: Iterable[TopicSpec], prefix: str, names: set[str]
) -> None:
    """Refuse topics that exist with the wrong number of partitions.

    Such a topic is usually one the broker created on a first send (auto-creation, with the
    broker's default partition count) before ``make topics`` ran. Agents then fail on it:
    a table and the topic feeding it must agree on partitions, so every record of it would
    be dead-lettered. Better to stop here and say so.
    """
    expected = {prefix + spec.name: spec.partitions for spec in specs}
    present = sorted(name for name in expected if name in names)
    if not present:
        return
    wrong = [
        f"{described['topic']} has {len(described['partitions'])} partition(s), "
        f"the topology says {expected[described['topic']]}"
        for described in await admin.describe_topics(present)
        # A topic another worker created a moment ago may not be in this broker's metadata
        # yet (an error, no partitions): that is not a mismatch.
        if not described.get("error_code")
        and described["partitions"]
        and len(described["partitions"]) != expected[described["topic"]]
    ]
    if wrong:
        raise TopologyError(
            "topics exist with the wrong partition count: "
            + "; ".join(wrong)
            + ". Delete them (a fresh broker: make clean) and run make topics again."
        )


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec] = ALL_TOPICS,
    *,
    replication_factor: int = 1,
    prefix: str = "",
) -> list[str]:
    """Create the missing topics of ``specs``; return the names that were created.

    Topics that exist already must have the topology's partition count (:class:`TopologyError`
    otherwise)."""
    specs = list(specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=prefix + spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs=spec.config(),
            )
            for spec in specs
            if prefix + spec.name not in existing
        ]
        created = []
        if wanted:
            response = await admin.create_topics(wanted)
            for name, code, *_ in response.topic_errors:
                if code not in (_OK, _TOPIC_ALREADY_EXISTS):  # another worker may win the race
                    raise TopologyError(f"cannot create topic {name}: error code {code}")
                if code == _OK:
                    created.append(name)
        if created:
            log.info("created topics: %s", ", ".join(created))
        # Everything not created just now was made by someone else: check what it is.
        others = {prefix + spec.name for spec in specs} - set(created)
        await _check_partitions(admin, specs, prefix, others)
        return created
    finally:
        await admin.close()


async def topic_partitions(
    bootstrap_servers: str, topic: str, *, wait_s: float = 0.0
) -> list[TopicPartition]:
    """Every partition of ``topic``, in order, as the broker's metadata lists them.

    Read through the admin client: a consumer without a subscription keeps no metadata for
    the topic. A topic the broker reports an error for (it does not exist) has no partitions.
    With ``wait_s`` the topic must appear within that time (looked for every 0.2 s), else
    :class:`RuntimeError`; without it, one look, and a missing topic simply has none.
    """
    attempts = max(1, round(wait_s / _TOPIC_POLL_S))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        for _ in range(attempts):
            [described] = await admin.describe_topics([topic])
            listed = [] if described.get("error_code", 0) else described.get("partitions") or []
            numbers = sorted(p["partition"] for p in listed)
            if numbers or not wait_s:
                return [TopicPartition(topic, p) for p in numbers]
            await asyncio.sleep(_TOPIC_POLL_S)
    finally:
        await admin.close()
    raise RuntimeError(f"topic {topic} does not exist (run make topics)")


__all__ = ["TopologyError", "ensure_topics", "topic_partitions"]
