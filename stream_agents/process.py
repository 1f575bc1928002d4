"""What the consumer processes share: their common settings and how each one runs.

The projector, the card projector and the callbacks process are plain aiokafka consumers
that write PostgreSQL and commit their offsets only afterwards. Each has one settings class
derived from :class:`ConsumerSettings` (its own ``KEEPER_<PROCESS>_`` prefix; the broker and
the database under the names every process uses) and a ``main`` that hands its loop to
:func:`run_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from db.settings import DEFAULT_DATABASE_URL
from schemas.topics import DEAD_LETTERS, ORDER_EVENTS
from telemetry import exposition, logs

#: The exit status of a process halted by a fatal failure, one every record would meet (the
#: database refuses the login, a table is missing): offsets stay uncommitted.
HALTED_EXIT_STATUS: Final = 2


def topic_prefix_field(own_variable: str) -> Any:
    """``topic_prefix`` from ``own_variable``, else from ``KEEPER_TOPIC_PREFIX``.

    The prefix is prepended to every topic and to the group id, so test runs and
    environments sharing one broker never read each other's events.
    """
    return Field("", validation_alias=AliasChoices(own_variable, "KEEPER_TOPIC_PREFIX"))


class ConsumerSettings(BaseSettings):
    """The settings every consumer process has. A subclass sets its ``env_prefix``, its
    ``group_id`` and ``topic_prefix = topic_prefix_field("KEEPER_<PROCESS>_TOPIC_PREFIX")``."""

    model_config = SettingsConfigDict(
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KEEPER_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "KEEPER_DATABASE_URL"),
    )
    topic_prefix: str
    group_id: str
    batch_size: int = Field(500, gt=0, le=10_000)
    max_wait_ms: int = Field(500, gt=0)
    db_connect_timeout_s: int = Field(5, gt=0)
    #: Kafka's default is 5 min; lower it where topics may appear after the process starts.
    metadata_max_age_ms: int = Field(300_000, gt=0)

    @property
    def consumer_group(self) -> str:
        return self.topic_prefix + self.group_id

    @property
    def order_events_topic(self) -> str:
        return self.topic_prefix + ORDER_EVENTS.name

    @property
    def dead_letters_topic(self) -> str:
        return self.topic_prefix + DEAD_LETTERS.name


def make_consumer(settings: ConsumerSettings, *topics: str) -> AIOKafkaConsumer:
    """A member of the process's group on ``topics``, for batches committed by hand."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        enable_auto_commit=False,  # offsets move only after the database commit
        auto_offset_reset="earliest",  # a new group reads the whole retained history
        isolation_level="read_committed",
        max_poll_records=settings.batch_size,
        metadata_max_age_ms=settings.metadata_max_age_ms,
    )


def make_producer(settings: ConsumerSettings) -> AIOKafkaProducer:
    """The process's producer (dead letters): every replica acknowledges, no duplicates."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )


class Client(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def running(*clients: Client, engine: Engine | None = None) -> AsyncIterator[None]:
    """``clients`` started in order, then stopped in reverse on the way out (however it is
    left: a stop, a halt, a cancel), and ``engine`` disposed last."""
    try:
        for client in clients:
            await client.start()
        yield
    finally:
        for client in reversed(clients):
            await client.stop()
        if engine is not None:
            engine.dispose()


def configure_logging() -> None:
    """INFO and up on stderr: JSON lines, readable ones on a terminal (ADR 0009;
    ``infra/keeper.sh`` waits for start-up lines)."""
    logs.configure(logging.INFO)


SettingsT = TypeVar("SettingsT", bound=ConsumerSettings)
#: A process's loop: runs until the event is set (``run_projector``, ``run_callbacks``...).
Loop = Callable[[SettingsT, asyncio.Event], Awaitable[None]]


async def serve(run: Loop[SettingsT], settings: SettingsT) -> None:
    """``run`` until SIGTERM or SIGINT, then let it finish its current step and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run(settings, stop)


def run_process(
    name: exposition.Process,
    run: Loop[SettingsT],
    settings: SettingsT,
    *,
    halted: type[Exception],
    log: logging.Logger,
) -> None:
    """A process's ``main``: log, expose its metrics (``name`` is its
    :data:`telemetry.exposition.Process`), :func:`serve`; exit with status 2 when ``halted``
    is raised.

    ``halted`` is the process's error for a fatal failure (not a poison record, which is
    quarantined; see :mod:`stream_agents.quarantine`): the process
    stops with its offsets uncommitted, so no event is ever skipped.
    """
    configure_logging()
    exposition.serve(name)
    try:
        asyncio.run(serve(run, settings))
    except halted as exc:
        log.critical("%s halted, offsets not committed: %s", name, exc)
        raise SystemExit(HALTED_EXIT_STATUS) from None
