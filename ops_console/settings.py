"""Settings of the console process, from the environment (one class per process).

``KEEPER_CONSOLE_*`` names the console's own settings; the database, broker, topic prefix and
session idle limit fall back to the names the other processes read, so one environment
configures the whole system.
"""

from __future__ import annotations

import os

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.repositories.second_factor import required_roles
from db.settings import DEFAULT_DATABASE_URL


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEPER_CONSOLE_", extra="ignore", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("KEEPER_CONSOLE_DATABASE_URL", "DATABASE_URL"),
    )
    api_base_url: str = "http://127.0.0.1:8000"
    #: How often the operator queue re-reads PostgreSQL, in seconds: 0.5 keeps the p99 from
    #: a payer's "I have paid" to the order on the page under 1 s (docs/benchmarks.md), at
    #: three small queries per open queue tab twice a second.
    refresh_s: float = Field(0.5, gt=0)
    api_timeout_s: float = Field(15.0, gt=0)
    #: Idle limit of a console session; the API enforces the same limit on every call.
    session_idle_s: int = Field(
        30 * 60,
        gt=0,
        validation_alias=AliasChoices("KEEPER_CONSOLE_SESSION_IDLE_S", "KEEPER_SESSION_IDLE_S"),
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices(
            "KEEPER_CONSOLE_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    topic_prefix: str = Field(
        "", validation_alias=AliasChoices("KEEPER_CONSOLE_TOPIC_PREFIX", "KEEPER_TOPIC_PREFIX")
    )
    #: System health (``ops_console.health``): Prometheus's HTTP API when it answers, else
    #: each process's ``/metrics`` (JSON ``{"api": "http://.../metrics", ...}``; empty: the
    #: ports ``make run`` uses, from the same variables ``infra/keeper.sh`` reads).
    prometheus_url: str = Field(
        default_factory=lambda: (
            f"http://127.0.0.1:{os.environ.get('KEEPER_PROMETHEUS_PORT', '9090')}"
        )
    )
    metrics_targets: dict[str, str] = Field(default_factory=dict)
    #: Publish configuration changes to the compacted config topics (off: PostgreSQL only).
    publish_config: bool = True
    publish_timeout_s: float = Field(15.0, gt=0)
    #: The API's per-partner request rate, shown read-only to partners in the portal: the
    #: same variables the API reads (``KEEPER_PARTNER_RATE_PER_S``, ``KEEPER_PARTNER_BURST``,
    #: ``KEEPER_PARTNER_RATES``), with the API's defaults.
    partner_rate_per_s: float = Field(
        500.0, ge=0, validation_alias=AliasChoices("KEEPER_PARTNER_RATE_PER_S")
    )
    partner_burst: int = Field(1000, ge=1, validation_alias=AliasChoices("KEEPER_PARTNER_BURST"))
    partner_rates: dict[str, float] = Field(
        default_factory=dict, validation_alias=AliasChoices("KEEPER_PARTNER_RATES")
    )
    #: Roles that must sign in with a second factor (as for the API; ``admin`` always).
    totp_required_roles: str = Field(
        "admin",
        validation_alias=AliasChoices(
            "KEEPER_CONSOLE_TOTP_REQUIRED_ROLES", "KEEPER_TOTP_REQUIRED_ROLES"
        ),
    )
    #: The name authenticator apps show next to the account.
    totp_issuer: str = "Keeper"

    @property
    def second_factor_roles(self) -> frozenset[str]:
        return required_roles(self.totp_required_roles)
