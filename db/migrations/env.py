"""Alembic environment: which database, and what the models say the schema should be.

The URL comes from ``sqlalchemy.url`` when a caller put one on the Config (``db.migrate``,
tests), otherwise from ``DATABASE_URL`` via ``db.settings`` -- never from alembic.ini, so no
credentials live in the repository's configuration.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from db.models import Base
from db.settings import DatabaseSettings

config = context.config
target_metadata = Base.metadata

# Only the alembic CLI configures logging from the ini; programmatic callers (pytest, the
# Makefile via db.migrate) keep their own logging untouched.
if config.config_file_name is not None and config.cmd_opts is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or DatabaseSettings().database_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) for review by a human or a DBA."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # NullPool: a migration is a one-shot process; no connection should outlive it.
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                # PostgreSQL DDL is transactional: run all pending revisions in one transaction
                # so a failed upgrade leaves the schema exactly where it started.
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
