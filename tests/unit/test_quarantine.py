"""Poison-record isolation with a fake writer and a fake dead-letter producer (no I/O;
the fakes are in ``tests/fixtures/fake_consumer.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from schemas import orders
from schemas.registry import encode
from stream_agents import letter_headers as h
from stream_agents.failures import ConsumerHaltedError, describe, is_fatal, is_transient
from stream_agents.quarantine import (
    Backoff,
    DeadLetters,
    Entry,
    Rejected,
    isolate,
    letter_of,
    order_uid_of,
    settle,
)
from tests.fixtures.fake_consumer import (
    LETTERS,
    TOPIC,
    UID,
    FakeProducer,
    FakeWriter,
    PgError,
    fatal,
    permanent,
    record,
    transient,
)


def entries(count: int) -> list[Entry[int]]:
    return [Entry(record(n), n) for n in range(count)]


# --- isolate ----------------------------------------------------------------------------


def test_a_clean_batch_is_one_transaction() -> None:
    writer = FakeWriter(poison=set())
    outcome = isolate(writer, entries(8))
    assert writer.calls == [list(range(8))]
    assert (outcome.results, outcome.rejected) == ([8], [])


@pytest.mark.parametrize("poison", [{0}, {7}, {3}, {2, 5}, {0, 1, 2, 3, 4, 5, 6, 7}])
def test_exactly_the_poison_is_rejected_and_the_rest_written_in_order(poison: set[int]) -> None:
    writer = FakeWriter(poison=poison)
    outcome = isolate(writer, entries(8))
    assert [r.record.offset for r in outcome.rejected] == sorted(poison)
    assert writer.committed == [n for n in range(8) if n not in poison]  # order kept
    assert sum(outcome.results) == 8 - len(poison)
    assert all("constraint=fk_orders_partner_id_partners" in r.reason for r in outcome.rejected)


def test_bisection_needs_far_fewer_transactions_than_records() -> None:
    writer = FakeWriter(poison={300})
    isolate(writer, entries(500))
    assert len(writer.calls) <= 2 * 10 + 1  # about 2 log2(n), not n


def test_reasons_never_echo_the_row_or_its_parameters() -> None:
    [rejected] = isolate(FakeWriter(poison={0}), entries(1)).rejected
    assert "4111" not in rejected.reason
    assert "\x00" not in rejected.reason
    assert "Key (partner_id)=(ghost)" in rejected.reason


def test_a_transient_failure_during_isolation_propagates_for_a_retry() -> None:
    writer = FakeWriter(poison={5}, failures=[permanent(), transient()])
    with pytest.raises(OperationalError):
        isolate(writer, entries(8))


def test_a_non_database_error_is_a_poison_record_too() -> None:
    """psycopg2 refuses a NUL in a text parameter with a plain ValueError."""

    def write(items: Sequence[int]) -> int:
        if 1 in items:
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        return len(items)

    outcome = isolate(write, entries(3))
    assert [(r.record.offset, r.reason) for r in outcome.rejected] == [(1, "ValueError")]


# --- settle: retries, dead letters, halting ---------------------------------------------


def letters_to(producer: FakeProducer) -> DeadLetters:
    return DeadLetters(producer, LETTERS, "p.keeper-projector")


FAST = Backoff(0.001, 0.002)


async def test_settle_dead_letters_the_poison_and_the_rejected_with_coordinates() -> None:
    producer, writer = FakeProducer(), FakeWriter(poison={2})
    undecodable = Rejected(record(9, value=b"\x00garbage"), "not a Keeper envelope")
    outcome = await settle(
        writer,
        entries(4),
        [undecodable],
        dead_letters=letters_to(producer),
        backoff=FAST,
        stop=asyncio.Event(),
    )
    assert outcome is not None
    assert writer.committed == [0, 1, 3]
    assert [(topic, key, value) for topic, key, value, _ in producer.sent] == [
        (LETTERS, TOPIC.encode(), b"\x00garbage"),  # the raw value, untouched
        (LETTERS, TOPIC.encode(), b"raw-2"),
    ]
    headers = producer.sent[1][3]
    assert headers[h.SOURCE_TOPIC] == TOPIC.encode()
    assert (headers[h.SOURCE_PARTITION], headers[h.SOURCE_OFFSET]) == (b"2", b"2")
    assert headers[h.SOURCE_KEY] == str(UID).encode()
    assert headers[h.CONSUMER] == b"p.keeper-projector"
    assert headers[h.ERROR].startswith(b"PgError sqlstate=23503")


async def test_settle_retries_transient_failures_and_dead_letters_nothing() -> None:
    producer = FakeProducer()
    writer = FakeWriter(poison=set(), failures=[transient(), transient()])
    outcome = await settle(
        writer,
        entries(3),
        [],
        dead_letters=letters_to(producer),
        backoff=FAST,
        stop=asyncio.Event(),
    )
    assert outcome is not None
    assert writer.committed == [0, 1, 2]
    assert len(writer.calls) == 3
    assert producer.sent == []


async def test_a_transient_failure_mid_isolation_restarts_it_and_rejects_only_the_poison() -> None:
    producer = FakeProducer()
    writer = FakeWriter(poison={1}, failures=[permanent(), transient()])
    outcome = await settle(
        writer,
        entries(4),
        [],
        dead_letters=letters_to(producer),
        backoff=FAST,
        stop=asyncio.Event(),
    )
    assert outcome is not None
    assert [r.record.offset for r in outcome.rejected] == [1]
    assert sorted(set(writer.committed)) == [0, 2, 3]
    assert len(producer.sent) == 1


async def test_settle_gives_up_without_an_outcome_when_stopped_during_an_outage() -> None:
    stop = asyncio.Event()
    stop.set()
    writer = FakeWriter(poison=set(), failures=[transient()])
    outcome = await settle(
        writer, entries(2), [], dead_letters=letters_to(FakeProducer()), backoff=FAST, stop=stop
    )
    assert outcome is None  # the caller must not commit its offsets
    assert writer.committed == []


async def test_a_broker_outage_while_dead_lettering_is_retried_before_the_commit() -> None:
    from aiokafka.errors import KafkaConnectionError

    producer = FakeProducer(failures=[KafkaConnectionError()])
    outcome = await settle(
        FakeWriter(poison={0}),
        entries(1),
        [],
        dead_letters=letters_to(producer),
        backoff=FAST,
        stop=asyncio.Event(),
    )
    assert outcome is not None
    assert len(producer.sent) == 1


async def test_a_fatal_failure_halts_instead_of_burying_the_stream() -> None:
    producer = FakeProducer()
    with pytest.raises(ConsumerHaltedError, match="sqlstate=42P01"):
        await settle(
            FakeWriter(poison=set(), failures=[fatal()]),
            entries(3),
            [],
            dead_letters=letters_to(producer),
            backoff=FAST,
            stop=asyncio.Event(),
        )
    assert producer.sent == []


async def test_a_record_of_the_dead_letters_topic_is_never_sent_back_there() -> None:
    producer = FakeProducer()
    await letters_to(producer).publish([Rejected(record(0, topic=LETTERS), "cannot store")])
    assert producer.sent == []


# --- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (transient(), "transient"),
        (OperationalError("x", {}, PgError("57P01")), "transient"),
        (fatal(), "fatal"),
        (OperationalError("x", {}, PgError("28P01")), "fatal"),  # password refused
        (permanent(), "permanent"),
        (IntegrityError("x", {}, PgError("22P05")), "permanent"),  # the NUL in JSONB
        (ValueError("NUL"), "permanent"),
    ],
)
def test_failures_are_sorted_into_three_kinds(error: Exception, kind: str) -> None:
    got = "transient" if is_transient(error) else "fatal" if is_fatal(error) else "permanent"
    assert got == kind
    assert "4111" not in describe(error)


# --- reading dead letters back ----------------------------------------------------------


def letter_record(headers: list[tuple[str, bytes]], value: bytes | None = b"raw") -> Any:
    return record(41, topic=LETTERS, key=TOPIC.encode(), value=value, headers=headers)


def test_a_dead_letter_becomes_a_row_with_its_source_coordinates_and_order() -> None:
    headers = h.build(
        "bad\x00 reason", topic=TOPIC, partition=3, offset=17, key=str(UID).encode(), consumer="g"
    )
    row = letter_of(letter_record(headers, value=b"\x00raw"))
    assert row is not None
    assert (row.source_topic, row.source_partition, row.source_offset) == (TOPIC, 3, 17)
    assert (row.key, row.value, row.consumer) == (str(UID).encode(), b"\x00raw", "g")
    assert row.order_uid == UID
    assert row.reason == "bad? reason"


def test_a_dead_letter_without_coordinates_is_stored_under_its_own() -> None:
    row = letter_of(letter_record([("reason", b"undecodable: x")]))
    assert row is not None
    assert (row.source_topic, row.source_partition, row.source_offset) == (LETTERS, 2, 41)
    assert (row.consumer, row.reason) == ("unknown", "undecodable: x")


def test_a_parked_callback_is_not_a_dead_letter_row() -> None:
    assert letter_of(letter_record([(h.DELIVERY_ID, str(UID).encode())])) is None


def test_the_order_of_a_record_comes_from_its_key_or_its_payload() -> None:
    event = encode(orders.OrderCancelled(order=_snapshot()))
    assert order_uid_of("p.order-events", str(UID).encode(), None) == UID
    cancel = encode(orders.CancelOrder(uid=UID, partner_id="acme", desk="pool:main"))
    assert order_uid_of("p.order-commands", b"pool:main", cancel) == UID  # keyed by desk
    assert order_uid_of("p.ledger-events", b"acme", event) == UID
    assert order_uid_of("p.card-turnover", b"card", b"garbage") is None


def _snapshot() -> orders.OrderSnapshot:
    return orders.OrderSnapshot(
        uid=UID,
        version=3,
        partner_id="acme",
        partner_order_id="inv-1",
        direction=orders.Direction.DEPOSIT,
        status=orders.OrderStatus.CANCELLED,
        amount_minor=10_000,
        fee_minor=200,
        currency="RUB",
        ttl_s=900,
        created_at_ms=0,
        expires_at_ms=900_000,
        updated_at_ms=1_000,
    )
