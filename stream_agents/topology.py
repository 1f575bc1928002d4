"""``python -m stream_agents.topology``: create the pipeline's topics before any agent runs.

The catalogue lives in :mod:`schemas.topics` and is applied by
:func:`schemas.topology.ensure_topics`; this entry point only supplies the agents' settings
(bootstrap servers, topic prefix, replication factor), like the worker does at start.
"""

from __future__ import annotations

import asyncio
import logging

from schemas.topics import ALL_TOPICS
from schemas.topology import TopologyError, ensure_topics
from stream_agents.settings import AgentSettings


def main() -> None:
    """``python -m stream_agents.topology``: create the topology the agents' settings name
    (bootstrap servers, topic prefix, replication factor), like the worker does at start."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = AgentSettings(web_enabled=False)
    bootstrap = settings.kafka_bootstrap_servers
    try:
        created = asyncio.run(
            ensure_topics(
                bootstrap,
                replication_factor=settings.topic_replication_factor,
                prefix=settings.topic_prefix,
            )
        )
    except TopologyError as error:
        raise SystemExit(f"topology: {error}") from None
    print(f"topology: {len(created)} topics created, {len(ALL_TOPICS)} declared on {bootstrap}")


if __name__ == "__main__":
    main()
