"""The seek after a rebalance (stream_agents.rewind): committed partitions go back to their
commit, stream partitions nobody committed go back to the start, changelogs are left alone."""

from __future__ import annotations

from aiokafka import TopicPartition
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
