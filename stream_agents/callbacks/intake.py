"""Intake: terminal events from ``order-events`` into the delivery log, offsets after.

It is the one batch loop of :mod:`stream_agents.batch_consumer`: each round polls a batch,
turns its terminal events into deliveries (ids derived from order and event,
:mod:`.payload`), inserts the new ones (``ON CONFLICT DO NOTHING``: a redelivered event
changes nothing) through :func:`stream_agents.quarantine.settle` -- in one transaction when it
can; a delivery the database refuses for good is isolated and its record dead-lettered, the
rest recorded -- and only then commits the Kafka offsets. A crash in between redelivers the
batch, which is harmless.

Records that do not decode are skipped with a warning, not dead-lettered: the projector reads
the same topic and dead-letters them already (one dead letter per bad record, not two), and
they can never be a callback; once a fix makes them decodable, the projector's retry
re-publishes them to ``order-events`` and this intake sees them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

import schemas  # noqa: F401 - registers every schema with the registry
from db.repositories.callbacks import record_deliveries
from schemas.callbacks import NewDelivery
from stream_agents.batch_consumer import BatchConsumer, Polling, Step
from stream_agents.callbacks.payload import TERMINAL_EVENTS, new_delivery
from stream_agents.callbacks.settings import CallbackSettings
from stream_agents.failures import ConsumerHaltedError
from stream_agents.process import make_consumer, running
from stream_agents.quarantine import Backoff, DeadLetters, Record, decode_record

log = logging.getLogger(__name__)

#: A fatal failure: the database refuses every write (see :mod:`stream_agents.failures`).
IntakeHaltedError = ConsumerHaltedError


def classify(record: Record) -> list[NewDelivery]:
    """The delivery of a terminal event; none for any other record."""
    decoded = decode_record(record)
    if isinstance(decoded, str):  # the projector dead-letters it; here it is skipped
        log.warning(
            "skipped undecodable record %s[%d]@%d on order-events",
            record.topic,
            record.partition,
            record.offset,
        )
        return []
    env, message = decoded
    return [new_delivery(env, message)] if isinstance(message, TERMINAL_EVENTS) else []


def write(
    sessions: sessionmaker[Session], window_s: float, deliveries: Sequence[NewDelivery]
) -> int:
    with sessions.begin() as session:
        return record_deliveries(session, deliveries, datetime.now(UTC), window_s)


def intake_step(
    sessions: sessionmaker[Session], settings: CallbackSettings
) -> Step[NewDelivery, int]:
    return Step(
        classify=classify,
        write=partial(write, sessions, settings.retry_window_s),
        nothing=0,
        describe="{} new callback deliveries".format,
    )


async def run_intake(
    settings: CallbackSettings,
    sessions: sessionmaker[Session],
    letters: DeadLetters,
    stop: asyncio.Event,
) -> None:
    consumer = make_consumer(settings, settings.order_events_topic)
    backoff = Backoff(settings.db_retry_s, settings.db_retry_s)
    polling = Polling("callbacks intake", settings.batch_size, settings.max_wait_ms, backoff)
    async with running(consumer):
        await BatchConsumer(consumer, letters, intake_step(sessions, settings), polling).run(stop)
