"""Partner callbacks on the real broker and PostgreSQL, into a real HTTP receiver.

Each test gets its own topics and migrated database; order events are published straight to
``<prefix>.order-events`` and the real projector (in-process) writes ``orders``, which the
sender waits for. The callbacks process runs in-process too (``run_callbacks``), and a small
aiohttp server on a free port plays the partner: it records every request and answers what
the test scripts (500s first, slow answers, ...).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from db.crypto import SecretBox
from db.models import Base
from db.repositories import callbacks as repo
from db.repositories import dead_letters, disputes
from domain.disputes import DisputeVerdict, OpenedBy
from schemas import orders
from schemas.registry import encode
from stream_agents.callbacks.payload import delivery_id
from stream_agents.callbacks.process import main as callbacks_main
from stream_agents.callbacks.process import run_callbacks
from stream_agents.callbacks.settings import CallbackSettings
from stream_agents.callbacks.verify import verify_callback
from stream_agents.dead_letters import KafkaRepublisher
from stream_agents.projector import ProjectorSettings, run_projector
from tests.fixtures import kafka
from tests.fixtures.kafka import DEADLINE_S, first_records

pytestmark = pytest.mark.integration

#: Its checks are cheap queries: they may look often.
eventually = functools.partial(kafka.eventually, poll_s=0.05)
SHOP, RIVAL = "shop", "rival"
T0 = 1_767_225_600_000
S = orders.OrderStatus


# --- the partner's side: an HTTP receiver -----------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Records every request; answers the next scripted status for its path, else 200."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    always: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body, time.monotonic()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        planned = self.script.get(request.path)
        status = planned.pop(0) if planned else self.always.get(request.path, 200)
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def ids(self) -> list[str]:
        return [r.headers["Keeper-Delivery-Id"] for r in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    found.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield found
    await runner.cleanup()


# --- database, topics, processes --------------------------------------------------------


@dataclass
class World:
    engine: Engine
    sessions: sessionmaker[Session]
    box: SecretBox
    secrets: list[str]
    callbacks: CallbackSettings
    projector: ProjectorSettings
    receiver: Receiver

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params))

    def sql_script(self, script: str) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(script)

    def delivery(self, uid: uuid.UUID, event: str) -> Any:
        rows = self.sql(
            "SELECT * FROM callback_deliveries WHERE delivery_id = :d", d=delivery_id(uid, event)
        )
        return rows[0] if rows else None

    def status(self, uid: uuid.UUID, event: str) -> str | None:
        row = self.delivery(uid, event)
        return None if row is None else row.status


@pytest.fixture
def world(
    kafka_bootstrap: str, migrated_database_url: str, event_topics: str, receiver: Receiver
) -> Iterator[World]:
    """Partner ``shop`` (callback URL on the receiver, two active secrets: a rotation) and
    partner ``rival`` (no callback URL); settings with second-long back-off."""
    engine = create_engine(migrated_database_url, poolclass=NullPool)
    tables = Base.metadata.tables
    box = SecretBox.from_settings()
    with engine.begin() as conn:
        conn.execute(insert(tables["card_pools"]).values(id="main", name="Main"))
        for partner, url in ((SHOP, f"{receiver.base_url}/shop"), (RIVAL, None)):
            conn.execute(
                insert(tables["partners"]).values(
                    id=partner, name=partner, deposit_fee_bp=200, withdrawal_fee_bp=150,
                    pool_id="main", callback_url=url,
                )
            )  # fmt: skip
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    with sessions.begin() as s:
        secrets = [repo.issue_callback_secret(s, box, SHOP, actor="test")[1] for _ in range(2)]
    callbacks = CallbackSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=migrated_database_url,
        topic_prefix=event_topics,
        max_wait_ms=100,
        metadata_max_age_ms=1000,
        poll_interval_s=0.05,
        http_timeout_s=2.0,
        lease_s=3.0,
        retry_base_s=0.2,
        retry_cap_s=0.8,
        retry_jitter=0.0,
        retry_window_s=60.0,
        not_projected_delay_s=0.1,
        db_retry_s=0.2,
    )
    projector = ProjectorSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=migrated_database_url,
        topic_prefix=event_topics,
        max_wait_ms=100,
        metadata_max_age_ms=1000,
    )
    yield World(engine, sessions, box, secrets, callbacks, projector, receiver)
    engine.dispose()


@asynccontextmanager
async def running(
    world: World, settings: CallbackSettings | None = None, *, projector: bool = True
) -> AsyncIterator[asyncio.Task[None]]:
    """The callbacks process (and the projector) in-process; stopped gracefully after."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_callbacks(settings or world.callbacks, stop, box=world.box), name="callbacks"
    )
    projecting = (
        asyncio.create_task(run_projector(world.projector, stop), name="projector")
        if projector
        else None
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE_S)
        if projecting is not None:
            await asyncio.wait_for(projecting, DEADLINE_S)


# --- order histories --------------------------------------------------------------------


def snap(uid: uuid.UUID, partner: str, version: int, status: orders.OrderStatus) -> Any:
    return orders.OrderSnapshot(
        uid=uid,
        version=version,
        partner_id=partner,
        partner_order_id=f"po-{uid.hex[-12:]}",
        direction=orders.Direction.WITHDRAWAL,
        status=status,
        amount_minor=10_000,
        fee_minor=150,
        currency="RUB",
        ttl_s=900,
        created_at_ms=T0,
        expires_at_ms=T0 + 900_000,
        updated_at_ms=T0 + version * 1_000,
        payer_card_masked="424242******4242" if version > 1 else None,
    )


def history(
    uid: uuid.UUID, partner: str = SHOP, final: type[Any] = orders.OrderApproved, url: str = ""
) -> list[Any]:
    """Opened (with the order's own callback URL, if any), created, then ``final``."""
    status = S(final.TYPE.removeprefix("order."))
    return [
        orders.OrderOpened(order=snap(uid, partner, 1, S.PENDING), callback_url=url or None),
        orders.OrderCreated(order=snap(uid, partner, 2, S.NEW)),
        final(order=snap(uid, partner, 3, status)),
    ]


async def publish(producer: AIOKafkaProducer, world: World, events: list[Any]) -> None:
    for event in events:
        uid = event.order.uid
        raw = encode(event, message_id=uuid.uuid5(uid, f"v{event.order.version}"))
        await producer.send_and_wait(world.callbacks.order_events_topic, raw, key=str(uid).encode())


def genuine(world: World, request: Received) -> dict[str, Any]:
    """Verify ``request`` as the partner would (each secret alone must suffice); its body."""
    for secret in world.secrets:
        verify_callback(
            [secret],
            request.body,
            request.headers["Keeper-Timestamp"],
            request.headers["Keeper-Signature"],
        )
    body: dict[str, Any] = json.loads(request.body)
    assert request.headers["Keeper-Delivery-Id"] == body["delivery_id"]
    return body


# --- the tests --------------------------------------------------------------------------

A, B, C = (uuid.UUID(int=n) for n in (0xA1, 0xB2, 0xC3))


async def test_terminal_events_are_delivered_signed_once_to_the_right_url(
    world: World, producer: AIOKafkaProducer
) -> None:
    own_url = f"{world.receiver.base_url}/orders/a"
    events = history(A, url=own_url) + history(B, final=orders.OrderCancelled)
    events += history(C, partner=RIVAL, final=orders.OrderExpired)
    await publish(producer, world, events)
    await publish(producer, world, [events[2], events[5]])  # the terminal events, redelivered
    async with running(world) as task:
        await eventually(
            lambda: (
                (world.status(A, "order.approved"), world.status(B, "order.cancelled"))
                == ("delivered", "delivered")
            ),
            "both callbacks delivered",
            task,
        )
        await eventually(lambda: world.status(C, "order.expired") == "skipped", "skip", task)
        await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one
    [to_a], [to_b] = world.receiver.to("/orders/a"), world.receiver.to("/shop")
    assert len(world.receiver.requests) == 2  # nothing for rival, nothing for open states
    body_a, body_b = genuine(world, to_a), genuine(world, to_b)
    assert body_a["delivery_id"] == str(delivery_id(A, "order.approved"))
    assert body_a["event"] == "order.approved"
    assert body_a["order"]["status"] == "approved"
    assert body_a["order"]["payer_card_masked"] == "424242******4242"
    assert "4242424242424242" not in to_a.body.decode()
    assert body_b["order"]["uid"] == str(B)
    assert to_a.headers["Keeper-Attempt"] == "1"
    assert len(to_a.headers["Keeper-Signature"].split(",")) == 2  # two active secrets
    rows = world.sql("SELECT delivery_id, status, attempts, body FROM callback_deliveries")
    assert len(rows) == 3
    row_a = world.delivery(A, "order.approved")
    assert (row_a.attempts, row_a.last_status_code, row_a.last_url) == (1, 200, own_url)
    assert row_a.body.encode() == to_a.body  # the exact bytes that were signed and sent
    assert world.delivery(C, "order.expired").last_error == "no callback URL"


async def test_a_delivery_the_database_refuses_is_quarantined_then_retried_after_the_fix(
    world: World, producer: AIOKafkaProducer
) -> None:
    """The intake's poison path: B's delivery is refused for good (a trigger plays the data
    error), A's goes on; B is dead-lettered by the callbacks group, stored with its order,
    and once the refusal is gone a retry records and delivers it exactly once."""
    world.sql_script(
        f"""
        CREATE FUNCTION refuse_b() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.order_uid = '{B}' THEN
                RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_b BEFORE INSERT ON callback_deliveries
            FOR EACH ROW EXECUTE FUNCTION refuse_b();
        """
    )
    await publish(producer, world, history(B) + history(A))
    group = world.callbacks.consumer_group

    def letters() -> list[Any]:
        return world.sql(
            "SELECT id, order_uid, status, reason FROM dead_letters WHERE consumer = :g", g=group
        )

    async with running(world) as task:
        await eventually(lambda: world.status(A, "order.approved") == "delivered", "A", task)
        await eventually(lambda: len(letters()) == 1, "B's dead letter stored", task)
        [(letter_id, order_uid, status, reason)] = letters()
        assert (order_uid, status) == (B, "open")
        assert "sqlstate=23514" in reason
        assert world.delivery(B, "order.approved") is None

        world.sql_script("DROP TRIGGER refuse_b ON callback_deliveries")  # the fix

        def retry() -> None:  # as the console's button does it (blocking: off the loop)
            bootstrap = world.callbacks.kafka_bootstrap_servers
            with KafkaRepublisher(bootstrap) as publisher, world.sessions.begin() as session:
                dead_letters.retry(session, publisher, letter_id, "ops:bob")

        await asyncio.to_thread(retry)
        await eventually(lambda: world.status(B, "order.approved") == "delivered", "B", task)
        await asyncio.sleep(0.5)  # room for a duplicate to show up, if there were one
    assert len(world.receiver.to("/shop")) == 2  # A once, B once
    assert [row.status for row in letters()] == ["retried"]
    assert world.sql("SELECT count(*) FROM dead_letters WHERE status = 'open'") == [(0,)]


async def test_failures_are_retried_with_growing_back_off_until_delivered(
    world: World, producer: AIOKafkaProducer
) -> None:
    world.receiver.script["/shop"] = [500, 500, 503]
    await publish(producer, world, history(A, final=orders.OrderRejected))
    async with running(world) as task:
        await eventually(lambda: world.status(A, "order.rejected") == "delivered", "retry", task)
    attempts = world.receiver.to("/shop")
    assert [r.headers["Keeper-Attempt"] for r in attempts] == ["1", "2", "3", "4"]
    assert {r.headers["Keeper-Delivery-Id"] for r in attempts} == {
        str(delivery_id(A, "order.rejected"))
    }
    assert len({r.body for r in attempts}) == 1  # every attempt sends the same bytes
    for request in attempts:
        genuine(world, request)  # each attempt freshly signed
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    # Lower bounds only (a busy machine may add any delay): the back-off is honoured and
    # the third wait is at least the shortest the schedule allows for it (0.8 s less 25 %
    # jitter). The exact schedule is unit-tested (test_back_off_doubles_up_to_the_cap...).
    assert gaps[0] >= 0.15
    assert gaps[2] >= 0.6
    assert world.delivery(A, "order.rejected").attempts == 4


async def test_after_the_window_a_delivery_is_parked_then_resent_from_the_console(
    world: World, producer: AIOKafkaProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.receiver.always["/shop"] = 503
    short = world.callbacks.model_copy(update={"retry_window_s": 1.5})
    await publish(producer, world, history(A, final=orders.OrderFailed))
    async with running(world, short) as task:
        await eventually(lambda: world.status(A, "order.failed") == "dead", "parking", task)
        parked = world.delivery(A, "order.failed")
        assert parked.attempts >= 3
        assert (parked.last_status_code, parked.last_error) == (503, "HTTP 503")
        [letter] = await first_records(
            world.callbacks.kafka_bootstrap_servers, world.callbacks.dead_letters_topic, 1
        )
        headers = dict(letter.headers)
        assert headers["keeper.delivery_id"] == str(parked.delivery_id).encode()
        assert headers["keeper.error"] == b"callback not delivered: HTTP 503"
        document = json.loads(letter.value)
        assert document["body"] == parked.body
        assert (document["attempts"], document["partner_id"]) == (parked.attempts, SHOP)

        # The partner is fixed; the console resends (the repository function it calls).
        world.receiver.always.pop("/shop")
        with world.sessions.begin() as s:
            view = repo.resend(s, parked.delivery_id, actor="olga")
        assert (view.status, view.attempts) == ("pending", 0)
        await eventually(lambda: world.status(A, "order.failed") == "delivered", "resend", task)
    last = world.receiver.to("/shop")[-1]
    assert last.headers["Keeper-Attempt"] == "1"
    assert last.headers["Keeper-Delivery-Id"] == str(parked.delivery_id)  # dedupable
    [audit] = world.sql(
        "SELECT actor, before, after FROM audit_log WHERE action = 'callback.resend'"
    )
    assert audit.actor == "olga"
    assert (audit.before["status"], audit.after["status"]) == ("dead", "pending")

    # And from the command line: a delivered one may be resent too, a pending one not.
    monkeypatch.setenv("DATABASE_URL", world.callbacks.database_url)
    with pytest.raises(SystemExit) as done:
        callbacks_main(["resend", str(parked.delivery_id), "--actor", "ops"])
    assert done.value.code == 0
    assert world.status(A, "order.failed") == "pending"
    with pytest.raises(SystemExit) as refused:
        callbacks_main(["resend", str(parked.delivery_id)])
    assert refused.value.code == 1


async def test_nothing_is_sent_before_the_durable_record_has_the_order(
    world: World, producer: AIOKafkaProducer
) -> None:
    await publish(producer, world, history(A, final=orders.OrderDeclined))
    async with running(world, projector=False) as task:
        await eventually(lambda: world.status(A, "order.declined") == "pending", "intake", task)
        await asyncio.sleep(1.0)
        assert world.receiver.requests == []
        assert world.delivery(A, "order.declined").attempts == 0
    async with running(world) as task:
        await eventually(lambda: world.status(A, "order.declined") == "delivered", "sent", task)
    assert len(world.receiver.requests) == 1


async def test_a_process_stopped_midway_loses_nothing(
    world: World, producer: AIOKafkaProducer
) -> None:
    uids = [uuid.UUID(int=0x1000 + n) for n in range(12)]
    world.receiver.delay_s = 0.3  # slow partner: the crash lands mid-request
    batchy = world.callbacks.model_copy(update={"send_batch": 2, "batch_size": 5})
    await publish(producer, world, [e for uid in uids[:6] for e in history(uid)])

    def delivered() -> int:
        return world.sql("SELECT count(*) FROM callback_deliveries WHERE status = 'delivered'")[0][
            0
        ]

    stop = asyncio.Event()
    projector = asyncio.create_task(run_projector(world.projector, stop))
    crashing = asyncio.create_task(
        run_callbacks(batchy, asyncio.Event(), box=world.box), name="callbacks"
    )
    await eventually(lambda: delivered() >= 2, "some callbacks delivered", crashing)
    crashing.cancel()  # as good as kill -9: requests in flight, a batch not yet committed
    with pytest.raises(asyncio.CancelledError):
        await crashing
    assert delivered() < len(uids)
    await publish(producer, world, [e for uid in uids[6:] for e in history(uid)])
    async with running(world, batchy, projector=False):
        await eventually(lambda: delivered() == len(uids), "every callback delivered")
    stop.set()
    await asyncio.wait_for(projector, DEADLINE_S)
    expected = {str(delivery_id(uid, "order.approved")) for uid in uids}
    assert set(world.receiver.ids()) == expected  # each one arrived (a retry may repeat one)
    assert world.sql("SELECT count(*) FROM callback_deliveries")[0][0] == len(uids)
    for request in world.receiver.requests:
        genuine(world, request)


async def test_dispute_steps_are_called_back_signed_like_orders(
    world: World, producer: AIOKafkaProducer
) -> None:
    """A dispute opened and rejected on an expired deposit: two more callbacks, signed and
    logged like the order's own, with the dispute and never the operator's name."""
    deposit = orders.Direction.DEPOSIT
    events = [
        e.model_copy(update={"order": e.order.model_copy(update={"direction": deposit})})
        for e in history(A, final=orders.OrderExpired)
    ]
    await publish(producer, world, events)
    async with running(world) as task:
        await eventually(
            lambda: world.status(A, "order.expired") == "delivered", "order callback", task
        )
        with world.sessions.begin() as s:
            opened = disputes.open_dispute(
                s,
                order_uid=A,
                opened_by=OpenedBy.PARTNER,
                receipt=b"%PDF-1.7 receipt",
                comment=None,
                now=datetime.now(UTC),
                deadline_s=3600,
                partner_id=SHOP,
            )
        with world.sessions.begin() as s:
            disputes.resolve_dispute(
                s,
                dispute_id=opened.dispute_id,
                verdict=DisputeVerdict.REJECT,
                reason="no such transfer",
                actor="olga",
                now=datetime.now(UTC),
            )
        for event in ("dispute.opened", "dispute.resolved"):
            await eventually(
                functools.partial(lambda e: world.status(A, e) == "delivered", event), event, task
            )
    bodies = [genuine(world, request) for request in world.receiver.to("/shop")]
    by_event = {body["event"]: body for body in bodies}
    assert set(by_event) == {"order.expired", "dispute.opened", "dispute.resolved"}
    resolved = by_event["dispute.resolved"]["dispute"]
    assert (resolved["status"], resolved["resolution_reason"]) == ("rejected", "no such transfer")
    assert resolved["dispute_id"] == str(opened.dispute_id)
    assert by_event["dispute.opened"]["dispute"]["status"] == "open"
    assert all("olga" not in json.dumps(body) for body in bodies)
