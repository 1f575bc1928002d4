"""Settings of the stream agents process, from the environment (one class per process).

``topic_prefix`` and ``app_id`` exist so that tests (and a second deployment on a shared
broker) get topics, consumer groups and changelogs of their own without touching anyone
else's; production leaves the prefix empty.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, field_validator
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
    #: How often the desk looks for ``new`` orders past their deadline.
    expiry_interval_s: float = Field(1.0, gt=0)
    #: How often the desk rebuilds its indexes (deadlines, retention) from its table in full,
    #: as a backstop: they are kept up to date as orders change and rebuilt whenever the
    #: table's recovery completes (after every rebalance), and a full pass reads every order.
    deadline_rescan_s: float = Field(300.0, gt=0)
    #: A desk batch: at most this many commands, gathered for at most ``desk_batch_within_s``
    #: (the most a command waits for company; a full batch goes at once).
    desk_batch_max: int = Field(500, ge=1, le=10_000)
    desk_batch_within_s: float = Field(0.004, gt=0, le=1.0)
    #: How long a finished order stays in the desk's table after its last change; then the
    #: desk forgets it and PostgreSQL alone holds it (ADR 0008). It must exceed the longest
    #: time a command can wait in ``order-commands`` (the desk refuses an opening older than
    #: this once it forgot orders of that age).
    order_retention_h: float = Field(48.0, gt=0, le=24 * 366)
    #: How often the desk looks for finished orders past their retention.
    retention_sweep_s: float = Field(60.0, gt=0)
    #: How long the agents' producer waits to fill a request (Kafka's ``linger.ms``).
    producer_linger_ms: int = Field(2, ge=0, le=100)
    store: str = "memory://"
    datadir: Path = Path(".local/agents")
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    #: Workers that keep a copy of each desk partition besides its owner (ADR 0008). None by
    #: default: with the in-memory store a promoted copy is read again from the changelog's
    #: start like a cold one, so it saves no restore time, and a copy costs memory and
    #: reads. (The ``cards`` global table is on every worker whatever this says.)
    table_standby_replicas: int = Field(0, ge=0, le=3)
    #: Kafka's default is 5 min; a shorter age lets a worker notice new topics sooner.
    metadata_max_age_ms: int = Field(300_000, gt=0)
    topic_replication_factor: int = Field(1, ge=1)
    #: How long the group waits for a silent worker (one killed -9, say) before handing its
    #: partitions to the others; Faust's default of 60 s stalls those partitions that long.
    session_timeout_s: float = Field(10.0, ge=6.0, le=300.0)
    heartbeat_interval_s: float = Field(2.0, gt=0)
    #: Static group membership (Kafka's ``group.instance.id``, ADR 0012): a stable id per
    #: worker slot, unique within the app id. A replacement started with the same id takes
    #: the old member's partitions at once instead of after the session timeout; a worker
    #: that never comes back still loses them after the session timeout. Empty: dynamic
    #: membership. ``infra/keeper.sh`` gives each slot ``<host>-agents[-N]``.
    group_instance_id: str = Field("", max_length=200, pattern=r"^[A-Za-z0-9._-]*$")

    # --- card monitoring (docs/card-monitoring.md) ---
    #: Time zone of the "day" and "month" (and wall-clock "hour") turnover windows.
    card_time_zone: str = "UTC"
    #: Shares of a limit (percent) whose crossing raises a ``limit_share`` alert.
    card_alert_pct: list[int] = Field(default_factory=lambda: [80, 100], min_length=1)
    #: Rest after a day window reaches 100 % of a daily limit (0: rule off).
    holiday_on_daily_limit_h: float = Field(12.0, ge=0, le=24 * 366)
    #: Rest after this many approved orders in one ``holiday_streak_window`` (0: rule off).
    holiday_after_orders: int = Field(0, ge=0)
    holiday_after_orders_h: float = Field(1.0, ge=0, le=24 * 366)
    holiday_streak_window: str = Field("hour", pattern="^(hour|day|month)$")
    #: How long after its end a window is kept and late events for it are still counted.
    turnover_keep_hours_h: int = Field(48, ge=1)
    turnover_keep_days_d: int = Field(62, ge=1)
    turnover_keep_months_d: int = Field(400, ge=1)

    @field_validator("card_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @field_validator("card_alert_pct")
    @classmethod
    def _percentages(cls, value: list[int]) -> list[int]:
        if any(not 1 <= pct <= 1000 for pct in value):
            raise ValueError("alert shares are percentages between 1 and 1000")
        return sorted(set(value))

    def topic(self, name: str) -> str:
        """The broker-side name of catalogue topic ``name`` for this deployment."""
        return self.topic_prefix + name

    def brokers(self) -> list[str]:
        return [f"kafka://{server.strip()}" for server in self.kafka_bootstrap_servers.split(",")]
