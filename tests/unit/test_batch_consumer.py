"""The one at-least-once batch loop, with an in-memory consumer, producer and database.

Records carry a number as their value; the step writes the numbers (``FakeWriter``: poison
numbers are refused for good), refuses a value that is not a number, and skips an empty one.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY

from stream_agents.batch_consumer import BatchConsumer, Polling, Step
from stream_agents.failures import ConsumerHaltedError
from stream_agents.quarantine import Backoff, DeadLetters
from tests.fixtures.fake_consumer import (
    LETTERS,
    TOPIC,
    FakeConsumer,
    FakeProducer,
    FakeWriter,
    fatal,
    record,
    transient,
)

TP = TopicPartition(TOPIC, 2)
FAST = Backoff(0.001, 0.002)


def numbered(*values: bytes, start: int = 0) -> list[ConsumerRecord[bytes, bytes]]:
    return [record(start + n, value=value) for n, value in enumerate(values)]


def classify(rec: ConsumerRecord[bytes, bytes]) -> list[int] | str:
    if not rec.value:
        return []  # nothing to write: only committed past
    if not rec.value.isdigit():
        return "not a number"
    return [int(rec.value)]


class Rig:
    """A loop wired to fakes that share one journal of writes and commits."""

    def __init__(
        self,
        polls: list[list[ConsumerRecord[bytes, bytes]]],
        writer: FakeWriter | None = None,
        *,
        rank: bool = False,
        metrics_label: str | None = None,
    ) -> None:
        self.journal: list[str] = []
        self.consumer = FakeConsumer(polls, journal=self.journal)
        self.writer = writer or FakeWriter(poison=set())
        self.writer.journal = self.journal
        self.producer = FakeProducer()
        step = Step(
            classify=classify,
            write=self.writer,
            nothing=0,
            rank=(lambda n: n % 2) if rank else (lambda _: 0),
        )
        polling = Polling("unit loop", 100, 1, FAST, metrics_label=metrics_label, topic_prefix="p.")
        letters = DeadLetters(self.producer, LETTERS, "p.unit")  # type: ignore[arg-type]
        self.loop = BatchConsumer(self.consumer, letters, step, polling)


async def test_offsets_are_committed_only_after_the_batch_is_durable() -> None:
    rig = Rig([numbered(b"1", b"2", b"3")])
    outcome = await rig.loop.once(asyncio.Event())
    assert outcome is not None
    assert outcome.results == [3]
    assert rig.journal == ["wrote [1, 2, 3]", "committed [3]"]
    assert rig.consumer.committed == {TP: 3}


async def test_a_transient_failure_holds_the_offsets_and_retries_the_whole_batch() -> None:
    writer = FakeWriter(poison=set(), failures=[transient(), transient(), transient()])
    rig = Rig([numbered(b"1", b"2")], writer)
    await rig.loop.once(asyncio.Event())
    assert writer.calls == [[1, 2]] * 4
    assert rig.journal == ["wrote [1, 2]", "committed [2]"]  # no commit before the write
    assert rig.producer.sent == []  # transient, not poison


async def test_stopped_during_an_outage_the_round_ends_without_a_commit() -> None:
    stop = asyncio.Event()
    writer = FakeWriter(poison=set(), failures=[transient()] * 1000)
    rig = Rig([numbered(b"1", b"2")], writer)
    rig.loop.polling = Polling("unit loop", 100, 1, Backoff(0.01, 0.01))
    round_ = asyncio.create_task(rig.loop.once(stop))
    for _ in range(400):  # a few retries at least
        if len(writer.calls) >= 3:
            break
        await asyncio.sleep(0.005)
    assert rig.consumer.committed == {}  # held while the database is away
    stop.set()
    assert await asyncio.wait_for(round_, 1) is None
    assert rig.journal == []


async def test_a_poison_record_is_dead_lettered_and_the_rest_written_and_committed() -> None:
    rig = Rig([numbered(b"1", b"2", b"oops", b"4", b"5")], FakeWriter(poison={4}))
    outcome = await rig.loop.once(asyncio.Event())
    assert outcome is not None
    assert rig.writer.committed == [1, 2, 5]
    dead = [(value, headers["keeper.source.offset"]) for _, _, value, headers in rig.producer.sent]
    assert dead == [(b"oops", b"2"), (b"4", b"3")]  # refused by classify, then by the database
    assert rig.journal[-1] == "committed [5]"  # past the poison: the stream goes on


async def test_a_record_with_nothing_to_write_is_committed_past() -> None:
    rig = Rig([numbered(b"", b"")])
    await rig.loop.once(asyncio.Event())
    assert rig.writer.calls == []
    assert rig.consumer.committed == {TP: 2}


async def test_items_are_written_in_rank_order_and_poll_order_within_a_rank() -> None:
    rig = Rig([numbered(b"3", b"2", b"5", b"4")], rank=True)
    await rig.loop.once(asyncio.Event())
    assert rig.writer.calls == [[2, 4, 3, 5]]


async def test_a_fatal_failure_halts_with_nothing_committed() -> None:
    rig = Rig([numbered(b"1")], FakeWriter(poison=set(), failures=[fatal()]))
    with pytest.raises(ConsumerHaltedError, match="sqlstate=42P01"):
        await rig.loop.once(asyncio.Event())
    assert rig.consumer.committed == {}
    assert rig.producer.sent == []


async def test_an_empty_poll_writes_and_commits_nothing() -> None:
    rig = Rig([])
    assert await rig.loop.once(asyncio.Event()) is None
    assert rig.journal == []


async def test_the_stop_event_ends_the_loop_after_the_current_round() -> None:
    stop = asyncio.Event()
    rounds: list[int] = []

    async def between() -> None:
        rounds.append(len(rig.journal))
        if len(rounds) == 3:
            stop.set()

    rig = Rig([numbered(b"1"), numbered(b"2", start=1), numbered(b"3", start=2), numbered(b"4")])
    await asyncio.wait_for(rig.loop.run(stop, between=between), 1)
    assert rig.journal == [f"{what} [{n}]" for n in (1, 2, 3) for what in ("wrote", "committed")]
    assert rig.consumer.polls == [numbered(b"4")]  # never polled after the stop


async def test_a_stop_before_the_first_round_polls_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    rig = Rig([numbered(b"1")])
    await rig.loop.run(stop)
    assert rig.consumer.getmany_calls == 0


async def test_progress_counts_records_dead_letters_and_lag(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig([numbered(b"1", b"x", b"3")], metrics_label="unit_loop")
    rig.loop.progress.interval_s = 0
    rig.consumer.highwaters[TP] = 10
    labels = {"process": "unit_loop", "topic": "order-events"}
    before = REGISTRY.get_sample_value("keeper_consumer_records_total", labels) or 0
    with caplog.at_level(logging.INFO, logger="stream_agents.batch_consumer"):
        await rig.loop.once(asyncio.Event())
    progress = rig.loop.progress
    assert (progress.records, progress.dead_letters, progress.batches) == (3, 1, 1)
    assert progress.written == 2
    assert progress.lag(rig.consumer) == 7
    assert REGISTRY.get_sample_value("keeper_consumer_records_total", labels) == before + 3
    dead = REGISTRY.get_sample_value(
        "keeper_consumer_dead_lettered_total", {"process": "unit_loop"}
    )
    assert dead == 1
    assert "unit loop: 3 records in 1 batches (dead-lettered 1): 2; lag 7" in caplog.text
