"""Intake: terminal events from ``order-events`` into the delivery log, offsets after.

Each round polls a batch, turns its terminal events into deliveries (ids derived from order
and event, :mod:`.payload`), inserts the new ones in one transaction (``ON CONFLICT DO
NOTHING``: a redelivered event changes nothing) and only then commits the Kafka offsets.
A crash in between redelivers the batch, which is harmless. Records that do not decode are
skipped with a warning: the projector dead-letters them already, and they can never be a
callback.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import schemas  # noqa: F401 - registers every schema with the registry
from db.repositories.callbacks import record_deliveries
from schemas.registry import SchemaError, decode
from stream_agents.callbacks.payload import TERMINAL_EVENTS, NewDelivery, new_delivery
from stream_agents.callbacks.settings import CallbackSettings
from stream_agents.process import make_consumer
from stream_agents.projector import commit_offsets, describe, is_transient, sleep_unless_stopped

log = logging.getLogger(__name__)


class IntakeHaltedError(RuntimeError):
    """The database refused a batch for a reason no retry fixes; offsets stay uncommitted."""


@dataclass(slots=True)
class IntakeBatch:
    deliveries: list[NewDelivery] = field(default_factory=list)
    undecodable: int = 0
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def classify(records: list[ConsumerRecord[bytes, bytes]]) -> IntakeBatch:
    batch = IntakeBatch()
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        batch.offsets[tp] = max(batch.offsets.get(tp, 0), record.offset + 1)
        if record.value is None:
            batch.undecodable += 1
            continue
        try:
            env, message = decode(record.value)
        except SchemaError:
            batch.undecodable += 1
            continue
        if isinstance(message, TERMINAL_EVENTS):
            batch.deliveries.append(new_delivery(env, message))
    return batch


def write(sessions: sessionmaker[Session], batch: IntakeBatch, window_s: float) -> int:
    with sessions.begin() as session:
        return record_deliveries(session, batch.deliveries, datetime.now(UTC), window_s)


async def write_until_durable(
    sessions: sessionmaker[Session],
    batch: IntakeBatch,
    settings: CallbackSettings,
    stop: asyncio.Event,
) -> int | None:
    """Record ``batch``, retrying while the database is unavailable; None if stopped."""
    while True:
        try:
            return await asyncio.to_thread(write, sessions, batch, settings.retry_window_s)
        except SQLAlchemyError as exc:
            if not is_transient(exc):
                raise IntakeHaltedError(f"database refused deliveries: {describe(exc)}") from None
            log.warning("database unavailable (%s); keeping the batch", describe(exc))
        if await sleep_unless_stopped(stop, settings.db_retry_s):
            return None


async def intake_once(
    consumer: AIOKafkaConsumer,
    sessions: sessionmaker[Session],
    settings: CallbackSettings,
    stop: asyncio.Event,
) -> int:
    """One round: poll, record, commit; the number of new deliveries."""
    polled = await consumer.getmany(
        timeout_ms=settings.max_wait_ms, max_records=settings.batch_size
    )
    batch = classify([record for part in polled.values() for record in part])
    if not batch.offsets:
        return 0
    if batch.undecodable:
        log.warning("skipped %d undecodable records on order-events", batch.undecodable)
    created = 0
    if batch.deliveries:
        written = await write_until_durable(sessions, batch, settings, stop)
        if written is None:
            return 0  # stopped during an outage: the batch comes back
        created = written
    await commit_offsets(consumer, batch.offsets)
    if created:
        log.info("recorded %d new callback deliveries", created)
    return created


async def run_intake(
    settings: CallbackSettings, sessions: sessionmaker[Session], stop: asyncio.Event
) -> None:
    consumer = make_consumer(settings, settings.order_events_topic)
    await consumer.start()
    try:
        while not stop.is_set():
            await intake_once(consumer, sessions, settings, stop)
    finally:
        await consumer.stop()
