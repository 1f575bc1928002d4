"""Reading again what a rebalance or a fetch dropped (stream_agents.rewind): after the seek,
committed partitions go back to their commit, stream partitions nobody committed go back to
the start, changelogs are left alone; a hole in a gapless topic's offsets is read again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiokafka import TopicPartition
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from stream_agents import rewind

COMMANDS = [TopicPartition("order-commands", p) for p in range(4)]
CHANGELOG = TopicPartition("app-desk-changelog", 0)


class FakeConsumer:
    """aiokafka's consumer as far as the seek goes: committed offsets and the seeks made."""

    def __init__(self, committed: dict[TopicPartition, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[TopicPartition] = []

    async def seek_to_committed(self) -> dict[TopicPartition, int | None]:
        return dict(self.committed)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        self.to_beginning += partitions
        return True


def is_changelog(tp: TopicPartition) -> bool:
    return tp.topic.endswith("-changelog")


async def test_uncommitted_stream_partitions_start_over_and_the_rest_keep_their_commit():
    committed = {COMMANDS[0]: None, COMMANDS[1]: 0, COMMANDS[2]: 7, COMMANDS[3]: 1, CHANGELOG: None}
    consumer = FakeConsumer(committed)

    result = await rewind.seek_to_committed_or_start(consumer, is_changelog)

    assert sorted(consumer.to_beginning) == [COMMANDS[0], COMMANDS[1]]
    assert result == committed  # what Faust records as its read offsets, unchanged


async def test_nothing_is_sought_when_every_stream_partition_has_a_commit():
    consumer = FakeConsumer({COMMANDS[0]: 3, CHANGELOG: None})

    await rewind.seek_to_committed_or_start(consumer, is_changelog)

    assert consumer.to_beginning == []


def test_install_replaces_faust_s_seek_once():
    rewind.install()
    patched = AIOKafkaConsumerThread.seek_to_committed
    rewind.install()

    assert AIOKafkaConsumerThread.seek_to_committed is patched
    assert patched.__module__ == rewind.__name__

    assert Consumer.getmany.__module__ == rewind.__name__


# --- holes in a gapless topic ------------------------------------------------------------------

P0, P1 = COMMANDS[0], COMMANDS[1]
CARDS = TopicPartition("config-cards", 0)  # compacted: holes are normal there
GAPLESS = frozenset({"order-commands"})


@dataclass(frozen=True)
class Record:
    offset: int


@dataclass
class FakeFaustConsumer:
    """Faust's consumer as far as holes go: its commits, the log's start, the seeks made."""

    _committed_offset: dict[TopicPartition, int | None] = field(default_factory=dict)
    log_start: int = 0
    seeks: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def earliest_offsets(self, *tps: TopicPartition) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.log_start)

    async def seek_wait(self, partitions: dict[TopicPartition, int]) -> None:
        self.seeks.append(partitions)


async def fetched(
    *records: tuple[TopicPartition, int],
) -> AsyncIterator[tuple[TopicPartition, Record]]:
    for tp, offset in records:
        yield tp, Record(offset)


async def delivered(consumer: FakeFaustConsumer, *records: tuple[TopicPartition, int]) -> list:
    got = rewind._fill_holes(consumer, fetched(*records), GAPLESS)  # type: ignore[arg-type]
    return [(tp, message.offset) async for tp, message in got]


def sought(consumer: FakeFaustConsumer, tp: TopicPartition, offset: int | None) -> None:
    rewind._positions(consumer).moved(tp, offset)  # type: ignore[arg-type]


async def test_records_without_holes_are_delivered_and_nothing_is_sought():
    consumer = FakeFaustConsumer()
    sought(consumer, P0, 126)
    batch = [(P0, 126), (P1, 40), (P0, 127), (P1, 41), (P0, 128)]

    assert await delivered(consumer, *batch) == batch
    assert consumer.seeks == []


async def test_a_hole_is_read_again_from_its_first_offset_and_other_partitions_flow_on():
    consumer = FakeFaustConsumer()
    sought(consumer, P0, 126)
    sought(consumer, P1, 40)

    got = await delivered(consumer, (P0, 126), (P0, 129), (P1, 40), (P0, 130), (P1, 41))

    assert got == [(P0, 126), (P1, 40), (P1, 41)]  # nothing of p0 past the hole
    assert consumer.seeks == [{P0: 127}]
    assert await delivered(consumer, (P0, 127), (P0, 128), (P0, 129)) == [
        (P0, 127),
        (P0, 128),
        (P0, 129),
    ]


async def test_the_record_at_the_commit_dropped_right_after_the_seek_is_a_hole():
    """Faust's own check misses this one: after its seek it takes the commit for the last
    offset read, so a first record one past the commit looks like no gap at all."""
    consumer = FakeFaustConsumer()
    sought(consumer, P0, 127)  # the commit: 127 is the next to read

    assert await delivered(consumer, (P0, 128)) == []
    assert consumer.seeks == [{P0: 127}]


async def test_the_rest_of_a_batch_after_the_recovery_s_seek_is_read_again_from_the_commit():
    """What a soak caught: 114-128 delivered, the streams skipping 127 and 128 while flow
    control was off; the seek at the end of recovery (to the commit, 114) comes while the
    fetch loop still delivers the batch fetched before it, whose next record is 129."""
    consumer = FakeFaustConsumer()
    sought(consumer, P0, 114)
    assert len(await delivered(consumer, *[(P0, o) for o in range(114, 129)])) == 15

    sought(consumer, P0, 114)  # the recovery's seek, from its own task
    assert await delivered(consumer, (P0, 129), (P0, 130)) == []

    assert consumer.seeks == [{P0: 114}]  # 127 and 128 come again


async def test_records_read_twice_pass_on_for_faust_to_drop():
    consumer = FakeFaustConsumer()
    sought(consumer, P0, 126)
    await delivered(consumer, (P0, 126), (P0, 127))

    assert await delivered(consumer, (P0, 126), (P0, 127), (P0, 128)) == [
        (P0, 126),
        (P0, 127),
        (P0, 128),
    ]
    assert consumer.seeks == []


async def test_holes_elsewhere_are_not_ours():
    consumer = FakeFaustConsumer()
    changelog_and_cards = [(CHANGELOG, 3), (CHANGELOG, 9), (CARDS, 5), (CARDS, 50)]

    assert await delivered(consumer, *changelog_and_cards) == changelog_and_cards
    assert consumer.seeks == []


async def test_with_no_position_the_commit_and_then_the_log_start_say_where_to_begin():
    committed = FakeFaustConsumer(_committed_offset={P0: 10}, log_start=4)
    assert await delivered(committed, (P0, 12)) == []
    assert committed.seeks == [{P0: 10}]

    fresh = FakeFaustConsumer(log_start=4)  # sought to the start: nobody committed
    assert await delivered(fresh, (P0, 4), (P0, 5)) == [(P0, 4), (P0, 5)]
    assert await delivered(FakeFaustConsumer(log_start=4), (P0, 6)) == []


async def test_a_hole_that_retention_made_is_accepted():
    consumer = FakeFaustConsumer(log_start=500)
    sought(consumer, P0, 126)  # a commit older than the log's start

    assert await delivered(consumer, (P0, 500), (P0, 501)) == [(P0, 500), (P0, 501)]
    assert await delivered(consumer, (P0, 503)) == []  # past the start, a hole again
    assert consumer.seeks == [{P0: 502}]


async def test_a_hole_that_reading_again_cannot_fill_is_accepted_with_an_error(caplog):
    consumer = FakeFaustConsumer()
    sought(consumer, P0, 126)
    for _ in range(rewind.REREADS):
        assert await delivered(consumer, (P0, 130)) == []

    with caplog.at_level(logging.ERROR, logger=rewind.__name__):
        assert await delivered(consumer, (P0, 130), (P0, 131)) == [(P0, 130), (P0, 131)]

    assert len(consumer.seeks) == rewind.REREADS
    assert "missing after 3 reads" in caplog.text


@pytest.mark.parametrize("offset", [None, 0])
def test_a_seek_to_the_start_forgets_the_position(offset):
    positions = rewind.ReadPositions()
    positions.moved(P0, 7)
    positions.moved(P0, offset)

    assert positions.expected(P0) is None
