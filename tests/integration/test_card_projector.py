"""The card projector against a real broker and PostgreSQL, and the expiry sweep.

Window updates arrive out of version order and duplicated, alerts twice: the database ends
with the newest version of each window, each alert once, and the automatic holiday on the
card (audited). The expiry sweep flags cards expiring soon and retires expired ones.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.pool import NullPool

from db.models import Base
from schemas.registry import encode
from schemas.topics import CARD_ALERTS, CARD_TURNOVER, CONFIG_CARDS, DEAD_LETTERS
from schemas.topology import ensure_topics
from schemas.turnover import AlertKind, CardAlerted, HolidayReason, TurnoverUpdated, WindowKind
from stream_agents.card_projector import CardProjectorSettings, run_card_projector, sweep
from stream_agents.wire import epoch_ms_now
from tests.fixtures.kafka import first_records

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
CARD = uuid.UUID("0b7d2c4e-1111-4222-8333-944455556666")
SOON = uuid.UUID("0b7d2c4e-2222-4222-8333-944455556666")
GONE = uuid.UUID("0b7d2c4e-3333-4222-8333-944455556666")
T0 = 1_764_300_000_000  # a day start: 2025-11-28T03:20Z is not; any start will do here


def card_row(card_id: uuid.UUID, expires_on: date) -> dict[str, Any]:
    return {
        "id": card_id,
        "pool_id": "main",
        "pan_encrypted": b"sealed",
        "pan_masked": "220220******1234",
        "pan_fingerprint": card_id.bytes,
        "bank": "Bank",
        "holder": "IVAN P",
        "currency": "RUB",
        "expires_on": expires_on,
        "daily_limit_minor": 10**9,
        "monthly_limit_minor": 10**10,
        "daily_count_limit": 100,
        "monthly_count_limit": 1000,
        "min_order_minor": 100,
        "max_order_minor": 10**8,
    }


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = create_engine(migrated_database_url, poolclass=NullPool)
    tables = Base.metadata.tables
    today = datetime.now(UTC).date()
    with engine.begin() as conn:
        conn.execute(insert(tables["card_pools"]).values(id="main", name="Main"))
        conn.execute(insert(tables["cards"]).values(**card_row(CARD, date(2099, 1, 31))))
        conn.execute(insert(tables["cards"]).values(**card_row(SOON, today + timedelta(days=10))))
        conn.execute(insert(tables["cards"]).values(**card_row(GONE, today - timedelta(days=1))))
    yield engine
    engine.dispose()


@pytest.fixture
async def prefix(kafka_bootstrap: str, unique_name: str) -> AsyncIterator[str]:
    prefix = f"{unique_name}."
    specs = (CARD_TURNOVER, CARD_ALERTS, DEAD_LETTERS, CONFIG_CARDS)
    await ensure_topics(kafka_bootstrap, specs, prefix=prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not {prefix + s.name for s in specs} <= set(await admin.list_topics()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        yield prefix
        await admin.delete_topics([prefix + s.name for s in specs])
    finally:
        await admin.close()


@pytest.fixture
def settings(
    kafka_bootstrap: str, migrated_database_url: str, prefix: str
) -> CardProjectorSettings:
    return CardProjectorSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=migrated_database_url,
        topic_prefix=prefix,
        batch_size=2,
        max_wait_ms=100,
        expiry_sweep_interval_s=0,
        metadata_max_age_ms=1000,
    )


def update(kind: WindowKind, version: int) -> TurnoverUpdated:
    return TurnoverUpdated(
        card_id=str(CARD),
        pool_id="main",
        currency="RUB",
        window_kind=kind,
        window_start_ms=T0,
        window_end_ms=T0 + 3_600_000,
        time_zone="UTC",
        in_minor=1_000 * version,
        in_count=version,
        version=version,
    )


def rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


async def test_windows_alerts_and_holidays_are_projected_once(
    settings: CardProjectorSettings, engine: Engine, prefix: str, kafka_bootstrap: str
) -> None:
    until_ms = epoch_ms_now() + 3_600_000
    holiday = CardAlerted(
        card_id=str(CARD),
        alert_id=uuid.uuid4(),
        kind=AlertKind.HOLIDAY_STARTED,
        pool_id="main",
        at_ms=until_ms - 3_600_000,
        window_kind=WindowKind.DAY,
        window_start_ms=T0,
        holiday_reason=HolidayReason.DAILY_LIMIT_REACHED,
        holiday_until_ms=until_ms,
    )
    updates = [update(WindowKind.HOUR, v) for v in (2, 1, 3, 3, 2)] + [update(WindowKind.DAY, 1)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for message in [*updates, holiday, holiday]:
            topic = CARD_ALERTS if isinstance(message, CardAlerted) else CARD_TURNOVER
            await producer.send_and_wait(
                prefix + topic.name, encode(message), key=message.message_key().encode()
            )
    finally:
        await producer.stop()

    stop = asyncio.Event()
    task = asyncio.create_task(run_card_projector(settings, stop))
    try:
        deadline = time.monotonic() + DEADLINE_S
        while (
            len(rows(engine, "SELECT 1 FROM card_alerts")) < 1
            or len(
                rows(engine, "SELECT 1 FROM card_turnover WHERE version = 3 OR window_kind = 'day'")
            )
            < 2
        ):
            assert time.monotonic() < deadline, "the projection never completed"
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE_S)

    assert rows(
        engine,
        "SELECT window_kind, in_minor, in_count, version FROM card_turnover ORDER BY window_kind",
    ) == [("day", 1_000, 1, 1), ("hour", 3_000, 3, 3)]
    assert rows(engine, "SELECT kind, holiday_reason FROM card_alerts") == [
        ("holiday_started", "daily_limit_reached")
    ]
    [(holiday_until, version)] = rows(
        engine, f"SELECT holiday_until, version FROM cards WHERE id = '{CARD}'"
    )
    assert int(holiday_until.timestamp() * 1000) == until_ms
    assert version == 2
    assert rows(engine, "SELECT actor, action FROM audit_log WHERE action = 'card.holiday'") == [
        ("system:card-monitor", "card.holiday")
    ]


def test_the_expiry_sweep_flags_and_retires(
    settings: CardProjectorSettings, engine: Engine
) -> None:
    first = sweep(engine, settings, epoch_ms_now())
    assert [config.card_id for config in first.retired] == [str(GONE)]
    assert (first.expiring_alerts, first.expired_alerts) == (1, 1)
    again = sweep(engine, settings, epoch_ms_now())  # idempotent: nothing new
    assert (again.retired, again.expiring_alerts, again.expired_alerts) == ([], 0, 0)
    statuses = dict(rows(engine, "SELECT id, status FROM cards"))
    assert statuses == {CARD: "active", SOON: "active", GONE: "retired"}
    alerts = sorted(rows(engine, "SELECT card_id, kind FROM card_alerts"))
    assert alerts == sorted([(SOON, "expiring_soon"), (GONE, "expired")])


async def test_an_update_for_an_unknown_card_is_dead_lettered_and_the_rest_projected(
    settings: CardProjectorSettings, engine: Engine, prefix: str, kafka_bootstrap: str
) -> None:
    """A card missing from ``cards`` (FK) and a card id that is no UUID: both quarantined."""
    ghost = update(WindowKind.DAY, 1).model_copy(update={"card_id": str(uuid.uuid4())})
    not_a_uuid = update(WindowKind.DAY, 1).model_copy(update={"card_id": "card-\x00-x"})
    raw = [encode(m) for m in (update(WindowKind.HOUR, 1), ghost, not_a_uuid)]
    raw.append(encode(update(WindowKind.HOUR, 2)))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        landed = [
            await producer.send_and_wait(prefix + CARD_TURNOVER.name, value, key=b"k")
            for value in raw
        ]
    finally:
        await producer.stop()

    stop = asyncio.Event()
    task = asyncio.create_task(run_card_projector(settings, stop))
    try:
        letters = await first_records(kafka_bootstrap, settings.dead_letters_topic, 2)
        deadline = time.monotonic() + DEADLINE_S
        while rows(engine, "SELECT version FROM card_turnover") != [(2,)]:
            assert time.monotonic() < deadline, "the valid updates were never projected"
            await asyncio.sleep(0.2)
        assert not task.done(), "the card projector keeps running"
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE_S)

    headers = [dict(letter.headers) for letter in letters]
    assert [int(h["keeper.source.offset"]) for h in headers] == [m.offset for m in landed[1:3]]
    assert [letter.value for letter in letters] == raw[1:3]  # untouched
    assert b"fk_card_turnover_card_id_cards" in headers[0]["keeper.error"]
    assert headers[1]["keeper.error"].startswith(b"UnknownCardError")
    assert all(b"\x00" not in h["keeper.error"] for h in headers)
    assert {h["keeper.consumer"] for h in headers} == {settings.consumer_group.encode()}
