"""Settings of the ingest API process, from the environment (one class per process)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.settings import DEFAULT_DATABASE_URL

DEV_SECRET = "dev-only-order-id-secret-change-me"  # noqa: S105 - refused outside development


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEPER_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KEEPER_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "KEEPER_DATABASE_URL"),
    )
    order_id_secret: SecretStr = SecretStr(DEV_SECRET)
    max_body_bytes: int = Field(64 * 1024, gt=0)
    public_base_url: str = "http://127.0.0.1:8000"
    topic_prefix: str = ""
    create_wait_s: float = Field(5.0, gt=0, description="wait this long for a card or a hold")
    command_wait_s: float = Field(5.0, gt=0)
    session_idle_s: int = Field(30 * 60, gt=0)
    session_absolute_s: int = Field(12 * 3600, gt=0)
    readiness_timeout_s: float = Field(3.0, gt=0)
    #: Database connections kept open. Every blocking database call runs on one of the
    #: thread pool's 40 workers (anyio's default); with fewer pooled connections, the
    #: overflow ones are opened and closed per request under load (a PostgreSQL backend
    #: started and torn down each time).
    db_pool_size: int = Field(40, ge=1, le=200)
    db_max_overflow: int = Field(10, ge=0, le=200)

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Self:
        if self.env == "production" and self.order_id_secret.get_secret_value() == DEV_SECRET:
            raise ValueError("KEEPER_ORDER_ID_SECRET must be set outside development")
        return self
