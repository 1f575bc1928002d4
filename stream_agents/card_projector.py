"""The card projector: ``card-turnover`` and ``card-alerts`` into PostgreSQL, plus expiry.

``python -m stream_agents.card_projector`` runs one member of the consumer group
``keeper-card-projector``. Like the order projector (:mod:`stream_agents.projector`, whose
plumbing it reuses) it writes a polled batch in one transaction and commits the offsets only
afterwards, so at-least-once delivery plus idempotent writes
(:mod:`db.repositories.turnover`) give exactly-once effects:

* window updates are versioned upserts into ``card_turnover``;
* alerts are recorded once per id in ``card_alerts``; a ``holiday_started`` alert also
  extends ``cards.holiday_until`` (audited, by ``system:card-monitor``): the pool agent
  already stopped handing the card out when the monitor sent it ``card.pause``.

Every ``expiry_sweep_interval_s`` it also sweeps the cards (:func:`sweep_expiry`): cards
expiring within ``expiry_horizon_days`` get an ``expiring_soon`` alert, expired ones are
retired and their configuration republished to ``config-cards`` (the pool agent never
handed them out anyway: eligibility compares ``expires_on`` with today).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import schemas  # noqa: F401 - registers every schema with the registry
from db.repositories import turnover as repo
from schemas.registry import SchemaError, decode
from schemas.topics import CARD_ALERTS, CARD_TURNOVER
from schemas.turnover import CardAlerted, TurnoverUpdated
from stream_agents.config_publisher import publish_configs
from stream_agents.order_agent import epoch_ms_now
from stream_agents.process import make_consumer, make_producer, run_process
from stream_agents.projector import (
    ProjectorHaltedError,
    ProjectorSettings,
    Rejected,
    commit_offsets,
    describe,
    is_transient,
    projector_engine,
    publish_dead_letters,
    sleep_unless_stopped,
)

log = logging.getLogger(__name__)


class CardProjectorSettings(ProjectorSettings):
    """The order projector's settings, under ``KEEPER_CARD_PROJECTOR_``, plus expiry."""

    model_config = SettingsConfigDict(env_prefix="KEEPER_CARD_PROJECTOR_")

    group_id: str = "keeper-card-projector"
    #: Time zone of "today" for expiry (the same as the agents' ``card_time_zone``).
    card_time_zone: str = Field(
        "UTC",
        validation_alias=AliasChoices(
            "KEEPER_CARD_PROJECTOR_CARD_TIME_ZONE", "KEEPER_AGENTS_CARD_TIME_ZONE"
        ),
    )
    expiry_horizon_days: int = Field(30, ge=0, le=3660)
    #: How often expiry is swept; 0 switches the sweep off.
    expiry_sweep_interval_s: float = Field(3600.0, ge=0)

    @property
    def turnover_topic(self) -> str:
        return self.topic_prefix + CARD_TURNOVER.name

    @property
    def alerts_topic(self) -> str:
        return self.topic_prefix + CARD_ALERTS.name


@dataclass(slots=True)
class CardBatch:
    windows: list[TurnoverUpdated] = field(default_factory=list)
    alerts: list[CardAlerted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def classify(record: ConsumerRecord[bytes, bytes], batch: CardBatch, alerts_topic: str) -> None:
    tp = TopicPartition(record.topic, record.partition)
    batch.offsets[tp] = max(batch.offsets.get(tp, 0), record.offset + 1)
    if record.value is None:
        batch.rejected.append(Rejected(record, "empty record"))
        return
    try:
        env, message = decode(record.value)
    except SchemaError as exc:
        batch.rejected.append(Rejected(record, str(exc)))
        return
    if record.topic == alerts_topic and isinstance(message, CardAlerted):
        batch.alerts.append(message)
    elif record.topic != alerts_topic and isinstance(message, TurnoverUpdated):
        batch.windows.append(message)
    else:
        batch.rejected.append(Rejected(record, f"unexpected message type {env.type!r}"))


def write_batch(engine: Engine, batch: CardBatch) -> tuple[int, int]:
    """One transaction: windows, alerts, holidays. Returns (windows, alerts) written."""
    with Session(engine) as session, session.begin():
        conn = session.connection()
        windows = repo.upsert_turnover(conn, batch.windows)
        alerts = repo.insert_alerts(conn, [repo.alert_row(a) for a in batch.alerts])
        repo.extend_holidays(session, batch.alerts)
    return windows, alerts


async def write_until_durable(
    engine: Engine, batch: CardBatch, settings: CardProjectorSettings, stop: asyncio.Event
) -> tuple[int, int] | None:
    delay = settings.retry_initial_s
    while True:
        try:
            return await asyncio.to_thread(write_batch, engine, batch)
        except repo.UnknownCardError as exc:
            raise ProjectorHaltedError(f"projection refused: {exc}") from None
        except SQLAlchemyError as exc:
            if not is_transient(exc):
                raise ProjectorHaltedError(f"database refused a batch: {describe(exc)}") from None
            log.warning("database unavailable (%s); retry in %.2fs", describe(exc), delay)
        if await sleep_unless_stopped(stop, delay):
            return None
        delay = min(delay * 2, settings.retry_max_s)


def sweep(engine: Engine, settings: CardProjectorSettings, now_ms: int) -> repo.ExpirySweep:
    tz = ZoneInfo(settings.card_time_zone)
    with Session(engine) as session, session.begin():
        return repo.sweep_expiry(session, now_ms, settings.expiry_horizon_days, tz)


async def sweep_and_publish(engine: Engine, settings: CardProjectorSettings) -> repo.ExpirySweep:
    """Run the expiry sweep, then publish the retired cards' configurations."""
    result = await asyncio.to_thread(sweep, engine, settings, epoch_ms_now())
    if result.retired:
        await publish_configs(
            settings.kafka_bootstrap_servers,
            cards=result.retired,
            topic_prefix=settings.topic_prefix,
        )
    log.info(
        "expiry sweep: %d retired, %d expiring-soon alerts, %d expired alerts",
        len(result.retired),
        result.expiring_alerts,
        result.expired_alerts,
    )
    return result


async def project_once(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    engine: Engine,
    settings: CardProjectorSettings,
    stop: asyncio.Event,
) -> int:
    polled = await consumer.getmany(
        timeout_ms=settings.max_wait_ms, max_records=settings.batch_size
    )
    batch = CardBatch()
    for records in polled.values():
        for record in records:
            classify(record, batch, settings.alerts_topic)
    if not batch.offsets:
        return 0
    if batch.rejected:
        await publish_dead_letters(producer, settings, batch.rejected)
    if await write_until_durable(engine, batch, settings, stop) is None:
        return 0
    await commit_offsets(consumer, batch.offsets)
    return len(batch.windows) + len(batch.alerts)


async def run_card_projector(settings: CardProjectorSettings, stop: asyncio.Event) -> None:
    engine = projector_engine(settings)
    consumer = make_consumer(settings, settings.turnover_topic, settings.alerts_topic)
    producer = make_producer(settings)
    projected, next_sweep = 0, time.monotonic()
    try:
        await producer.start()
        await consumer.start()
        log.info(
            "card projector %s: %s, %s",
            settings.consumer_group,
            settings.turnover_topic,
            settings.alerts_topic,
        )
        while not stop.is_set():
            projected += await project_once(consumer, producer, engine, settings, stop)
            if settings.expiry_sweep_interval_s and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + settings.expiry_sweep_interval_s
                await sweep_and_publish(engine, settings)
    finally:
        await consumer.stop()
        await producer.stop()
        engine.dispose()
        log.info("card projector stopped after %d messages", projected)


def main() -> None:
    """``python -m stream_agents.card_projector``; exits 2 when halted."""
    run_process(
        "card projector",
        run_card_projector,
        CardProjectorSettings(),
        halted=ProjectorHaltedError,
        log=log,
    )


if __name__ == "__main__":
    main()
