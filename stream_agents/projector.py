"""The projector process: ``order-events``, ``ledger-events`` and ``dead-letters`` into
PostgreSQL.

``python -m stream_agents.projector`` runs one member of the consumer group
``keeper-projector``. It is a plain aiokafka consumer rather than a Faust agent because its
unit of work is a *batch* committed in one database transaction, and its offsets must be
committed only after that transaction: at-least-once delivery plus the idempotent writes of
:mod:`db.projection` give exactly-once effects. Each round:

1. poll up to ``batch_size`` records (waiting at most ``max_wait_ms``);
2. decode them; bytes that are not a known event for their topic are rejected;
3. write the batch -- order events, then postings, then dead-letter rows -- through
   :func:`stream_agents.quarantine.settle`: in one transaction when it can; a record the
   database refuses for good (a NUL in a string, an unknown partner or card) is isolated by
   bisection and dead-lettered with the rejected ones, the rest is written; while the
   database is unreachable, retry with back-off, offsets untouched;
4. commit the batch's Kafka offsets.

A crash anywhere before step 4 redelivers the batch, which then changes nothing. Records of
``dead-letters`` (from every consumer and agent) become rows of ``dead_letters``
(:mod:`db.repositories.dead_letters`), the durable list that the console, ``make reconcile``
and ``python -m stream_agents.dead_letters`` work from. Only a fatal failure (the database
refuses every write: authentication, missing tables) stops the process, with
:class:`ProjectorHaltedError` and nothing committed.

Logs carry counts, lag and error codes only: never payloads, SQL parameters or database error
details that could echo card data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

import schemas  # noqa: F401 - registers every schema with the registry
from db.engine import make_engine
from db.projection import (
    ORDER_EVENT_TYPES,
    LedgerItem,
    OrderItem,
    ProjectionCounts,
    project_ledger_events,
    project_order_events,
)
from db.repositories import dead_letters
from db.repositories.dead_letters import NewDeadLetter
from schemas.ledger import LedgerPosted
from schemas.topics import LEDGER_EVENTS
from stream_agents import metrics
from stream_agents.failures import ConsumerHaltedError, describe, is_transient
from stream_agents.process import (
    ConsumerSettings,
    make_consumer,
    make_producer,
    run_process,
    topic_prefix_field,
)
from stream_agents.quarantine import (
    Backoff,
    DeadLetters,
    Entry,
    Isolated,
    Rejected,
    accept,
    commit_offsets,
    dead_letter_headers,
    letter_of,
    settle,
    sleep_unless_stopped,
    track,
)

log = logging.getLogger(__name__)

#: A fatal failure: the database refuses every write (see :mod:`stream_agents.failures`).
ProjectorHaltedError = ConsumerHaltedError
#: What the projector writes: an order event, a posting, or a dead letter's row.
Item = OrderItem | LedgerItem | NewDeadLetter


class ProjectorSettings(ConsumerSettings):
    """Settings from the environment (``KEEPER_PROJECTOR_*``; shared names as elsewhere)."""

    model_config = SettingsConfigDict(env_prefix="KEEPER_PROJECTOR_")

    topic_prefix: str = topic_prefix_field("KEEPER_PROJECTOR_TOPIC_PREFIX")
    group_id: str = "keeper-projector"
    retry_initial_s: float = Field(0.2, gt=0)
    retry_max_s: float = Field(10.0, gt=0)
    log_interval_s: float = Field(10.0, ge=0)

    @property
    def ledger_events_topic(self) -> str:
        return self.topic_prefix + LEDGER_EVENTS.name

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.retry_initial_s, self.retry_max_s)


# --- decoding a poll into a batch -------------------------------------------------------


@dataclass(slots=True)
class Batch:
    """A poll, decoded: what to write (in write order), what is rejected, what to commit."""

    order_entries: list[Entry[OrderItem]] = field(default_factory=list)
    ledger_entries: list[Entry[LedgerItem]] = field(default_factory=list)
    letter_entries: list[Entry[NewDeadLetter]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    #: Per partition, the offset to commit once the batch is durable (last offset + 1).
    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def orders(self) -> list[OrderItem]:
        return [entry.item for entry in self.order_entries]

    @property
    def ledger(self) -> list[LedgerItem]:
        return [entry.item for entry in self.ledger_entries]

    def entries(self) -> list[Entry[Item]]:
        """Order events before postings (a posting refers to its order), then dead letters."""
        return [*self.order_entries, *self.ledger_entries, *self.letter_entries]

    def __len__(self) -> int:
        return (
            len(self.order_entries)
            + len(self.ledger_entries)
            + len(self.letter_entries)
            + (len(self.rejected))
        )


def classify(
    record: ConsumerRecord[bytes, bytes],
    batch: Batch,
    ledger_topic: str,
    letters_topic: str | None = None,
) -> None:
    """Decode ``record`` into ``batch``: an order event, a posting, a dead letter, or rejected.

    A record is only accepted as the message type its topic carries: a decodable message on
    the wrong topic is as unusable to the projector as garbage.
    """
    if record.topic == letters_topic:
        track(record, batch.offsets)
        if (letter := letter_of(record)) is not None:
            batch.letter_entries.append(Entry(record, letter))
        return
    decoded = accept(record, batch.offsets)
    if isinstance(decoded, str):
        batch.rejected.append(Rejected(record, decoded))
        return
    env, message = decoded
    if record.topic == ledger_topic:
        if isinstance(message, LedgerPosted):
            batch.ledger_entries.append(Entry(record, (env, message)))
            return
    elif isinstance(message, ORDER_EVENT_TYPES):
        batch.order_entries.append(Entry(record, (env, message)))
        return
    batch.rejected.append(Rejected(record, f"unexpected message type {env.type!r} on this topic"))


def make_batch(
    records: Iterable[ConsumerRecord[bytes, bytes]],
    ledger_topic: str,
    letters_topic: str | None = None,
) -> Batch:
    batch = Batch()
    for record in records:
        classify(record, batch, ledger_topic, letters_topic)
    return batch


# --- writing a batch --------------------------------------------------------------------


def write_batch(
    engine: Engine,
    orders: Sequence[OrderItem],
    ledger: Sequence[LedgerItem],
    letters: Sequence[NewDeadLetter] = (),
) -> ProjectionCounts:
    """One transaction (runs on a worker thread: the driver blocks).

    The deferred ledger-balance trigger fires at COMMIT, so a refusal may come from the
    commit itself; either way nothing of the transaction is kept.
    """
    with engine.begin() as conn:
        counts = project_order_events(conn, orders) + project_ledger_events(conn, ledger)
        dead_letters.record(conn, letters)
        return counts


def write_items(engine: Engine, items: Sequence[Item]) -> ProjectionCounts:
    """:func:`write_batch` over a slice of :meth:`Batch.entries` (kept in that order)."""
    orders: list[OrderItem] = []
    ledger: list[LedgerItem] = []
    letters: list[NewDeadLetter] = []
    for item in items:
        if isinstance(item, NewDeadLetter):
            letters.append(item)
        elif isinstance(item[1], LedgerPosted):
            ledger.append(item)
        else:
            orders.append(item)
    return write_batch(engine, orders, ledger, letters)


async def write_until_durable(
    engine: Engine,
    batch: Batch,
    settings: ProjectorSettings,
    stop: asyncio.Event,
    letters: DeadLetters,
) -> Isolated[ProjectionCounts] | None:
    """Write ``batch``, quarantining poison records; None if stopped during an outage.

    The batch stays in memory meanwhile and no offset moves, so a restart in the middle of
    an outage redelivers exactly what was not yet written.
    """
    return await settle(
        lambda items: write_items(engine, items),
        batch.entries(),
        batch.rejected,
        dead_letters=letters,
        backoff=settings.backoff,
        stop=stop,
    )


# --- progress ----------------------------------------------------------------------------


@dataclass(slots=True)
class Progress:
    """Running totals, logged at most every ``interval_s`` (each batch at DEBUG)."""

    interval_s: float
    records: int = 0
    dead_letters: int = 0
    batches: int = 0
    written: ProjectionCounts = field(default_factory=ProjectionCounts)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    last_log: float = field(default_factory=time.monotonic)

    def add(self, batch: Batch, outcome: Isolated[ProjectionCounts]) -> None:
        self.records += len(batch)
        self.dead_letters += len(outcome.rejected)
        self.batches += 1
        self.written = sum(outcome.results, self.written)
        self.positions.update(batch.offsets)

    def lag(self, consumer: AIOKafkaConsumer) -> int:
        """Records behind the high-water mark on the partitions this member has read."""
        assigned = consumer.assignment()
        return sum(
            max(0, (consumer.highwater(tp) or position) - position)
            for tp, position in self.positions.items()
            if tp in assigned
        )

    def report(self, batch: Batch, dead: int, consumer: AIOKafkaConsumer, elapsed_s: float) -> None:
        lag = self.lag(consumer)
        log.debug(
            "batch of %d (orders %d, ledger %d, letters %d, dead %d) in %.0f ms, lag %d",
            len(batch),
            len(batch.order_entries),
            len(batch.ledger_entries),
            len(batch.letter_entries),
            dead,
            elapsed_s * 1000,
            lag,
        )
        if time.monotonic() - self.last_log < self.interval_s:
            return
        self.last_log = time.monotonic()
        log.info(
            "projected %d records in %d batches (dead-lettered %d): "
            "events %d, order rows %d, postings %d, balances %d; lag %d",
            self.records,
            self.batches,
            self.dead_letters,
            self.written.order_events,
            self.written.orders,
            self.written.postings,
            self.written.balances,
            lag,
        )


# --- the process ------------------------------------------------------------------------


def projector_engine(settings: ProjectorSettings) -> Engine:
    """One connection is enough (one writer thread); parameters never reach error text."""
    return make_engine(
        settings.database_url,
        hide_parameters=True,
        pool_size=1,
        max_overflow=0,
        connect_args={"connect_timeout": settings.db_connect_timeout_s},
    )


async def poll(consumer: AIOKafkaConsumer, settings: ProjectorSettings) -> Batch:
    polled = await consumer.getmany(
        timeout_ms=settings.max_wait_ms, max_records=settings.batch_size
    )
    records = (record for partition in polled.values() for record in partition)
    return make_batch(records, settings.ledger_events_topic, settings.dead_letters_topic)


async def project_once(
    consumer: AIOKafkaConsumer,
    letters: DeadLetters,
    engine: Engine,
    settings: ProjectorSettings,
    stop: asyncio.Event,
    progress: Progress,
) -> None:
    """One round: poll, write (quarantining poison), dead-letter, then commit offsets."""
    batch = await poll(consumer, settings)
    if not batch.offsets:
        return
    started = time.monotonic()
    outcome = await write_until_durable(engine, batch, settings, stop, letters)
    if outcome is None:
        return  # stopped during an outage: leave the offsets, the batch comes back
    await commit_offsets(consumer, batch.offsets)
    records = [entry.record for entry in batch.entries()] + [r.record for r in batch.rejected]
    metrics.batch_done(
        "projector",
        metrics.topic_counts(records, settings.topic_prefix),
        time.monotonic() - started,
        len(outcome.rejected),
    )
    progress.add(batch, outcome)
    progress.report(batch, len(outcome.rejected), consumer, time.monotonic() - started)


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Project until ``stop`` is set; raises :class:`ProjectorHaltedError` when the database
    refuses every write (fatal: see :mod:`stream_agents.failures`).

    Cancelling the task is a crash as far as the data is concerned: whatever was written but
    not yet committed to Kafka is redelivered to the next run and changes nothing.
    """
    shown_url = make_url(settings.database_url).render_as_string(hide_password=True)
    engine = projector_engine(settings)
    topics = (settings.order_events_topic, settings.ledger_events_topic)
    consumer = make_consumer(settings, *topics, settings.dead_letters_topic)
    producer = make_producer(settings)
    letters = DeadLetters(producer, settings.dead_letters_topic, settings.consumer_group)
    progress = Progress(settings.log_interval_s)
    try:
        await producer.start()
        await consumer.start()
        log.info(
            "projector %s: %s, %s, %s -> %s",
            settings.consumer_group,
            *topics,
            settings.dead_letters_topic,
            shown_url,
        )
        while not stop.is_set():
            await project_once(consumer, letters, engine, settings, stop, progress)
    finally:
        await consumer.stop()
        await producer.stop()
        engine.dispose()
        log.info("projector stopped after %d records", progress.records)


def main() -> None:
    """``python -m stream_agents.projector``: until SIGTERM or SIGINT; exits 2 when halted
    (see ProjectorHaltedError)."""
    run_process(
        "projector", run_projector, ProjectorSettings(), halted=ProjectorHaltedError, log=log
    )


__all__ = [  # the names other modules and tests import from here
    "Batch",
    "ProjectorHaltedError",
    "ProjectorSettings",
    "commit_offsets",
    "dead_letter_headers",
    "describe",
    "is_transient",
    "make_batch",
    "run_projector",
    "sleep_unless_stopped",
]


if __name__ == "__main__":
    main()
