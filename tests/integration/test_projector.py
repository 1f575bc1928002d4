"""The projector against a real broker and a real PostgreSQL: exactly-once effects.

Each test gets its own topics (``<unique_name>.order-events`` ...), consumer group and
migrated database. The same scripted history is produced every time: three orders whose
events arrive out of version order and duplicated, postings redelivered, and balances out of
order. Whatever happens to the projector meanwhile (garbage on the topic, a cancel before the
offsets commit, a database that refuses connections or loses one mid-batch), the database must
end in exactly :func:`assert_projected`'s state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine, create_engine, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

import stream_agents.batch_consumer as batch_consumer
import stream_agents.projector as projector
from db.models import Base
from db.projection import OrderEventMessage, project_order_events
from db.repositories import notifications
from schemas import orders
from schemas.ledger import LedgerPosted, Leg, PostingKind
from schemas.registry import decode, encode
from schemas.topics import LEDGER_EVENTS, ORDER_EVENTS
from stream_agents.projector import ProjectorHaltedError, ProjectorSettings, run_projector
from tests.fixtures.device import unmatched_credit
from tests.fixtures.kafka import DEADLINE_S, eventually, first_records
from tests.fixtures.services import REPO_ROOT

pytestmark = pytest.mark.integration

T0 = 1_764_300_000_000
PARTNER = "acme"
CARD = uuid.UUID("0b7d2c4e-1111-4222-8333-944455556666")
A, B, C = (uuid.UUID(int=n) for n in (0xA, 0xB, 0xC))  # deposit, withdrawal, declined
CALLBACK = "https://acme.example/cb"
SEALED = "gAAAAA-sealed-payer-card"  # as the API's SecretBox seals it: opaque text
GARBAGE = b'{"message_id": "not even a uuid"}'
S = orders.OrderStatus


# --- the scripted history ---------------------------------------------------------------


def snap(uid: uuid.UUID, version: int, status: orders.OrderStatus, **fields: Any) -> Any:
    return orders.OrderSnapshot(
        uid=uid,
        version=version,
        partner_id=PARTNER,
        partner_order_id=f"inv-{uid.int:x}",
        direction=orders.Direction.WITHDRAWAL if uid == B else orders.Direction.DEPOSIT,
        status=status,
        amount_minor=150_000 if uid == A else 10_000,
        fee_minor=3_000 if uid == A else 200,
        currency="RUB",
        ttl_s=900,
        created_at_ms=T0,
        expires_at_ms=T0 + 900_000,
        updated_at_ms=T0 + version * 1_000,
        **fields,
    )


def event_id(uid: uuid.UUID, version: int) -> uuid.UUID:
    """Like the order agent: the id of an order's event follows from uid and version."""
    return uuid.uuid5(uid, f"v{version}")


CARD_FIELDS = {"card_id": str(CARD), "card_masked": "220220******1234"}
PAYER = {"payer_card_masked": "411111******1111"}
HISTORY: dict[tuple[uuid.UUID, int], OrderEventMessage] = {
    (A, 1): orders.OrderOpened(order=snap(A, 1, S.PENDING), callback_url=CALLBACK),
    (A, 2): orders.OrderCreated(order=snap(A, 2, S.NEW, **CARD_FIELDS)),
    (A, 3): orders.PaymentConfirmed(
        order=snap(A, 3, S.PROCESSING, **CARD_FIELDS, **PAYER), payer_card_ciphertext=SEALED
    ),
    (A, 4): orders.OrderApproved(order=snap(A, 4, S.APPROVED, **CARD_FIELDS, **PAYER)),
    (B, 1): orders.OrderOpened(order=snap(B, 1, S.PENDING)),
    (B, 2): orders.OrderCreated(order=snap(B, 2, S.NEW)),
    (B, 3): orders.OrderCancelled(order=snap(B, 3, S.CANCELLED)),
    (C, 1): orders.OrderOpened(order=snap(C, 1, S.PENDING)),
    (C, 2): orders.OrderDeclined(
        order=snap(C, 2, S.DECLINED, decline_reason=orders.DeclineReason.NO_REQUISITE)
    ),
}
#: Out of version order, with the same message (same id) delivered twice.
ORDER_SCRIPT = [(A, 2), (A, 1), (A, 3), (A, 1), (B, 1), (B, 3), (C, 2), (A, 4), (B, 2)]
ORDER_SCRIPT += [(A, 3), (C, 1), (C, 2)]


def posting(
    uid: uuid.UUID, kind: PostingKind, legs: dict[str, int], balance: tuple[int, int, int]
) -> LedgerPosted:
    available, held, version = balance
    return LedgerPosted(
        partner_id=PARTNER,
        uid=uid,
        currency="RUB",
        kind=kind,
        legs=[Leg(account=account, amount_minor=amount) for account, amount in legs.items()],
        available_minor=available,
        held_minor=held,
        balance_version=version,
    )


AVAILABLE, HELD = f"partner:{PARTNER}:available", f"partner:{PARTNER}:held"
HOLD = posting(B, PostingKind.HOLD, {AVAILABLE: -10_200, HELD: 10_200}, (89_800, 10_200, 1))
RELEASE = posting(B, PostingKind.RELEASE, {HELD: -10_200, AVAILABLE: 10_200}, (100_000, 0, 2))
CREDIT = posting(
    A,
    PostingKind.DEPOSIT_CREDIT,
    {"external:settlement": -150_000, AVAILABLE: 147_000, "system:fees": 3_000},
    (247_000, 0, 3),
)
#: Balance versions 2, 1, 1 (same id), 3, 2 (a re-publication with a new id).
LEDGER_SCRIPT = [(RELEASE, 1), (HOLD, 2), (HOLD, 2), (CREDIT, 3), (RELEASE, 4)]


# --- what the database must hold afterwards ---------------------------------------------


def rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def assert_projected(engine: Engine) -> None:
    """The exact state the scripted history projects to, however it was delivered."""
    got_orders = rows(
        engine,
        "SELECT uid, version, status, callback_url, card_id, payer_card_masked,"
        " payer_card_encrypted, decline_reason, updated_at FROM orders ORDER BY uid",
    )
    assert got_orders == [
        (A, 4, "approved", CALLBACK, CARD, "411111******1111", SEALED, None, at(4)),
        (B, 3, "cancelled", None, None, None, None, None, at(3)),
        (C, 2, "declined", None, None, None, None, "no_requisite", at(2)),
    ]
    events = rows(engine, "SELECT event_id, order_uid, seq, type, payload FROM order_events")
    assert sorted((e.order_uid, e.seq) for e in events) == sorted(HISTORY)
    assert {e.event_id for e in events} == {event_id(*key) for key in HISTORY}
    assert all(e.type == HISTORY[(e.order_uid, e.seq)].TYPE for e in events)
    assert not any(SEALED in str(e.payload) for e in events)  # card data only in its column
    legs = rows(engine, "SELECT order_uid, kind, account, amount_minor FROM ledger_postings")
    expected = [
        (p.uid, p.kind.value, leg.account, leg.amount_minor)
        for p in (HOLD, RELEASE, CREDIT)
        for leg in p.legs
    ]
    assert sorted(map(tuple, legs)) == sorted(expected)
    assert rows(engine, "SELECT partner_id, currency, available_minor, held_minor, version"
                " FROM balance_snapshots") == [(PARTNER, "RUB", 247_000, 0, 3)]  # fmt: skip


def at(version: int) -> datetime:
    return datetime.fromtimestamp((T0 + version * 1_000) / 1000, tz=UTC)


def projected(engine: Engine) -> bool:
    [(events, legs, newest)] = rows(
        engine,
        "SELECT (SELECT count(*) FROM order_events), (SELECT count(*) FROM ledger_postings),"
        " (SELECT count(*) FROM orders WHERE (uid, version) IN"
        f" (('{A}', 4), ('{B}', 3), ('{C}', 2)))",
    )
    balances = rows(engine, "SELECT version FROM balance_snapshots")
    return (events, legs, newest, balances) == (len(HISTORY), 7, 3, [(3,)])


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    """The test's own view of the database, with the partner and card orders refer to."""
    engine = create_engine(migrated_database_url, poolclass=NullPool)
    tables = Base.metadata.tables
    with engine.begin() as conn:
        conn.execute(insert(tables["card_pools"]).values(id="main", name="Main"))
        conn.execute(
            insert(tables["partners"]).values(
                id=PARTNER, name="Acme", deposit_fee_bp=200, withdrawal_fee_bp=200, pool_id="main"
            )
        )
        conn.execute(insert(tables["cards"]).values(**card_row()))
    yield engine
    engine.dispose()


def card_row() -> dict[str, Any]:
    return {
        "id": CARD,
        "pool_id": "main",
        "pan_encrypted": b"sealed",
        "pan_masked": "220220******1234",
        "pan_fingerprint": b"fingerprint",
        "bank": "Bank",
        "holder": "IVAN P",
        "currency": "RUB",
        "expires_on": datetime(2030, 1, 31).date(),
        "daily_limit_minor": 10**9,
        "monthly_limit_minor": 10**10,
        "daily_count_limit": 100,
        "monthly_count_limit": 1000,
        "min_order_minor": 100,
        "max_order_minor": 10**8,
    }


@pytest.fixture
def settings(
    kafka_bootstrap: str, migrated_database_url: str, event_topics: str
) -> ProjectorSettings:
    """Small batches, so reordering and duplicates span batch boundaries too."""
    return ProjectorSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=migrated_database_url,
        topic_prefix=event_topics,
        batch_size=3,
        max_wait_ms=100,
        retry_initial_s=0.05,
        retry_max_s=0.5,
        db_connect_timeout_s=2,
        log_interval_s=0,
    )


async def produce_history(
    producer: AIOKafkaProducer, settings: ProjectorSettings, *, garbage: bool = False
) -> None:
    """The scripted history; with ``garbage``, an undecodable record in the middle of it."""
    for n, (uid, version) in enumerate(ORDER_SCRIPT):
        if garbage and n == len(ORDER_SCRIPT) // 2:
            await send(producer, settings.order_events_topic, str(A), GARBAGE)
        raw = encode(HISTORY[(uid, version)], message_id=event_id(uid, version))
        await send(producer, settings.order_events_topic, str(uid), raw)
    for message, n in LEDGER_SCRIPT:
        raw = encode(message, message_id=uuid.UUID(int=n))
        await send(producer, settings.ledger_events_topic, PARTNER, raw)


async def send(producer: AIOKafkaProducer, topic: str, key: str, value: bytes) -> None:
    await producer.send_and_wait(topic, value, key=key.encode())


@asynccontextmanager
async def projecting(settings: ProjectorSettings) -> AsyncIterator[asyncio.Task[None]]:
    """Run the projector in-process; stop it gracefully afterwards (its errors propagate)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(settings, stop), name="projector")
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE_S)


async def committed_offsets(settings: ProjectorSettings) -> dict[str, int]:
    """Per topic, the sum of the group's committed offsets (0 where nothing is committed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=settings.consumer_group
    )
    await consumer.start()
    try:
        totals = {}
        for topic, spec in (
            (settings.order_events_topic, ORDER_EVENTS),
            (settings.ledger_events_topic, LEDGER_EVENTS),
        ):
            partitions = [TopicPartition(topic, p) for p in range(spec.partitions)]
            offsets = [await consumer.committed(tp) for tp in partitions]
            totals[topic] = sum(offset or 0 for offset in offsets)
        return totals
    finally:
        await consumer.stop()


async def all_committed(settings: ProjectorSettings) -> bool:
    """True once the group's offsets cover every record of both topics."""
    expected = {
        settings.order_events_topic: len(ORDER_SCRIPT),
        settings.ledger_events_topic: len(LEDGER_SCRIPT),
    }
    got = await committed_offsets(settings)
    return got[settings.order_events_topic] >= expected[settings.order_events_topic] and (
        got[settings.ledger_events_topic] == expected[settings.ledger_events_topic]
    )


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum("database unavailable" in r.getMessage() for r in caplog.records)


# --- the tests --------------------------------------------------------------------------


async def test_reordered_and_duplicated_events_project_exactly_once_and_garbage_is_dead_lettered(
    settings: ProjectorSettings, engine: Engine, producer: AIOKafkaProducer
) -> None:
    await produce_history(producer, settings, garbage=True)
    async with projecting(settings) as task:
        await eventually(lambda: projected(engine), "the history to be projected", task)
        await eventually(lambda: all_committed(settings), "the offsets to be committed", task)
        await eventually(
            lambda: rows(engine, "SELECT count(*) FROM dead_letters") == [(1,)],
            "the dead letter to be stored",
            task,
        )
    assert_projected(engine)
    [letter] = await first_records(settings.kafka_bootstrap_servers, settings.dead_letters_topic, 1)
    headers = dict(letter.headers)
    [(offset, uid, status, value)] = rows(
        engine, "SELECT source_offset, order_uid, status, value FROM dead_letters"
    )
    assert (offset, uid, status, bytes(value)) == (
        int(headers["keeper.source.offset"]),
        A,
        "open",
        GARBAGE,
    )
    assert letter.value == GARBAGE  # untouched, so it can be inspected and replayed
    assert letter.key == settings.order_events_topic.encode()
    assert headers["keeper.source.topic"] == settings.order_events_topic.encode()
    assert headers["keeper.error"].startswith(b"not a Keeper envelope")
    assert headers["keeper.source.key"] == str(A).encode()
    # everything after the garbage was projected as well: the projector kept going
    assert await committed_offsets(settings) == {
        settings.order_events_topic: len(ORDER_SCRIPT) + 1,
        settings.ledger_events_topic: len(LEDGER_SCRIPT),
    }


async def test_a_projector_cancelled_before_its_offset_commit_leaves_nothing_twice(
    settings: ProjectorSettings,
    engine: Engine,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crash window of at-least-once: the database has a batch, Kafka does not know."""
    reached = asyncio.Event()

    async def commit_never(*_: Any) -> bool:
        reached.set()
        await asyncio.Event().wait()  # blocks until cancelled: the offsets never move
        return False

    await produce_history(producer, settings)
    monkeypatch.setattr(batch_consumer, "commit_offsets", commit_never)
    stop = asyncio.Event()
    crashed = asyncio.create_task(run_projector(settings, stop), name="projector")
    await eventually(reached.is_set, "the first batch to be written", crashed)
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    written = rows(engine, "SELECT count(*) FROM order_events")[0][0]
    written += rows(engine, "SELECT count(*) FROM ledger_postings")[0][0]
    assert written > 0, "the first batch reached the database"
    assert await committed_offsets(settings) == {
        settings.order_events_topic: 0,
        settings.ledger_events_topic: 0,
    }

    monkeypatch.undo()
    async with projecting(settings) as task:
        await eventually(lambda: all_committed(settings), "the restarted run to commit", task)
    assert_projected(engine)  # the redelivered batch added nothing


async def test_a_database_that_refuses_connections_delays_but_loses_nothing(
    settings: ProjectorSettings,
    engine: Engine,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with DatabaseGate(settings.database_url) as gate:
        behind_gate = settings.model_copy(update={"database_url": gate.url})
        await produce_history(producer, settings)
        async with projecting(behind_gate) as task:
            await eventually(lambda: gate.refused >= 3, "a few refused connections", task)
            assert rows(engine, "SELECT count(*) FROM order_events") == [(0,)]
            assert await committed_offsets(settings) == {
                settings.order_events_topic: 0,
                settings.ledger_events_topic: 0,
            }
            gate.open = True
            await eventually(lambda: all_committed(settings), "the recovered run to commit", task)
    assert_projected(engine)
    assert retries_logged(caplog) >= 3
    # transient, not poison: nothing was dead-lettered
    assert rows(engine, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert not await first_records(
        settings.kafka_bootstrap_servers, settings.dead_letters_topic, 1, timeout_s=1
    )


async def test_a_connection_terminated_mid_batch_is_retried(
    settings: ProjectorSettings,
    engine: Engine,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """pg_terminate_backend on the projector's own connection, inside its first batch."""
    terminated: list[int] = []

    def engine_that_loses_its_first_connection(s: ProjectorSettings) -> Engine:
        made = real_engine(s)

        @event.listens_for(made, "before_cursor_execute")
        def terminate_once(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if not terminated and statement.startswith("INSERT"):
                pid = conn.connection.dbapi_connection.info.backend_pid
                terminated.append(pid)
                with engine.connect() as admin:
                    admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

        return made

    real_engine = projector.projector_engine
    monkeypatch.setattr(projector, "projector_engine", engine_that_loses_its_first_connection)
    await produce_history(producer, settings)
    async with projecting(settings) as task:
        await eventually(lambda: all_committed(settings), "the offsets to be committed", task)
    assert len(terminated) == 1
    assert retries_logged(caplog) == 1  # the batch failed once, then went through
    assert_projected(engine)


async def test_a_database_missing_its_tables_halts_the_projector_with_nothing_committed(
    settings: ProjectorSettings, engine: Engine, producer: AIOKafkaProducer
) -> None:
    """The one fatal case: every write would fail (here the migrations are missing), so
    quarantining would bury the whole stream; the projector halts instead (exit status 2)."""
    await produce_history(producer, settings)
    with engine.begin() as conn:  # every batch writes one of them
        conn.execute(text("ALTER TABLE order_events RENAME TO order_events_gone"))
        conn.execute(text("ALTER TABLE ledger_postings RENAME TO ledger_postings_gone"))
    with pytest.raises(ProjectorHaltedError, match="sqlstate=42P01"):
        await asyncio.wait_for(run_projector(settings, asyncio.Event()), DEADLINE_S)
    assert await committed_offsets(settings) == {
        settings.order_events_topic: 0,
        settings.ledger_events_topic: 0,
    }
    assert rows(engine, "SELECT count(*) FROM dead_letters") == [(0,)]

    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE order_events_gone RENAME TO order_events"))
        conn.execute(text("ALTER TABLE ledger_postings_gone RENAME TO ledger_postings"))
    async with projecting(settings) as task:
        await eventually(lambda: all_committed(settings), "the repaired run to commit", task)
    assert_projected(engine)


async def test_the_process_projects_and_stops_cleanly_on_sigterm_without_logging_card_data(
    settings: ProjectorSettings, engine: Engine, producer: AIOKafkaProducer
) -> None:
    """``python -m stream_agents.projector`` as the supervisor runs it."""
    await produce_history(producer, settings, garbage=True)
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url,
        "KEEPER_TOPIC_PREFIX": settings.topic_prefix,
        "KEEPER_PROJECTOR_MAX_WAIT_MS": "100",
        "KEEPER_PROJECTOR_LOG_INTERVAL_S": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream_agents.projector",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await eventually(lambda: all_committed(settings), "the process to commit")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    log = output.decode()
    assert process.returncode == 0, log
    assert_projected(engine)
    assert "projector stopped after" in log
    assert "dead-lettered" in log
    for secret in (SEALED, "411111", settings.database_url.split("@")[0]):
        assert secret not in log


def test_a_late_older_snapshot_never_rolls_an_order_back_but_fills_its_callback_url(
    engine: Engine,
) -> None:
    """Across transactions (not only within one batch): v2 first, then v1 (with the URL)."""
    newer, older = HISTORY[(A, 2)], HISTORY[(A, 1)]
    for key, message in (((A, 2), newer), ((A, 1), older), ((A, 2), newer)):
        env = decode(encode(message, message_id=event_id(*key)))
        with engine.begin() as conn:
            project_order_events(conn, [env])  # type: ignore[list-item]
    [(version, status, callback)] = rows(engine, "SELECT version, status, callback_url FROM orders")
    assert (version, status, callback) == (2, "new", CALLBACK)
    assert rows(engine, "SELECT seq FROM order_events ORDER BY seq") == [(1,), (2,)]


def test_an_unknown_partner_is_refused_by_the_database_not_skipped(engine: Engine) -> None:
    ghost = orders.OrderOpened(order=snap(A, 1, S.PENDING).model_copy(update={"partner_id": "x"}))
    env = decode(encode(ghost))
    with pytest.raises(IntegrityError, match="fk_orders_partner_id_partners"), engine.begin() as c:
        project_order_events(c, [env])  # type: ignore[list-item]


# --- a gate in front of PostgreSQL ------------------------------------------------------


class DatabaseGate:
    """A TCP relay to PostgreSQL that refuses (accepts, then hangs up) until ``open``.

    It plays a server that is restarting: the projector's connection attempts fail with a
    driver error, and the moment the gate opens the same URL works again.
    """

    def __init__(self, database_url: str) -> None:
        self._target = make_url(database_url)
        self.open = False
        self.refused = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DatabaseGate:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = self._target.set(host="127.0.0.1", port=port).render_as_string(
            hide_password=False
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        """Close every socket; the relays then end on their own (EOF), nothing is cancelled."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self._relays), DEADLINE_S)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            self.refused += 1
            writer.close()
            return
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        up_reader, up_writer = await asyncio.open_connection(self._target.host, self._target.port)
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            self._relays.discard(relay)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then close the other side too (half-closed relays would hang)."""
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


# --- a bank notification attached to a deposit that then closes unpaid ------------------


def _attach_credit(engine: Engine, uid: uuid.UUID, amount_minor: int) -> uuid.UUID:
    """A bank credit on the card that no open order matched, attached by operator olga to
    the deposit ``uid`` while it is still open."""
    sessions = sessionmaker(engine)
    with sessions.begin() as s:
        notice = unmatched_credit(s, str(CARD), amount_minor)
    with sessions.begin() as s:
        done = notifications.attach(s, notice, uid, "olga")
    assert done.order_status == "new"  # open: the console goes on to confirm and approve it
    return notice


def _project(engine: Engine, *keys: tuple[uuid.UUID, int]) -> None:
    items = [decode(encode(HISTORY[key], message_id=event_id(*key))) for key in keys]
    projector.write_batch(engine, items, [])  # type: ignore[arg-type]


def test_a_deposit_closing_unpaid_hands_its_attached_notification_to_disputes(
    engine: Engine,
) -> None:
    """The confirmation came too late (the deposit expired meanwhile): the credit the
    operator attached becomes the evidence of a dispute on it, once, whatever is replayed."""
    _project(engine, (A, 1), (A, 2))
    notice = _attach_credit(engine, A, 150_000)
    assert rows(engine, "SELECT count(*) FROM disputes") == [(0,)]

    HISTORY[(A, 9)] = orders.OrderExpired(order=snap(A, 9, S.EXPIRED, **CARD_FIELDS))
    try:
        _project(engine, (A, 9))
        _project(engine, (A, 9), (A, 2))  # redelivered, with an older event: nothing new
    finally:
        del HISTORY[(A, 9)]

    [(opened_by, evidence, status, comment)] = rows(
        engine, "SELECT opened_by, notification_id, status, comment FROM disputes"
    )
    assert (opened_by, evidence, status) == ("operator", notice, "open")
    assert "attached by olga" in comment
    assert rows(engine, "SELECT status FROM orders") == [("expired",)]
    assert rows(engine, "SELECT outcome FROM notifications") == [("attached",)]
    [(actor,)] = rows(engine, "SELECT actor FROM audit_log WHERE action = 'dispute.open'")
    assert actor == "olga"
    assert rows(
        engine, "SELECT count(*) FROM callback_deliveries WHERE event_type = 'dispute.opened'"
    ) == [(1,)]


def test_a_deposit_approved_after_the_attach_opens_no_dispute(engine: Engine) -> None:
    _project(engine, (A, 1), (A, 2))
    _attach_credit(engine, A, 150_000)
    _project(engine, (A, 3), (A, 4))
    assert rows(engine, "SELECT status FROM orders") == [("approved",)]
    assert rows(engine, "SELECT count(*) FROM disputes") == [(0,)]
