"""One at-least-once batch consumer: poll, classify, write until durable, commit.

The projector, the card projector and the callbacks intake are this loop with a
:class:`Step` of their own (how a record becomes items to write, and how items are written).
Each round of :meth:`BatchConsumer.once`:

1. **poll** up to ``batch_size`` records, waiting at most ``max_wait_ms`` (``getmany``); every
   record's offset is noted, to be committed once the batch is durable;
2. **classify** each record (:attr:`Step.classify`): the items it becomes (none: the record
   is only committed past), or why it can never be written (it is dead-lettered); the items
   are ordered by :attr:`Step.rank`, stably (a projector's order events before its postings);
3. **write** them through :func:`stream_agents.quarantine.settle`: in one transaction when it
   can, poison records isolated by bisection and dead-lettered with the rejected ones, a
   transient failure retried with back-off while the offsets stay where they are, a fatal one
   raised as :class:`~stream_agents.failures.ConsumerHaltedError` (the process halts with
   nothing committed); stopped during an outage, the round ends without a commit;
4. **commit** the offsets (:func:`commit_offsets`), then count the batch in the metrics
   (``metrics.batch_done``) and in :class:`Progress` (totals and lag, logged every
   ``log_interval_s``).

A crash anywhere before step 4 redelivers the batch, whose writes are idempotent: exactly-once
effects (ADR 0004, ADR 0007; docs/reliability.md, "Poison records"). Logs carry counts, lag
and coordinates only, never payloads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from stream_agents import metrics
from stream_agents.quarantine import Backoff, DeadLetters, Entry, Isolated, Record, Rejected, settle

log = logging.getLogger(__name__)


class Summable(Protocol):
    def __add__(self, other: Any, /) -> Any: ...


T = TypeVar("T")
R = TypeVar("R", bound=Summable)


class Consumer(Protocol):
    """What the loop needs of an ``AIOKafkaConsumer`` (an in-memory fake in unit tests)."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]: ...

    def assignment(self) -> set[TopicPartition]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


def first(_: object) -> int:
    """The rank of a step whose items keep their poll order."""
    return 0


@dataclass(frozen=True, slots=True)
class Step(Generic[T, R]):
    """What one consumer makes of its records.

    ``classify`` turns a record into the items to write, or into the reason it can never be
    written (a string: the record is dead-lettered). ``write`` writes items in one
    transaction; it blocks (it runs on a worker thread) and is idempotent. ``nothing`` is the
    result of writing nothing, ``describe`` a result's text for the progress log.
    """

    classify: Callable[[Record], list[T] | str]
    write: Callable[[Sequence[T]], R]
    nothing: R
    describe: Callable[[R], str] = str
    rank: Callable[[T], int] = first


@dataclass(frozen=True, slots=True)
class Polling:
    """How a consumer polls, retries and reports (from its settings)."""

    name: str  # in logs: "projector", "card projector", "callbacks intake"
    batch_size: int
    max_wait_ms: int
    backoff: Backoff
    #: The process label of the consumer metrics (None: not counted there).
    metrics_label: str | None = None
    #: The deployment's topic prefix, left out of the metrics' topic labels.
    topic_prefix: str = ""
    log_interval_s: float = 10.0


@dataclass(slots=True)
class Batch(Generic[T]):
    """A poll, classified: what to write (in write order), what is refused, what to commit."""

    records: list[Record] = field(default_factory=list)
    entries: list[Entry[T]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    #: Per partition, the offset to commit once the batch is durable (last offset + 1).
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def track(record: Record, offsets: dict[TopicPartition, int]) -> None:
    """Note ``record``'s offset as done once its batch is written (commit the next one)."""
    tp = TopicPartition(record.topic, record.partition)
    offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)


def classify_poll(
    records: Iterable[Record],
    classify: Callable[[Record], list[T] | str],
    rank: Callable[[T], int] = first,
) -> Batch[T]:
    """Classify every record of a poll into a :class:`Batch` (no I/O)."""
    batch: Batch[T] = Batch()
    for record in records:
        batch.records.append(record)
        track(record, batch.offsets)
        items = classify(record)
        if isinstance(items, str):
            batch.rejected.append(Rejected(record, items))
        else:
            batch.entries += [Entry(record, item) for item in items]
    batch.entries.sort(key=lambda entry: rank(entry.item))  # stable: poll order within a rank
    return batch


async def commit_offsets(consumer: Consumer, offsets: dict[TopicPartition, int]) -> bool:
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
class Progress(Generic[R]):
    """Running totals, logged at most every ``interval_s`` (each batch at DEBUG)."""

    name: str
    interval_s: float
    written: R
    records: int = 0
    dead_letters: int = 0
    batches: int = 0
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    last_log: float = field(default_factory=time.monotonic)

    def add(self, batch: Batch[Any], outcome: Isolated[R]) -> None:
        self.records += len(batch.records)
        self.dead_letters += len(outcome.rejected)
        self.batches += 1
        for result in outcome.results:
            self.written = self.written + result
        self.positions.update(batch.offsets)

    def lag(self, consumer: Consumer) -> int:
        """Records behind the high-water mark on the partitions this member has read."""
        assigned = consumer.assignment()
        return sum(
            max(0, (consumer.highwater(tp) or position) - position)
            for tp, position in self.positions.items()
            if tp in assigned
        )

    def report(
        self, batch: Batch[Any], dead: int, elapsed_s: float, lag: int, text: Callable[[R], str]
    ) -> None:
        log.debug(
            "%s: batch of %d (written %d, dead %d) in %.0f ms, lag %d",
            self.name,
            len(batch.records),
            len(batch.entries),
            dead,
            elapsed_s * 1000,
            lag,
        )
        if time.monotonic() - self.last_log < self.interval_s:
            return
        self.last_log = time.monotonic()
        log.info(
            "%s: %d records in %d batches (dead-lettered %d): %s; lag %d",
            self.name,
            self.records,
            self.batches,
            self.dead_letters,
            text(self.written),
            lag,
        )


class BatchConsumer(Generic[T, R]):
    """The loop around one started consumer; the caller owns starting and stopping it."""

    def __init__(
        self, consumer: Consumer, letters: DeadLetters, step: Step[T, R], polling: Polling
    ) -> None:
        self.consumer, self.letters, self.step, self.polling = consumer, letters, step, polling
        self.progress = Progress(polling.name, polling.log_interval_s, step.nothing)

    async def poll(self) -> Batch[T]:
        polled = await self.consumer.getmany(
            timeout_ms=self.polling.max_wait_ms, max_records=self.polling.batch_size
        )
        records = (record for partition in polled.values() for record in partition)
        return classify_poll(records, self.step.classify, self.step.rank)

    async def once(self, stop: asyncio.Event) -> Isolated[R] | None:
        """One round: poll, write (quarantining poison), dead-letter, then commit offsets.

        None when there was nothing to do, or when ``stop`` was set during an outage (the
        offsets stay, the batch comes back).
        """
        batch = await self.poll()
        if not batch.records:
            return None
        started = time.monotonic()
        outcome = await settle(
            self.step.write,
            batch.entries,
            batch.rejected,
            dead_letters=self.letters,
            backoff=self.polling.backoff,
            stop=stop,
        )
        if outcome is None:
            return None
        await commit_offsets(self.consumer, batch.offsets)
        elapsed_s, dead = time.monotonic() - started, len(outcome.rejected)
        if self.polling.metrics_label is not None:
            by_topic = metrics.topic_counts(batch.records, self.polling.topic_prefix)
            metrics.batch_done(self.polling.metrics_label, by_topic, elapsed_s, dead)
        self.progress.add(batch, outcome)
        lag = self.progress.lag(self.consumer)
        self.progress.report(batch, dead, elapsed_s, lag, self.step.describe)
        return outcome

    async def run(
        self, stop: asyncio.Event, between: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        """Rounds until ``stop`` is set, awaiting ``between()`` after each one (periodic
        work of the process: the card projector's sweeps)."""
        try:
            while not stop.is_set():
                await self.once(stop)
                if between is not None:
                    await between()
        finally:
            log.info("%s stopped after %d records", self.polling.name, self.progress.records)
