"""Create the pipeline's topics with their intended settings before any agent runs.

Faust creates the topics its agents consume, but with broker defaults; compacted config topics
and the retained event log need their own policy, so the topology is declared once in
:mod:`schemas.topics` and applied here, idempotently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)

_OK = 0
_TOPIC_ALREADY_EXISTS = 36


class TopologyError(RuntimeError):
    """The broker refused to create a topic of the topology."""


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec] = ALL_TOPICS,
    *,
    replication_factor: int = 1,
    prefix: str = "",
) -> list[str]:
    """Create the missing topics of ``specs``; return the names that were created."""
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
        if not wanted:
            return []
        response = await admin.create_topics(wanted)
        created = []
        for name, code, *_ in response.topic_errors:
            if code not in (_OK, _TOPIC_ALREADY_EXISTS):  # another worker may win the race
                raise TopologyError(f"cannot create topic {name}: error code {code}")
            if code == _OK:
                created.append(name)
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        await admin.close()


def main() -> None:
    """``python -m stream_agents.topology``: create the topology the agents' settings name
    (bootstrap servers, topic prefix, replication factor), like the worker does at start."""
    import asyncio

    from stream_agents.settings import AgentSettings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = AgentSettings(web_enabled=False)
    bootstrap = settings.kafka_bootstrap_servers
    created = asyncio.run(
        ensure_topics(
            bootstrap,
            replication_factor=settings.topic_replication_factor,
            prefix=settings.topic_prefix,
        )
    )
    print(f"topology: {len(created)} topics created, {len(ALL_TOPICS)} declared on {bootstrap}")


if __name__ == "__main__":
    main()
