"""The projector process: ``order-events`` and ``ledger-events`` into PostgreSQL.

``python -m stream_agents.projector`` runs one member of the consumer group
``keeper-projector``. It is a plain aiokafka consumer rather than a Faust agent because its
unit of work is a *batch* committed in one database transaction, and its offsets must be
committed only after that transaction: at-least-once delivery plus the idempotent writes of
:mod:`db.projection` give exactly-once effects. Each round:

1. poll up to ``batch_size`` records (waiting at most ``max_wait_ms``);
2. decode them; bytes that are not a known event for their topic go to ``dead-letters``
   (raw value untouched, the reason in headers) and the projector moves on;
3. write the batch in one transaction and commit it, retrying while the database is
   unreachable (back-off, offsets untouched);
4. commit the batch's Kafka offsets.

A crash anywhere before step 4 redelivers the batch, which then changes nothing. An event the
database refuses (an unknown partner or card: see :mod:`db.projection`) stops the process
with :class:`ProjectorHaltedError` and nothing committed, so no event is ever skipped.

Logs carry counts, lag and error codes only: never payloads, SQL parameters or database error
details that could echo card data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

import schemas  # noqa: F401 - registers every schema with the registry
from db.engine import make_engine
from db.projection import (
    ORDER_EVENT_TYPES,
    LedgerItem,
    OrderItem,
    ProjectionCounts,
    ProjectionError,
    project_ledger_events,
    project_order_events,
)
from schemas.ledger import LedgerPosted
from schemas.registry import SchemaError, decode
from schemas.topics import LEDGER_EVENTS
from stream_agents.process import (
    ConsumerSettings,
    make_consumer,
    make_producer,
    run_process,
    topic_prefix_field,
)

log = logging.getLogger(__name__)

#: SQLSTATE prefixes worth retrying: the batch may succeed unchanged once the server is back
#: or a concurrent writer is gone (08 connection exception, 40 serialization failure or
#: deadlock, 53 too many connections / out of resources, 57P server shutting down).
TRANSIENT_SQLSTATES: Final = ("08", "40", "53", "57P")
FOREIGN_KEY_VIOLATION: Final = "23503"
#: Error fields safe to log: names and the primary message, never the row or parameters.
DIAGNOSTICS: Final = (
    ("constraint", "constraint_name"),
    ("table", "table_name"),
    ("message", "message_primary"),
)


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


class ProjectorHaltedError(RuntimeError):
    """The database refused a batch for a reason no retry can fix; offsets stay uncommitted."""


# --- decoding a poll into a batch -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that can never become a row, and why (the reason carries no payload data)."""

    record: ConsumerRecord[bytes, bytes]
    reason: str


@dataclass(slots=True)
class Batch:
    orders: list[OrderItem] = field(default_factory=list)
    ledger: list[LedgerItem] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    #: Per partition, the offset to commit once the batch is durable (last offset + 1).
    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.orders) + len(self.ledger) + len(self.rejected)


def classify(record: ConsumerRecord[bytes, bytes], batch: Batch, ledger_topic: str) -> None:
    """Decode ``record`` into ``batch``: an order event, a posting, or a rejected record.

    A record is only accepted as the message type its topic carries: a decodable message on
    the wrong topic is as unusable to the projector as garbage.
    """
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
    if record.topic == ledger_topic:
        if isinstance(message, LedgerPosted):
            batch.ledger.append((env, message))
            return
    elif isinstance(message, ORDER_EVENT_TYPES):
        batch.orders.append((env, message))
        return
    batch.rejected.append(Rejected(record, f"unexpected message type {env.type!r} on this topic"))


def make_batch(records: Iterable[ConsumerRecord[bytes, bytes]], ledger_topic: str) -> Batch:
    batch = Batch()
    for record in records:
        classify(record, batch, ledger_topic)
    return batch


def dead_letter_headers(rejected: Rejected, consumer_group: str) -> list[tuple[str, bytes]]:
    """Where the record came from and why it was refused, so it can be found and replayed."""
    record = rejected.record
    return [
        ("keeper.error", rejected.reason.encode()),
        ("keeper.source.topic", record.topic.encode()),
        ("keeper.source.partition", str(record.partition).encode()),
        ("keeper.source.offset", str(record.offset).encode()),
        ("keeper.source.key", record.key or b""),
        ("keeper.consumer", consumer_group.encode()),
    ]


async def publish_dead_letters(
    producer: AIOKafkaProducer, settings: ProjectorSettings, rejected: Sequence[Rejected]
) -> None:
    """Publish and await every dead letter before the offsets move past its record."""
    sends = [
        await producer.send(
            settings.dead_letters_topic,
            key=item.record.topic.encode(),
            value=item.record.value,
            headers=dead_letter_headers(item, settings.consumer_group),
        )
        for item in rejected
    ]
    await asyncio.gather(*sends)
    for item in rejected:
        log.warning(
            "dead-lettered %s[%d]@%d: %s",
            item.record.topic,
            item.record.partition,
            item.record.offset,
            item.reason,
        )


# --- writing a batch --------------------------------------------------------------------


def write_batch(
    engine: Engine, orders: Sequence[OrderItem], ledger: Sequence[LedgerItem]
) -> ProjectionCounts:
    """One transaction for the whole batch (runs on a worker thread: the driver blocks).

    The deferred ledger-balance trigger fires at COMMIT, so a refusal may come from the
    commit itself; either way nothing of the batch is kept.
    """
    with engine.begin() as conn:
        return project_order_events(conn, orders) + project_ledger_events(conn, ledger)


def sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "pgcode", None)


def is_transient(exc: BaseException) -> bool:
    """True when the same batch may succeed if simply tried again later.

    Lost or refused connections (PostgreSQL restarting, a terminated backend, the network)
    and lock conflicts qualify; constraint violations, bad data and SQL errors never do.
    """
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    code = sqlstate(exc)
    if code is not None and code.startswith(TRANSIENT_SQLSTATES):
        return True
    # No SQLSTATE: the server never answered (refused, reset, closed mid-statement).
    lost = exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return lost and code is None


def describe(exc: BaseException) -> str:
    """A log-safe account of a database error: class, SQLSTATE, constraint, table, message.

    ``str(exc)`` is not used: it can contain the failing row (``DETAIL: Failing row
    contains ...``) or SQL parameters, which may include card data. Only two details are
    added: why a connection failed (no statement involved) and the missing key of a
    foreign-key violation (an id), which is what an operator needs to repair it.
    """
    if not isinstance(exc, DBAPIError):
        return type(exc).__name__
    code, diag = sqlstate(exc), getattr(exc.orig, "diag", None)
    parts = [type(exc.orig).__name__, f"sqlstate={code}"]
    for label, attribute in DIAGNOSTICS:
        if value := getattr(diag, attribute, None):
            parts.append(f"{label}={value}")
    if code is None and isinstance(exc, OperationalError | InterfaceError):
        parts.append(f"reason={(str(exc.orig).strip().splitlines() or ['?'])[0]}")
    if code == FOREIGN_KEY_VIOLATION and (detail := getattr(diag, "message_detail", None)):
        parts.append(f"detail={detail}")
    return " ".join(parts)


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; True if ``stop`` was set meanwhile (the caller should give up)."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def write_until_durable(
    engine: Engine, batch: Batch, settings: ProjectorSettings, stop: asyncio.Event
) -> ProjectionCounts | None:
    """Write ``batch``, retrying transient failures with back-off; None if stopped first.

    The batch stays in memory meanwhile and no offset moves, so a restart in the middle of
    an outage redelivers exactly what was not yet written.
    """
    delay, attempt = settings.retry_initial_s, 0
    while True:
        try:
            return await asyncio.to_thread(write_batch, engine, batch.orders, batch.ledger)
        except ProjectionError as exc:
            raise ProjectorHaltedError(f"projection refused: {exc}") from None
        except SQLAlchemyError as exc:
            if not is_transient(exc):
                raise ProjectorHaltedError(f"database refused a batch: {describe(exc)}") from None
            attempt += 1
            log.warning(
                "database unavailable (%s); keeping %d records, retry %d in %.2fs",
                describe(exc),
                len(batch),
                attempt,
                delay,
            )
        if await sleep_unless_stopped(stop, delay):
            return None
        delay = min(delay * 2, settings.retry_max_s)


# --- offsets and progress ---------------------------------------------------------------


async def commit_offsets(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> bool:
    """Commit the offsets of partitions still assigned; False if the commit did not land.

    A failed commit loses nothing: the records are redelivered (to this member or to the new
    owner after a rebalance) and their writes are no-ops, and the next commit covers them.
    """
    assigned = consumer.assignment()
    owned = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if not owned:
        return False
    try:
        await consumer.commit(owned)
    except KafkaError as exc:
        log.warning("offset commit failed (%s); the batch will be redelivered", exc)
        return False
    return True


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

    def add(self, batch: Batch, counts: ProjectionCounts) -> None:
        self.records += len(batch)
        self.dead_letters += len(batch.rejected)
        self.batches += 1
        self.written += counts
        self.positions.update(batch.offsets)

    def lag(self, consumer: AIOKafkaConsumer) -> int:
        """Records behind the high-water mark on the partitions this member has read."""
        assigned = consumer.assignment()
        return sum(
            max(0, (consumer.highwater(tp) or position) - position)
            for tp, position in self.positions.items()
            if tp in assigned
        )

    def report(self, batch: Batch, consumer: AIOKafkaConsumer, elapsed_s: float) -> None:
        lag = self.lag(consumer)
        log.debug(
            "batch of %d (orders %d, ledger %d, dead %d) in %.0f ms, lag %d",
            len(batch),
            len(batch.orders),
            len(batch.ledger),
            len(batch.rejected),
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
    return make_batch(records, settings.ledger_events_topic)


async def project_once(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    engine: Engine,
    settings: ProjectorSettings,
    stop: asyncio.Event,
    progress: Progress,
) -> None:
    """One round: poll, dead-letter, write, then commit offsets (in that order)."""
    batch = await poll(consumer, settings)
    if not batch.offsets:
        return
    started = time.monotonic()
    if batch.rejected:
        await publish_dead_letters(producer, settings, batch.rejected)
    counts = await write_until_durable(engine, batch, settings, stop)
    if counts is None:
        return  # stopped during an outage: leave the offsets, the batch comes back
    await commit_offsets(consumer, batch.offsets)
    progress.add(batch, counts)
    progress.report(batch, consumer, time.monotonic() - started)


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Project until ``stop`` is set; raises :class:`ProjectorHaltedError` on a refused batch.

    Cancelling the task is a crash as far as the data is concerned: whatever was written but
    not yet committed to Kafka is redelivered to the next run and changes nothing.
    """
    shown_url = make_url(settings.database_url).render_as_string(hide_password=True)
    engine = projector_engine(settings)
    consumer = make_consumer(settings, settings.order_events_topic, settings.ledger_events_topic)
    producer = make_producer(settings)
    progress = Progress(settings.log_interval_s)
    try:
        await producer.start()
        await consumer.start()
        log.info(
            "projector %s: %s, %s -> %s",
            settings.consumer_group,
            settings.order_events_topic,
            settings.ledger_events_topic,
            shown_url,
        )
        while not stop.is_set():
            await project_once(consumer, producer, engine, settings, stop, progress)
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


if __name__ == "__main__":
    main()
