"""Keeper's stream agents as one Faust app: the desk (orders, cards, balances, turnover).

``create_app(settings)`` builds an app without touching the network, so tests can build
several (each with its own id and topic prefix) and the CLI can use the module-level
``app``. The topics must exist before the app starts: :func:`prepare` creates them with the
catalogue's partitions and policies (Faust would otherwise let the broker auto-create them
with its defaults, and a table would then disagree with its source on the partition count).

The app never ``ask``\\s another agent, so Faust's reply-topic quirks (docs/decisions/0001)
do not apply; processing is Faust's default at-least-once, which every handler tolerates.
"""

from __future__ import annotations

import faust

from schemas.topics import ORDER_COMMANDS
from schemas.topology import ensure_topics
from stream_agents import membership, rewind
from stream_agents.bus import Bus
from stream_agents.desk import agent as desk
from stream_agents.desk import metrics
from stream_agents.settings import AgentSettings
from telemetry import logs
from telemetry.exposition import MetricsSettings


def create_app(settings: AgentSettings | None = None) -> faust.App:
    """The agents' app for ``settings`` (from the environment if not given)."""
    settings = settings or AgentSettings()
    # a rebalance never skips records nobody committed yet, nor commits past dropped ones
    rewind.install(settings.app_id, gapless=[settings.topic(ORDER_COMMANDS.name)])
    if settings.group_instance_id:
        membership.install()  # a replaced worker stops instead of taking its id back
    app = faust.App(
        settings.app_id,
        broker=settings.brokers(),
        store=settings.store,
        datadir=str(settings.datadir),
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        topic_replication_factor=settings.topic_replication_factor,
        table_standby_replicas=settings.table_standby_replicas,
        consumer_metadata_max_age_ms=settings.metadata_max_age_ms,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        consumer_group_instance_id=settings.group_instance_id or None,
        producer_linger=settings.producer_linger_ms / 1000,
        key_serializer="raw",
        value_serializer="raw",
        logging_config=logs.dict_config(),  # JSON lines, readable on a terminal (ADR 0009)
    )
    bus = Bus(app, settings)
    desk.install(app, bus, settings)
    metrics.install(app, settings, MetricsSettings())  # /metrics on the Faust web server
    return app


async def prepare(settings: AgentSettings) -> list[str]:
    """Create the pipeline's topics (idempotent); returns the names created."""
    return await ensure_topics(
        settings.kafka_bootstrap_servers,
        replication_factor=settings.topic_replication_factor,
        prefix=settings.topic_prefix,
    )


#: For the Faust command line: ``faust -A stream_agents.app worker`` (topics made beforehand).
app = create_app()
