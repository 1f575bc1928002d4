"""Poison records: isolate what can never be written, dead-letter it, go on with the rest.

The three consumers that write PostgreSQL in batches (:mod:`stream_agents.projector`,
:mod:`stream_agents.card_projector`, :mod:`stream_agents.callbacks.intake`) share this one
mechanism through their one loop, :mod:`stream_agents.batch_consumer`. It decodes a poll
into :class:`Entry` items (records that do not decode are :class:`Rejected` already) and
hands them to :func:`settle`, which

1. writes them with the consumer's ``write`` (one transaction per call, on a worker
   thread), all of them in one go first;
2. on a *permanent* failure (:mod:`stream_agents.failures`) bisects: each half is written in
   its own transaction, in the original order (a projector's order events stay before its
   postings), down to the single records that fail alone: :func:`isolate`;
3. on a *transient* failure, anywhere in 1 or 2, waits with back-off and starts again from
   1 (writes are idempotent, so what the first attempt wrote is written again as a no-op);
   a *fatal* failure raises :class:`~stream_agents.failures.ConsumerHaltedError`;
4. publishes every rejected record to ``dead-letters`` and waits for the acks, retrying
   while the broker is away.

Only then may the consumer commit its offsets: a crash before that redelivers the batch,
which writes nothing twice and at worst publishes a dead letter twice (stored once: see
:mod:`db.repositories.dead_letters`). A dead letter carries the raw value untouched, the
source record's key, and the coordinates and reason as headers (:func:`dead_letter_headers`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeAlias, TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord

from db.repositories.dead_letters import NewDeadLetter
from schemas.envelope import Envelope, Message
from schemas.registry import SchemaError, decode
from schemas.topics import ORDER_EVENTS
from stream_agents import letter_headers as h
from stream_agents.failures import ConsumerHaltedError, describe, is_fatal, is_transient
from stream_agents.letter_headers import clean

log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")

#: Topics keyed by order uid: a dead letter from one of them belongs to that order. (Commands
#: are keyed by desk; their order is read from the payload.)
ORDER_KEYED: Final = (ORDER_EVENTS.name,)

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that can never become a row, and why (the reason carries no payload data)."""

    record: Record
    reason: str


@dataclass(frozen=True, slots=True)
class Entry(Generic[T_co]):
    """One decoded record: what the consumer's ``write`` takes, and where it came from."""

    record: Record
    item: T_co


@dataclass(slots=True)
class Isolated(Generic[R]):
    """What :func:`isolate` wrote (one result per successful transaction) and refused."""

    results: list[R] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def __iadd__(self, other: Isolated[R]) -> Isolated[R]:
        self.results += other.results
        self.rejected += other.rejected
        return self


# --- isolating poison records -----------------------------------------------------------


def isolate(write: Callable[[Sequence[T]], R], entries: Sequence[Entry[T]]) -> Isolated[R]:
    """Write ``entries`` (in order); bisect around permanent failures. Blocking.

    Transient and fatal failures propagate: the caller retries (or halts) the whole batch.
    Whatever fails on its own, in a transaction of its own, is rejected with the reason.
    """
    if not entries:
        return Isolated()
    try:
        return Isolated(results=[write([entry.item for entry in entries])])
    except Exception as exc:  # sorted below: transient and fatal ones propagate
        if is_transient(exc) or is_fatal(exc):
            raise
        if len(entries) == 1:
            return Isolated(rejected=[Rejected(entries[0].record, describe(exc))])
    middle = len(entries) // 2
    outcome = isolate(write, entries[:middle])
    outcome += isolate(write, entries[middle:])
    return outcome


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float
    max_s: float


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; True if ``stop`` was set meanwhile (the caller should give up)."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def retrying(
    attempt: Callable[[], Awaitable[R]],
    *,
    what: str,
    held: int,
    backoff: Backoff,
    stop: asyncio.Event,
) -> R | None:
    """``attempt()`` until it succeeds; None if ``stop`` is set during a back-off.

    Transient failures are logged (``<what> unavailable``) and retried with doubling delays;
    a fatal one raises :class:`ConsumerHaltedError`; anything else propagates (a bug).
    """
    delay, tries = backoff.initial_s, 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if is_fatal(exc):
                raise ConsumerHaltedError(f"{what} refused every write: {describe(exc)}") from None
            if not is_transient(exc):
                raise
            tries += 1
            log.warning(
                "%s unavailable (%s); keeping %d records, retry %d in %.2fs",
                what,
                describe(exc),
                held,
                tries,
                delay,
            )
        if await sleep_unless_stopped(stop, delay):
            return None
        delay = min(delay * 2, backoff.max_s)


# --- dead letters -----------------------------------------------------------------------


def dead_letter_headers(rejected: Rejected, consumer_group: str) -> list[tuple[str, bytes]]:
    """Where the record came from and why it was refused, so it can be found and replayed."""
    record = rejected.record
    return h.build(
        rejected.reason,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        consumer=consumer_group,
    )


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """Publishes a consumer's rejected records to its ``dead-letters`` topic."""

    producer: AIOKafkaProducer
    topic: str
    consumer_group: str

    async def publish(self, rejected: Sequence[Rejected]) -> None:
        """Publish and await every dead letter before the offsets move past its record.

        A record read from the dead-letters topic itself is never sent back there (that
        would loop): it is logged and dropped, the only record a consumer ever drops.
        """
        sends = []
        for item in rejected:
            record = item.record
            coordinates = f"{record.topic}[{record.partition}]@{record.offset}"
            if record.topic == self.topic:
                log.error("dropped dead letter %s: %s", coordinates, clean(item.reason))
                continue
            sends.append(
                await self.producer.send(
                    self.topic,
                    key=record.topic.encode(),
                    value=record.value,
                    headers=dead_letter_headers(item, self.consumer_group),
                )
            )
            log.warning("dead-lettered %s: %s", coordinates, clean(item.reason))
        await asyncio.gather(*sends)


# --- the whole step ---------------------------------------------------------------------


async def settle(
    write: Callable[[Sequence[T]], R],
    entries: Sequence[Entry[T]],
    rejected: Sequence[Rejected],
    *,
    dead_letters: DeadLetters,
    backoff: Backoff,
    stop: asyncio.Event,
) -> Isolated[R] | None:
    """Write ``entries``, dead-letter the poison and ``rejected``; None if stopped first.

    When it returns an outcome, every entry is durable or dead-lettered and the caller may
    commit its offsets; on None (stopped during an outage) it must not.
    """
    held = len(entries) + len(rejected)
    outcome = await retrying(
        lambda: asyncio.to_thread(isolate, write, entries),
        what="database",
        held=held,
        backoff=backoff,
        stop=stop,
    )
    if outcome is None:
        return None
    outcome.rejected = [*rejected, *outcome.rejected]
    if outcome.rejected:
        published = await retrying(
            lambda: _published(dead_letters, outcome.rejected),
            what="broker",
            held=held,
            backoff=backoff,
            stop=stop,
        )
        if published is None:
            return None
    return outcome


def decode_record(record: Record) -> tuple[Envelope, Message] | str:
    """The start of every consumer's ``classify``: the record's envelope and message, or why
    it cannot be used (an empty record, or one that does not decode), for the caller to
    reject."""
    if record.value is None:
        return "empty record"
    try:
        return decode(record.value)
    except SchemaError as exc:
        return str(exc)


async def _published(dead_letters: DeadLetters, rejected: Sequence[Rejected]) -> bool:
    await dead_letters.publish(rejected)
    return True


# --- reading dead letters back (the projector stores them) ------------------------------


def letter_of(record: Record) -> NewDeadLetter | None:
    """The ``dead_letters`` row of a record on the dead-letters topic; None to skip it.

    Parked callbacks (``keeper.delivery_id``) are skipped on purpose: their durable record is
    ``callback_deliveries`` (status ``dead``) and their retry is ``callbacks resend``, while
    re-publishing their JSON to ``order-events`` would be wrong. A letter without usable
    source coordinates (written by an older version) is stored under its own coordinates in
    the dead-letters topic, which are unique too. Text is cleaned, so the row always fits.
    """
    headers = {name: value for name, value in record.headers or ()}
    if h.DELIVERY_ID in headers:
        return None
    source = _source(headers) or (record.topic, record.partition, record.offset, record.key)
    topic, partition, offset, key = source
    reason = headers.get(h.ERROR) or headers.get(h.LEGACY_REASON) or b"no reason given"
    return NewDeadLetter(
        consumer=_text(headers.get(h.CONSUMER) or b"unknown", 200),
        source_topic=_text(topic.encode(), 300),
        source_partition=partition,
        source_offset=offset,
        key=key,
        value=record.value,
        reason=_text(reason),
        order_uid=order_uid_of(topic, key, record.value),
    )


def _source(headers: dict[str, bytes]) -> tuple[str, int, int, bytes | None] | None:
    try:
        topic = headers[h.SOURCE_TOPIC].decode()
        partition, offset = int(headers[h.SOURCE_PARTITION]), int(headers[h.SOURCE_OFFSET])
    except (KeyError, ValueError):
        return None
    if not topic or partition < 0 or offset < 0:
        return None
    return topic, partition, offset, headers.get(h.SOURCE_KEY) or None


def _text(raw: bytes, limit: int = 1000) -> str:
    return clean(raw.decode("utf-8", "replace"), limit)


def order_uid_of(topic: str, key: bytes | None, value: bytes | None) -> uuid.UUID | None:
    """The order a record belongs to: its key on an order-keyed topic, else its payload's."""
    if key and topic.endswith(ORDER_KEYED):
        try:
            return uuid.UUID(key.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if value is None:
        return None
    try:
        _, message = decode(value)
    except Exception:  # best effort: the letter is stored whether its value decodes or not
        return None
    uid = getattr(message, "uid", None) or getattr(getattr(message, "order", None), "uid", None)
    return uid if isinstance(uid, uuid.UUID) else None
