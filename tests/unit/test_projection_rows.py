"""Messages become the rows the projector writes, and records become batches, without I/O.

The statements themselves run against PostgreSQL in ``tests/integration/test_projector.py``;
here the mapping, the in-batch folding, the record classification and the retry policy are
pinned down, because a mistake in them would only show as a subtly wrong row later.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg2
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from db.projection import (
    POSTING_NAMESPACE,
    ProjectionError,
    account_partner,
    balance_row,
    chunks,
    first_by,
    fold_orders,
    from_epoch_ms,
    newest_by,
    order_event_row,
    order_row,
    orders_upsert,
    posting_id,
    posting_rows,
)
from schemas import orders
from schemas.envelope import Envelope
from schemas.ledger import LedgerPosted, Leg, PostingKind
from schemas.registry import encode, envelope
from stream_agents import projector
from stream_agents.batch_consumer import Batch, classify_poll
from stream_agents.projector import (
    Item,
    ProjectorSettings,
    dead_letter_headers,
    describe,
    is_transient,
)
from tests.fixtures.fake_consumer import PgError

UID = uuid.UUID("3f2b8c1e-8d4a-8c7e-9a1b-2c3d4e5f6a7b")
CARD = uuid.UUID("0b7d2c4e-1111-4222-8333-944455556666")
T0 = 1_764_300_000_000  # 2025-11-28T03:20:00Z
S = orders.OrderStatus
ORDER_TOPIC, LEDGER_TOPIC = "p.order-events", "p.ledger-events"


def snapshot(**overrides: Any) -> orders.OrderSnapshot:
    fields: dict[str, Any] = {
        "uid": UID,
        "version": 1,
        "partner_id": "acme",
        "partner_order_id": "inv-1001",
        "direction": orders.Direction.DEPOSIT,
        "status": S.PENDING,
        "amount_minor": 150_000,
        "fee_minor": 3_000,
        "currency": "RUB",
        "ttl_s": 900,
        "created_at_ms": T0,
        "expires_at_ms": T0 + 900_000,
        "updated_at_ms": T0,
    }
    return orders.OrderSnapshot(**(fields | overrides))


def posted(**overrides: Any) -> LedgerPosted:
    fields: dict[str, Any] = {
        "partner_id": "acme",
        "uid": UID,
        "currency": "RUB",
        "kind": PostingKind.HOLD,
        "legs": [
            Leg(account="partner:acme:available", amount_minor=-10_200),
            Leg(account="partner:acme:held", amount_minor=10_200),
        ],
        "available_minor": 89_800,
        "held_minor": 10_200,
        "balance_version": 3,
    }
    return LedgerPosted(**(fields | overrides))


def env_of(message: Any, message_id: uuid.UUID | None = None) -> Envelope:
    return envelope(message, message_id=message_id, occurred_at=datetime(2026, 1, 2, tzinfo=UTC))


def record(
    value: bytes | None, topic: str = ORDER_TOPIC, offset: int = 0, partition: int = 0
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value or b""),
        headers=(),
    )


# --- rows -------------------------------------------------------------------------------


def test_epoch_ms_become_exact_utc_timestamps() -> None:
    assert from_epoch_ms(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_epoch_ms(T0 + 7) == datetime(2025, 11, 28, 3, 20, 0, 7_000, tzinfo=UTC)


def test_an_order_row_is_the_snapshot_with_times_as_timestamps() -> None:
    event = orders.OrderCreated(
        order=snapshot(version=2, status=S.NEW, card_id=str(CARD), updated_at_ms=T0 + 5)
    )
    row = order_row(event)
    assert row == {
        "uid": UID,
        "partner_id": "acme",
        "partner_order_id": "inv-1001",
        "direction": "deposit",
        "status": "new",
        "amount_minor": 150_000,
        "fee_minor": 3_000,
        "currency": "RUB",
        "card_id": CARD,
        "payer_card_masked": None,
        "decline_reason": None,
        "decided_by": None,
        "decision_reason": None,
        "callback_url": None,
        "payer_card_encrypted": None,
        "expires_at": from_epoch_ms(T0 + 900_000),
        "created_at": from_epoch_ms(T0),
        "updated_at": from_epoch_ms(T0 + 5),
        "version": 2,
    }
    assert all(type(row[k]) is str for k in ("direction", "status"))  # plain text, no enum


def test_only_the_opened_event_brings_the_callback_url() -> None:
    opened = orders.OrderOpened(order=snapshot(), callback_url="https://acme.example/cb")
    assert order_row(opened)["callback_url"] == "https://acme.example/cb"


def test_only_the_payment_confirmation_brings_the_sealed_payer_card() -> None:
    confirmed = orders.PaymentConfirmed(
        order=snapshot(version=3, status=S.PROCESSING, payer_card_masked="411111******1111"),
        payer_card_ciphertext="gAAAA-sealed",
    )
    assert order_row(confirmed)["payer_card_encrypted"] == "gAAAA-sealed"
    approved = orders.OrderApproved(order=snapshot(version=4, status=S.APPROVED))
    assert order_row(approved)["payer_card_encrypted"] is None


def test_decline_reason_is_stored_as_its_text() -> None:
    declined = orders.OrderDeclined(
        order=snapshot(version=2, status=S.DECLINED, decline_reason=orders.DeclineReason.INVALID)
    )
    assert order_row(declined)["decline_reason"] == "invalid"


def test_a_card_id_that_cannot_be_a_cards_row_is_a_projection_error() -> None:
    event = orders.OrderCreated(order=snapshot(version=2, status=S.NEW, card_id="card-7"))
    with pytest.raises(ProjectionError, match="card-7"):
        order_row(event)


def test_an_event_row_is_keyed_by_message_id_and_sequenced_by_version() -> None:
    event = orders.OrderCreated(order=snapshot(version=2, status=S.NEW, updated_at_ms=T0 + 9))
    env = env_of(event, message_id=UID)
    row = order_event_row(env, event)
    assert row["event_id"] == UID
    assert (row["order_uid"], row["seq"], row["type"]) == (UID, 2, "order.created")
    assert row["occurred_at"] == from_epoch_ms(T0 + 9)  # the order's time, not the envelope's
    assert row["payload"]["order"]["version"] == 2


def test_the_event_copy_never_holds_the_payer_card_ciphertext() -> None:
    event = orders.PaymentConfirmed(
        order=snapshot(version=3, status=S.PROCESSING, payer_card_masked="411111******1111"),
        payer_card_ciphertext="sealed-card",
    )
    row = order_event_row(env_of(event), event)
    assert "payer_card_ciphertext" not in row["payload"]
    assert "sealed-card" not in repr(row)
    assert row["payload"]["order"]["payer_card_masked"] == "411111******1111"


def test_posting_rows_have_stable_ids_and_partner_only_on_partner_accounts() -> None:
    message = posted(
        kind=PostingKind.CAPTURE,
        legs=[
            Leg(account="partner:acme:held", amount_minor=-10_200),
            Leg(account="external:settlement", amount_minor=10_000),
            Leg(account="system:fees", amount_minor=200),
        ],
    )
    env = env_of(message)
    rows = posting_rows(env, message)
    assert [(r["account"], r["partner_id"], r["amount_minor"]) for r in rows] == [
        ("partner:acme:held", "acme", -10_200),
        ("external:settlement", None, 10_000),
        ("system:fees", None, 200),
    ]
    assert {r["kind"] for r in rows} == {"capture"}
    assert all(r["posted_at"] == env.occurred_at for r in rows)
    assert rows[0]["posting_id"] == uuid.uuid5(
        POSTING_NAMESPACE, f"{UID}/capture/partner:acme:held"
    )
    assert posting_rows(env_of(message), message) == rows  # a replay maps to the same rows


def test_posting_ids_differ_by_order_kind_and_account() -> None:
    ids = {
        posting_id(UID, "hold", "partner:acme:held"),
        posting_id(UID, "release", "partner:acme:held"),
        posting_id(UID, "hold", "partner:acme:available"),
        posting_id(CARD, "hold", "partner:acme:held"),
    }
    assert len(ids) == 4


@pytest.mark.parametrize(
    ("account", "partner"),
    [
        ("partner:acme:available", "acme"),
        ("partner:a-b_c:held", "a-b_c"),
        ("system:fees", None),
        ("external:settlement", None),
    ],
)
def test_account_partner(account: str, partner: str | None) -> None:
    assert account_partner(account) == partner


def test_a_balance_row_is_versioned_by_balance_version() -> None:
    message = posted()
    assert balance_row(env_of(message), message) == {
        "partner_id": "acme",
        "currency": "RUB",
        "available_minor": 89_800,
        "held_minor": 10_200,
        "version": 3,
        "updated_at": datetime(2026, 1, 2, tzinfo=UTC),
    }


# --- folding a batch --------------------------------------------------------------------


def test_first_by_keeps_the_first_copy_in_first_seen_order() -> None:
    rows = [{"k": 2, "v": "a"}, {"k": 1, "v": "b"}, {"k": 2, "v": "c"}]
    assert first_by(rows, lambda r: r["k"]) == [{"k": 2, "v": "a"}, {"k": 1, "v": "b"}]


def test_newest_by_keeps_the_highest_version_per_key_sorted_by_key() -> None:
    rows = [
        {"k": "b", "version": 2},
        {"k": "a", "version": 1},
        {"k": "b", "version": 5},
        {"k": "b", "version": 3},
    ]
    assert newest_by(rows, lambda r: r["k"]) == [{"k": "a", "version": 1}, {"k": "b", "version": 5}]


def test_folded_orders_keep_the_newest_snapshot_and_the_sticky_columns_of_any_event() -> None:
    other = uuid.UUID(int=7)
    rows = [
        order_row(orders.OrderCreated(order=snapshot(version=2, status=S.NEW))),
        order_row(orders.OrderOpened(order=snapshot(), callback_url="https://acme.example/cb")),
        order_row(
            orders.PaymentConfirmed(
                order=snapshot(version=3, status=S.PROCESSING), payer_card_ciphertext="sealed"
            )
        ),
        order_row(orders.OrderApproved(order=snapshot(version=4, status=S.APPROVED))),
        order_row(orders.OrderOpened(order=snapshot(uid=other, partner_order_id="inv-2"))),
    ]
    folded = {row["uid"]: row for row in fold_orders(rows)}
    assert folded[UID]["version"] == 4
    assert folded[UID]["status"] == "approved"
    assert folded[UID]["callback_url"] == "https://acme.example/cb"
    assert folded[UID]["payer_card_encrypted"] == "sealed"
    assert folded[other]["callback_url"] is None
    assert rows[3]["callback_url"] is None  # the input rows are not modified


def test_chunks_stay_below_the_bind_parameter_budget() -> None:
    rows = [{f"c{i}": i for i in range(10)} for _ in range(7_001)]
    parts = list(chunks(rows))
    assert sum(len(p) for p in parts) == 7_001
    assert all(len(p) * 10 <= 30_000 for p in parts)
    assert list(chunks([])) == []


def test_the_order_upsert_is_one_statement_that_only_moves_forward() -> None:
    rows = fold_orders(
        [
            order_row(orders.OrderOpened(order=snapshot())),
            order_row(orders.OrderOpened(order=snapshot(uid=uuid.UUID(int=1)))),
        ]
    )
    sql = str(orders_upsert(rows).compile(dialect=postgresql.dialect()))
    assert sql.count("INSERT INTO orders") == 1
    assert "ON CONFLICT (uid) DO UPDATE" in sql
    assert "WHERE orders.version < excluded.version OR" in sql
    assert "coalesce(orders.callback_url, excluded.callback_url)" in sql
    assert "coalesce(orders.payer_card_encrypted, excluded.payer_card_encrypted)" in sql


# --- records to batches -----------------------------------------------------------------


def make_batch(records: list[ConsumerRecord[bytes, bytes]], ledger_topic: str) -> Batch[Item]:
    return classify_poll(
        records, partial(projector.classify, ledger_topic=ledger_topic), projector.rank
    )


def test_records_are_sorted_into_order_events_postings_and_rejects() -> None:
    event = orders.OrderCreated(order=snapshot(version=2, status=S.NEW))
    batch = make_batch(
        [
            record(encode(posted()), topic=LEDGER_TOPIC, offset=9, partition=2),
            record(b"\x00garbage", offset=5),
            record(None, offset=6),
            record(encode(event), offset=4),
            record(encode(event), topic=LEDGER_TOPIC, offset=10, partition=2),
            record(encode(posted()), offset=7),
            record(encode(orders.ExpireOrder(uid=snapshot().uid)), offset=8),
        ],
        LEDGER_TOPIC,
    )
    # order events before postings, whatever the poll's order
    assert [entry.item[1] for entry in batch.entries] == [event, posted()]
    assert [(r.record.topic, r.record.offset) for r in batch.rejected] == [
        (ORDER_TOPIC, 5),
        (ORDER_TOPIC, 6),
        (LEDGER_TOPIC, 10),
        (ORDER_TOPIC, 7),
        (ORDER_TOPIC, 8),
    ]
    assert "not a Keeper envelope" in batch.rejected[0].reason
    assert "unexpected message type 'order.created'" in batch.rejected[2].reason
    assert batch.offsets == {TopicPartition(ORDER_TOPIC, 0): 9, TopicPartition(LEDGER_TOPIC, 2): 11}
    assert len(batch.records) == 7


def test_dead_letter_headers_say_where_from_and_why() -> None:
    [rejected] = make_batch([record(b"nope", offset=12, partition=3)], LEDGER_TOPIC).rejected
    headers = dict(dead_letter_headers(rejected, "p.keeper-projector"))
    assert headers["keeper.source.topic"] == ORDER_TOPIC.encode()
    assert headers["keeper.source.partition"] == b"3"
    assert headers["keeper.source.offset"] == b"12"
    assert headers["keeper.source.key"] == b"k"
    assert headers["keeper.consumer"] == b"p.keeper-projector"
    assert headers["keeper.error"].startswith(b"not a Keeper envelope")


# --- errors and settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("x", {}, psycopg2.OperationalError("connection refused")), True),
        (OperationalError("x", {}, PgError("57P01")), True),  # admin shutdown / terminate
        (OperationalError("x", {}, PgError("40P01")), True),  # deadlock
        (OperationalError("x", {}, PgError("08006")), True),
        (OperationalError("x", {}, PgError("57014")), False),  # statement cancelled
        (IntegrityError("x", {}, PgError("23503")), False),  # unknown partner
        (IntegrityError("x", {}, PgError("23514")), False),  # check / unbalanced ledger
        (ProgrammingError("x", {}, PgError("42P01")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_lost_connections_and_lock_conflicts_are_retried(
    error: Exception, transient: bool
) -> None:
    assert is_transient(error) is transient


def test_described_errors_name_the_constraint_but_never_echo_the_row() -> None:
    text = describe(IntegrityError("INSERT ...", {"pan": "4111"}, PgError("23503")))
    assert "sqlstate=23503" in text
    assert "constraint=fk_orders_partner_id_partners" in text
    assert "Key (partner_id)=(ghost)" in text
    assert "4111" not in text
    check = describe(IntegrityError("INSERT ...", {}, PgError("23514")))
    assert "Key (" not in check
    assert "4111" not in check


def test_settings_read_the_shared_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://u:p@db/keeper")
    monkeypatch.setenv("KEEPER_TOPIC_PREFIX", "stage.")
    monkeypatch.setenv("KEEPER_PROJECTOR_BATCH_SIZE", "50")
    settings = ProjectorSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.database_url.endswith("@db/keeper")
    assert settings.batch_size == 50
    assert settings.consumer_group == "stage.keeper-projector"
    assert settings.order_events_topic == "stage.order-events"
    assert settings.ledger_events_topic == "stage.ledger-events"
    assert settings.dead_letters_topic == "stage.dead-letters"
