"""Where the durable record lives.

One setting, read from ``DATABASE_URL``, so every process (ingest, agents, console, Alembic,
tests) agrees on the database without passing URLs around. The default is the project-owned
cluster started by ``infra/postgres/pg.sh up``.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg2://keeper:keeper@127.0.0.1:5544/keeper"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
