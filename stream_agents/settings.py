"""Settings of the stream agents process, from the environment (one class per process).

``topic_prefix`` and ``app_id`` exist so that tests (and a second deployment on a shared
broker) get topics, consumer groups and changelogs of their own without touching anyone
else's; production leaves the prefix empty.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEEPER_AGENTS_", extra="ignore", validate_by_name=True
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KEEPER_KAFKA_BOOTSTRAP_SERVERS"),
    )
    app_id: str = Field("keeper-agents", min_length=1, max_length=200)
    topic_prefix: str = Field(
        "", validation_alias=AliasChoices("KEEPER_AGENTS_TOPIC_PREFIX", "KEEPER_TOPIC_PREFIX")
    )
    #: How often the order agent looks for ``new`` orders past their deadline.
    expiry_interval_s: float = Field(1.0, gt=0)
    store: str = "memory://"
    datadir: Path = Path(".local/agents")
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    #: Kafka's default is 5 min; a shorter age lets a worker notice new topics sooner.
    metadata_max_age_ms: int = Field(300_000, gt=0)
    topic_replication_factor: int = Field(1, ge=1)
    #: How long the group waits for a silent worker (one killed -9, say) before handing its
    #: partitions to the others; Faust's default of 60 s stalls those partitions that long.
    session_timeout_s: float = Field(10.0, ge=6.0, le=300.0)
    heartbeat_interval_s: float = Field(2.0, gt=0)

    def topic(self, name: str) -> str:
        """The broker-side name of catalogue topic ``name`` for this deployment."""
        return self.topic_prefix + name

    def brokers(self) -> list[str]:
        return [f"kafka://{server.strip()}" for server in self.kafka_bootstrap_servers.split(",")]
