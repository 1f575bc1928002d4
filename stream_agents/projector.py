"""The projector process: ``order-events``, ``ledger-events`` and ``dead-letters`` into
PostgreSQL.

``python -m stream_agents.projector`` runs one member of the consumer group
``keeper-projector``. It is a plain aiokafka consumer rather than a Faust agent because its
unit of work is a *batch* committed in one database transaction, and its offsets must be
committed only after that transaction: at-least-once delivery plus the idempotent writes of
:mod:`db.projection` give exactly-once effects. It is the one batch loop of
:mod:`stream_agents.batch_consumer` with the projector's :func:`classify` and
:func:`write_items`. Each round:

1. poll up to ``batch_size`` records (waiting at most ``max_wait_ms``);
2. decode them; bytes that are not a known event for their topic are rejected;
3. write the batch -- order events, then postings, then dead-letter rows -- through
   :func:`stream_agents.quarantine.settle`: in one transaction when it can; a record the
   database refuses for good (a NUL in a string, an unknown partner or card) is isolated by
   bisection and dead-lettered with the rejected ones, the rest is written; while the
   database is unreachable, retry with back-off, offsets untouched;
4. commit the batch's Kafka offsets.

A deposit the batch closes unpaid (expired, rejected) with a bank notification an operator
attached to it becomes a dispute's case in the same transaction (:func:`hand_over_attached`).

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
from collections.abc import Sequence
from functools import partial

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

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
from db.repositories import dead_letters, notifications
from db.repositories.dead_letters import NewDeadLetter
from domain.disputes import DISPUTABLE
from domain.orders import Direction
from schemas.ledger import LedgerPosted
from schemas.topics import LEDGER_EVENTS
from stream_agents.batch_consumer import BatchConsumer, Polling, Step
from stream_agents.failures import ConsumerHaltedError, describe, is_transient
from stream_agents.process import (
    ConsumerSettings,
    make_consumer,
    make_producer,
    run_process,
    running,
    topic_prefix_field,
)
from stream_agents.quarantine import (
    Backoff,
    DeadLetters,
    Record,
    dead_letter_headers,
    decode_record,
    letter_of,
    sleep_unless_stopped,
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

    def polling(self, name: str, metrics_label: str) -> Polling:
        """How the batch loop polls, retries and reports (``name`` in logs)."""
        return Polling(
            name,
            self.batch_size,
            self.max_wait_ms,
            self.backoff,
            metrics_label=metrics_label,
            topic_prefix=self.topic_prefix,
            log_interval_s=self.log_interval_s,
        )


# --- classifying a record ---------------------------------------------------------------


def classify(
    record: Record, ledger_topic: str, letters_topic: str | None = None
) -> list[Item] | str:
    """An order event, a posting, a dead letter's row (or none: a parked callback), or why
    ``record`` is rejected.

    A record is only accepted as the message type its topic carries: a decodable message on
    the wrong topic is as unusable to the projector as garbage.
    """
    if record.topic == letters_topic:
        letter = letter_of(record)
        return [] if letter is None else [letter]
    decoded = decode_record(record)
    if isinstance(decoded, str):
        return decoded
    env, message = decoded
    if record.topic == ledger_topic:
        if isinstance(message, LedgerPosted):
            return [(env, message)]
    elif isinstance(message, ORDER_EVENT_TYPES):
        return [(env, message)]
    return f"unexpected message type {env.type!r} on this topic"


def rank(item: Item) -> int:
    """Order events before postings (a posting refers to its order), then dead letters."""
    if isinstance(item, NewDeadLetter):
        return 2
    return 1 if isinstance(item[1], LedgerPosted) else 0


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
        hand_over_attached(conn, orders)
        dead_letters.record(conn, letters)
        return counts


def hand_over_attached(conn: Connection, orders: Sequence[OrderItem]) -> None:
    """A deposit that closes unpaid with a bank notification an operator attached to it while
    it was open becomes a dispute's case, in the transaction that records the closing
    (:func:`db.repositories.notifications.hand_over_closed`; ADR 0010 addendum)."""
    closed = {
        event.order.uid
        for _, event in orders
        if event.order.direction is Direction.DEPOSIT and event.order.status in DISPUTABLE
    }
    if not closed:
        return
    with Session(bind=conn) as session:
        handed = notifications.hand_over_closed(session, closed)
        session.flush()
    if handed:
        log.info("projector: %d attached notification(s) handed to disputes", len(handed))


def write_items(engine: Engine, items: Sequence[Item]) -> ProjectionCounts:
    """:func:`write_batch` over items in :func:`rank` order (kept in that order)."""
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


def progress_text(written: ProjectionCounts) -> str:
    return (
        f"events {written.order_events}, order rows {written.orders}, "
        f"postings {written.postings}, balances {written.balances}"
    )


def projector_step(engine: Engine, settings: ProjectorSettings) -> Step[Item, ProjectionCounts]:
    return Step(
        classify=partial(
            classify,
            ledger_topic=settings.ledger_events_topic,
            letters_topic=settings.dead_letters_topic,
        ),
        write=partial(write_items, engine),
        nothing=ProjectionCounts(),
        describe=progress_text,
        rank=rank,
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
    step, polling = projector_step(engine, settings), settings.polling("projector", "projector")
    loop = BatchConsumer(consumer, letters, step, polling)
    async with running(producer, consumer, engine=engine):
        log.info(
            "projector %s: %s, %s, %s -> %s",
            settings.consumer_group,
            *topics,
            settings.dead_letters_topic,
            shown_url,
        )
        await loop.run(stop)


def main() -> None:
    """``python -m stream_agents.projector``: until SIGTERM or SIGINT; exits 2 when halted
    (see ProjectorHaltedError)."""
    run_process(
        "projector", run_projector, ProjectorSettings(), halted=ProjectorHaltedError, log=log
    )


__all__ = [  # the names other modules and tests import from here
    "ProjectorHaltedError",
    "ProjectorSettings",
    "dead_letter_headers",
    "describe",
    "is_transient",
    "run_projector",
    "sleep_unless_stopped",
]


if __name__ == "__main__":
    main()
