"""After a rebalance, a worker reads its stream partitions again from the last commit, or
from the start of the log where nothing was committed yet.

At least once delivery needs one promise from the consumer: a record after the committed
offset is processed, however often the partition changes hands. Faust keeps it by seeking
every assigned partition to its committed offset once a rebalance's recovery is over
("Seek stream partitions to committed offsets"), which undoes whatever the fetcher had
read past and dropped meanwhile. It does drop records around a rebalance: its fetch loop
filters what the Kafka client returns by the set of active partitions, and that set is
emptied while recovery pauses the partitions (the client, handed the same set object,
then returns every partition's records, and the filter discards them, positions already
moved past them); a generation change or a stopped flow also cuts a fetched batch short.

aiokafka's ``seek_to_committed`` seeks only where an offset was committed (and above 0).
So on a partition whose records were never committed, a new worker, or the replacement of
a killed one (ADR 0012), finds the position where the dropped fetch left it, and the
commands it dropped are never applied: seen as a desk that takes no new order until a
later record arrives, and then without the orders sent in between.

:func:`install` makes the seek complete: a stream partition without a committed offset
(none, or 0) is sought to the start of its log, which is where the group's
``auto_offset_reset = earliest`` starts a group that never committed. Changelog
partitions are left to Faust's recovery, which positions them itself.

A hole can also open *after* that seek, with no seek behind it. The seek runs in the
recovery's task while the fetch loop may still be delivering a batch fetched before it: it
resets the loop's last-read offset to the commit, and the batch's next record then lies
beyond it (records dropped after the seek do the same). Faust takes the hole for offsets
that do not exist (as in a compacted or transactional topic) and acknowledges them with the
record: the group commits past commands that were never applied, among them those the
streams skipped while the rebalance had flow control off, which the seek was there to
bring back. On a topic of the ``delete`` policy that no
producer writes in transactions (``order-commands``) offsets have no holes, so a hole is
always a drop. :func:`install` with ``gapless`` topics makes the fetch loop check each
record against :class:`ReadPositions`, the next offset each of their partitions must
deliver: a record beyond it is not delivered, and the partition is sought back to the
missing offset and read again. A hole below the log's start (retention deleted it) is
accepted; so is one that reading again cannot fill three times in a row, with an error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP, Message

log = logging.getLogger(__name__)

_INSTALLED = "_keeper_rewind"

#: Times in a row a hole at the same offset is read again before it is accepted.
REREADS: Final = 3

#: Gapless topics by app id: several apps (tests) may share one process.
_GAPLESS: dict[str, frozenset[str]] = {}


async def seek_to_committed_or_start(
    consumer: AIOKafkaConsumer, is_changelog: Callable[[TopicPartition], bool]
) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset, and each stream partition
    without one to the start of its log; returns the committed offsets, as aiokafka's
    ``seek_to_committed`` does."""
    committed: Mapping[TopicPartition, int | None] = await consumer.seek_to_committed()
    uncommitted = [tp for tp, offset in committed.items() if not offset and not is_changelog(tp)]
    if uncommitted:
        await consumer.seek_to_beginning(*uncommitted)
    return committed


@dataclass(slots=True)
class ReadPositions:
    """The next offset each partition of a gapless topic must deliver, where it is known.

    It is known after a seek (to the commit, or to a given offset) and after each record
    delivered; unknown after a seek to the start of the log, until the start is looked up.
    """

    _next: dict[TP, int] = field(default_factory=dict)
    _misses: dict[TP, tuple[int, int]] = field(default_factory=dict)  # tp -> (offset, times)

    def moved(self, tp: TP, offset: int | None) -> None:
        """The partition was sought to ``offset`` (``None``: to the start of its log)."""
        if offset:
            self._next[tp] = offset
        else:
            self._next.pop(tp, None)

    def expected(self, tp: TP) -> int | None:
        return self._next.get(tp)

    def hole(self, tp: TP, offset: int) -> int | None:
        """The first offset missing before ``offset``, or ``None`` when ``offset`` may be
        delivered (it then becomes the last offset read)."""
        expected = self._next.get(tp)
        if expected is not None and offset > expected:
            return expected
        if expected is None or offset >= expected:
            self._next[tp] = offset + 1
        self._misses.pop(tp, None)
        return None

    def missed(self, tp: TP, expected: int) -> bool:
        """Count one more try to fill the hole at ``expected``; false once it has been read
        again :data:`REREADS` times without filling it."""
        offset, times = self._misses.get(tp, (expected, 0))
        times = times + 1 if offset == expected else 1
        self._misses[tp] = (expected, times)
        return times <= REREADS


def _positions(consumer: Consumer) -> ReadPositions:
    positions: ReadPositions | None = consumer.__dict__.get("_keeper_positions")
    if positions is None:
        positions = consumer.__dict__["_keeper_positions"] = ReadPositions()
    return positions


async def _fill_holes(
    consumer: Consumer, records: AsyncIterator[tuple[TP, Message]], gapless: frozenset[str]
) -> AsyncIterator[tuple[TP, Message]]:
    """``records`` without the records beyond a hole of a gapless partition; the partition
    is sought back to the hole instead."""
    positions = _positions(consumer)
    rereading: set[TP] = set()
    async for tp, message in records:
        if tp.topic not in gapless:
            yield tp, message
            continue
        if tp in rereading:
            continue  # the rest of this batch comes again after the seek
        if positions.expected(tp) is None:  # no record since a seek to the start
            committed = consumer._committed_offset.get(tp)
            positions.moved(tp, committed or (await consumer.earliest_offsets(tp)).get(tp))
        expected = positions.hole(tp, message.offset)
        if expected is not None:
            start = (await consumer.earliest_offsets(tp)).get(tp) or 0
            if start > expected:  # retention deleted what is missing
                positions.moved(tp, start)
                expected = positions.hole(tp, message.offset)
        if expected is not None and not positions.missed(tp, expected):
            log.error(
                "offsets %s..%s of %s are missing after %s reads; accepting the hole",
                expected,
                message.offset - 1,
                tp,
                REREADS,
            )
            positions.moved(tp, message.offset)
            expected = positions.hole(tp, message.offset)
        if expected is None:
            yield tp, message
            continue
        log.warning(
            "records %s..%s of %s were fetched and dropped; reading them again",
            expected,
            message.offset - 1,
            tp,
        )
        rereading.add(tp)
        await consumer.seek_wait({tp: expected})
        positions.moved(tp, expected)


def install(app_id: str = "", gapless: Collection[str] = ()) -> None:
    """Make every Faust worker of this process rewind uncommitted partitions, and the app
    ``app_id`` read again what its fetch dropped from ``gapless`` topics (idempotent)."""
    if app_id:
        _GAPLESS[app_id] = frozenset(gapless)
    if getattr(AIOKafkaConsumerThread, _INSTALLED, False):
        return

    async def seek_to_committed(self: Any) -> Mapping[TopicPartition, int | None]:
        return await self.call_thread(  # type: ignore[no-any-return]
            seek_to_committed_or_start, self._ensure_consumer(), self.consumer._is_changelog_tp
        )

    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign,assignment]

    getmany, perform_seek, seek = Consumer.getmany, Consumer.perform_seek, Consumer.seek

    def checked_getmany(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        records = getmany(self, timeout)
        gapless = _GAPLESS.get(self.app.conf.id)
        return _fill_holes(self, records, gapless) if gapless else records  # no extra hop

    async def tracked_perform_seek(self: Consumer) -> None:
        await perform_seek(self)
        positions = _positions(self)
        for tp in self.assignment():  # Faust's read offsets now hold the commits
            positions.moved(tp, self._read_offset.get(tp))

    async def tracked_seek(self: Consumer, partition: TP, offset: int) -> None:
        await seek(self, partition, offset)
        _positions(self).moved(partition, offset)

    Consumer.getmany = checked_getmany  # type: ignore[method-assign]
    Consumer.perform_seek = tracked_perform_seek  # type: ignore[method-assign]
    Consumer.seek = tracked_seek  # type: ignore[method-assign]
    setattr(AIOKafkaConsumerThread, _INSTALLED, True)
