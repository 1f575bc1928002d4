"""Intake: terminal events from ``order-events`` into the delivery log, offsets after.

Each round polls a batch, turns its terminal events into deliveries (ids derived from order
and event, :mod:`.payload`), inserts the new ones (``ON CONFLICT DO NOTHING``: a redelivered
event changes nothing) through :func:`stream_agents.quarantine.settle` -- in one transaction
when it can; a delivery the database refuses for good is isolated and its record
dead-lettered, the rest recorded -- and only then commits the Kafka offsets. A crash in
between redelivers the batch, which is harmless.

Records that do not decode are skipped with a warning, not dead-lettered: the projector reads
the same topic and dead-letters them already (one dead letter per bad record, not two), and
they can never be a callback; once a fix makes them decodable, the projector's retry
re-publishes them to ``order-events`` and this intake sees them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy.orm import Session, sessionmaker

import schemas  # noqa: F401 - registers every schema with the registry
from db.repositories.callbacks import record_deliveries
from schemas.callbacks import NewDelivery
from stream_agents.callbacks.payload import TERMINAL_EVENTS, new_delivery
from stream_agents.callbacks.settings import CallbackSettings
from stream_agents.failures import ConsumerHaltedError
from stream_agents.process import make_consumer
from stream_agents.quarantine import (
    Backoff,
    DeadLetters,
    Entry,
    accept,
    commit_offsets,
    settle,
)

log = logging.getLogger(__name__)

#: A fatal failure: the database refuses every write (see :mod:`stream_agents.failures`).
IntakeHaltedError = ConsumerHaltedError


@dataclass(slots=True)
class IntakeBatch:
    deliveries: list[Entry[NewDelivery]] = field(default_factory=list)
    undecodable: int = 0
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def classify(records: list[ConsumerRecord[bytes, bytes]]) -> IntakeBatch:
    batch = IntakeBatch()
    for record in records:
        decoded = accept(record, batch.offsets)
        if isinstance(decoded, str):  # the projector dead-letters it; here it is skipped
            batch.undecodable += 1
            continue
        env, message = decoded
        if isinstance(message, TERMINAL_EVENTS):
            batch.deliveries.append(Entry(record, new_delivery(env, message)))
    return batch


def write(
    sessions: sessionmaker[Session], deliveries: Sequence[NewDelivery], window_s: float
) -> int:
    with sessions.begin() as session:
        return record_deliveries(session, deliveries, datetime.now(UTC), window_s)


async def intake_once(
    consumer: AIOKafkaConsumer,
    sessions: sessionmaker[Session],
    letters: DeadLetters,
    settings: CallbackSettings,
    stop: asyncio.Event,
) -> int:
    """One round: poll, record (quarantining poison), dead-letter, commit; new deliveries."""
    polled = await consumer.getmany(
        timeout_ms=settings.max_wait_ms, max_records=settings.batch_size
    )
    batch = classify([record for part in polled.values() for record in part])
    if not batch.offsets:
        return 0
    if batch.undecodable:
        log.warning("skipped %d undecodable records on order-events", batch.undecodable)
    outcome = await settle(
        lambda deliveries: write(sessions, deliveries, settings.retry_window_s),
        batch.deliveries,
        [],
        dead_letters=letters,
        backoff=Backoff(settings.db_retry_s, settings.db_retry_s),
        stop=stop,
    )
    if outcome is None:
        return 0  # stopped during an outage: the batch comes back
    await commit_offsets(consumer, batch.offsets)
    created = sum(outcome.results)
    if created:
        log.info("recorded %d new callback deliveries", created)
    return created


async def run_intake(
    settings: CallbackSettings,
    sessions: sessionmaker[Session],
    letters: DeadLetters,
    stop: asyncio.Event,
) -> None:
    consumer = make_consumer(settings, settings.order_events_topic)
    await consumer.start()
    try:
        while not stop.is_set():
            await intake_once(consumer, sessions, letters, settings, stop)
    finally:
        await consumer.stop()
