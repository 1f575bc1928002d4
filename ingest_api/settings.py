"""Settings of the ingest API process, from the environment (one class per process)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.repositories.second_factor import required_roles
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
    #: How long operators have to settle a dispute (``domain.disputes``); 24 h by default.
    dispute_deadline_s: int = Field(24 * 3600, gt=0)
    #: A bank notification still pays a deposit the payer confirmed if the phone received it
    #: at most this long after the order's expiry (ADR 0010).
    notification_grace_s: float = Field(120.0, ge=0, le=24 * 3600)
    public_base_url: str = "http://127.0.0.1:8000"
    topic_prefix: str = ""
    create_wait_s: float = Field(5.0, gt=0, description="wait this long for a card or a hold")
    command_wait_s: float = Field(5.0, gt=0)
    session_idle_s: int = Field(30 * 60, gt=0)
    session_absolute_s: int = Field(12 * 3600, gt=0)
    #: Sign-in throttling (``domain.login_throttle``): this many failed attempts in
    #: ``login_window_s`` lock a username, or a client address, for ``login_lock_base_s``,
    #: doubled for each further lock up to ``login_lock_max_s``.
    login_max_failures_user: int = Field(5, ge=1)
    login_max_failures_address: int = Field(20, ge=1)
    login_window_s: float = Field(15 * 60, gt=0)
    login_lock_base_s: float = Field(1.0, gt=0)
    login_lock_max_s: float = Field(15 * 60, gt=0)
    #: Peers (comma-separated addresses) whose ``X-Forwarded-For`` names the client: a
    #: reverse proxy in front of the API, or the console's host. Empty: the TCP peer counts.
    trusted_proxies: str = ""
    #: Serve ``/docs``, ``/redoc`` and ``/openapi.json``; unset: everywhere but production.
    api_docs_public: bool | None = None
    readiness_timeout_s: float = Field(3.0, gt=0)
    #: Database connections kept open. Every blocking database call runs on one of the
    #: thread pool's 40 workers (anyio's default); with fewer pooled connections, the
    #: overflow ones are opened and closed per request under load (a PostgreSQL backend
    #: started and torn down each time).
    db_pool_size: int = Field(40, ge=1, le=200)
    db_max_overflow: int = Field(10, ge=0, le=200)
    #: Overload (``ingest_api.admission``, ``ingest_api.rate_limit``): at most this many
    #: requests in flight, the rest answered ``503 overloaded`` at once; each partner at
    #: most ``partner_rate_per_s`` requests a second with bursts of ``partner_burst``
    #: (``0``: unlimited), else ``429 rate_limited``; ``partner_rates`` overrides the rate
    #: per partner (JSON, ``{"shop": 50}``). Both answers carry ``Retry-After``.
    max_in_flight: int = Field(256, ge=1)
    overload_retry_after_s: int = Field(1, ge=1, le=60)
    partner_rate_per_s: float = Field(500.0, ge=0)
    partner_burst: int = Field(1000, ge=1)
    partner_rates: dict[str, float] = Field(default_factory=dict)
    #: API keys in memory (``ingest_api.key_ring``): polled every ``key_refresh_s``; a
    #: revoked key is refused at most ``key_max_stale_s`` after the revocation commits.
    key_refresh_s: float = Field(0.25, gt=0)
    key_max_stale_s: float = Field(1.0, gt=0, le=1.0)
    #: Console sessions are re-checked in the database at most this often per token; a
    #: session ended in another process stops working here within this time.
    session_cache_s: float = Field(1.0, ge=0, le=5.0)
    #: Roles that must sign in with a second factor (TOTP), comma-separated; ``admin``
    #: always must (``db.repositories.second_factor.required_roles``).
    totp_required_roles: str = "admin"
    #: How long the challenge between a sign-in's password and its code lasts.
    login_challenge_s: int = Field(300, ge=30, le=900)

    @property
    def second_factor_roles(self) -> frozenset[str]:
        return required_roles(self.totp_required_roles)

    @property
    def docs_public(self) -> bool:
        return self.env != "production" if self.api_docs_public is None else self.api_docs_public

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Self:
        if self.env == "production" and self.order_id_secret.get_secret_value() == DEV_SECRET:
            raise ValueError("KEEPER_ORDER_ID_SECRET must be set outside development")
        return self

    @model_validator(mode="after")
    def _known_second_factor_roles(self) -> Self:
        required_roles(self.totp_required_roles)  # raises on an unknown role
        return self

    @model_validator(mode="after")
    def _key_refresh_within_staleness(self) -> Self:
        if self.key_refresh_s >= self.key_max_stale_s:
            raise ValueError("KEEPER_KEY_REFRESH_S must be below KEEPER_KEY_MAX_STALE_S")
        return self

    @model_validator(mode="after")
    def _lock_base_within_max(self) -> Self:
        if self.login_lock_base_s > self.login_lock_max_s:
            raise ValueError("KEEPER_LOGIN_LOCK_BASE_S must not exceed KEEPER_LOGIN_LOCK_MAX_S")
        return self
