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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_INSTALLED = "_keeper_rewind"


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


def install() -> None:
    """Make every Faust worker of this process rewind uncommitted partitions (idempotent)."""
    if getattr(AIOKafkaConsumerThread, _INSTALLED, False):
        return

    async def seek_to_committed(self: Any) -> Mapping[TopicPartition, int | None]:
        return await self.call_thread(  # type: ignore[no-any-return]
            seek_to_committed_or_start, self._ensure_consumer(), self.consumer._is_changelog_tp
        )

    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign,assignment]
    setattr(AIOKafkaConsumerThread, _INSTALLED, True)
