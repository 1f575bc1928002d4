"""The API reports ready only when the real broker and database answer, its own readers are
up, and no pipeline consumer has halted, stalled or fallen behind."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from domain.outcomes import Done
from ingest_api.app import create_app
from ingest_api.bus import CommandBus
from ingest_api.health import get_running_services, get_settings
from ingest_api.outcomes import ask
from ingest_api.payform.feed import OrderFeed
from ingest_api.pipeline_health import PipelineHealthSettings, PipelineMonitor
from ingest_api.readers import Backoff, ReaderState
from ingest_api.settings import ApiSettings
from schemas import orders
from schemas.registry import decode, encode
from schemas.topics import ORDER_COMMANDS, ORDER_EVENTS
from schemas.topology import ensure_topics
from tests.fixtures.system import drop_topics
from tests.unit.test_schemas import snapshot

pytestmark = pytest.mark.integration

T = TypeVar("T")
#: What readiness adds when the app has no running services (no lifespan under ASGITransport).
NOTHING_ELSE = {"readers": {}, "pipeline": [], "problems": []}


def client_for(settings: ApiSettings, services: Any = None) -> httpx.AsyncClient:
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    if services is not None:
        app.dependency_overrides[get_running_services] = lambda: services
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    timeout_s: float = 30,
    last: list[str] | None = None,
) -> T:
    deadline = time.monotonic() + timeout_s
    while (value := await probe()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; last seen: {last}")
        await asyncio.sleep(0.1)
    return value


async def test_ready_against_real_services(kafka_bootstrap: str, postgres_server_url: str):
    settings = ApiSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=postgres_server_url
    )
    async with client_for(settings) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "kafka": "ok", "database": "ok", **NOTHING_ELSE}


async def test_not_ready_when_services_are_unreachable():
    settings = ApiSettings(
        kafka_bootstrap_servers="127.0.0.1:1",
        database_url="postgresql+psycopg2://keeper:keeper@127.0.0.1:1/keeper",
        readiness_timeout_s=1.0,
    )
    async with client_for(settings) as client:
        ready = await client.get("/readyz")

    body = ready.json()
    assert ready.status_code == 503
    assert body["status"] == "unavailable"
    assert body["kafka"].startswith("error")
    assert body["database"].startswith("error")
    assert [p["part"] for p in body["problems"]] == ["kafka", "database"]


async def test_ready_checks_the_services_the_app_was_built_with(
    kafka_bootstrap: str, postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
):
    """Readiness speaks of the app's own broker and database, whatever the environment says
    (it used to read the environment, and so checked the wrong services in tests)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://nobody:x@127.0.0.1:1/none")
    settings = ApiSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=postgres_server_url
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        ready = await client.get("/readyz")

    assert ready.json() == {"status": "ready", "kafka": "ok", "database": "ok", **NOTHING_ELSE}


# --- the pipeline's consumer groups ----------------------------------------------------------


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: str) -> AsyncIterator[str]:
    """A private prefix with the order topics created; dropped afterwards."""
    prefix = f"{unique_name}."
    await ensure_topics(kafka_bootstrap, [ORDER_COMMANDS, ORDER_EVENTS], prefix=prefix)
    yield prefix
    await drop_topics(kafka_bootstrap, prefix)


async def commit(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> None:
    """Commit ``offset`` on ``tp`` for ``group`` and leave: a consumer that then halted.

    Returns once the broker reports that offset for the group, so what the test then waits
    for is the monitor: on a busy machine the broker now and then acknowledges a commit of a
    member-less consumer that it does not keep, and the commit is simply made again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(10):
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
            await consumer.start()
            try:
                consumer.assign([tp])
                await consumer.commit({tp: offset})
            finally:
                await consumer.stop()
            for _ in range(20):
                committed = await admin.list_consumer_group_offsets(group)
                if tp in committed and committed[tp].offset == offset:
                    return
                await asyncio.sleep(0.1)
        pytest.fail(f"offset {offset} of {group} was never committed")
    finally:
        await admin.close()


async def test_a_halted_consumer_makes_the_api_not_ready_until_it_catches_up(
    kafka_bootstrap: str, postgres_server_url: str, topics: str
):
    prefix = topics
    events = TopicPartition(prefix + ORDER_EVENTS.name, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(events.topic, b"{}", partition=0)
    finally:
        await producer.stop()
    group = prefix + "keeper-projector"
    await commit(kafka_bootstrap, group, events, 1)  # 2 records behind, and gone

    monitor = PipelineMonitor(
        PipelineHealthSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=prefix,
            agents_group=prefix + "agents",
            sample_interval_s=0.2,
            stall_after_s=1.5,
            no_member_grace_s=1.0,
        )
    )
    services = SimpleNamespace(readers=list, pipeline=monitor)
    settings = ApiSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=postgres_server_url
    )
    monitor.start()
    try:
        async with client_for(settings, services) as client:
            seen: list[str] = []

            async def answer(code: int) -> httpx.Response | None:
                response = await client.get("/readyz")
                seen[:] = [response.text]
                return response if response.status_code == code else None

            halted = await eventually(lambda: answer(503), "readiness to see the halted group")
            body = halted.json()
            assert body["status"] == "unavailable"
            assert body["kafka"] == "ok"
            [problem] = body["problems"]
            assert problem["part"] == "projector"
            assert problem["reason"].startswith("halted: no active member")
            assert group in problem["reason"]
            [projector] = [g for g in body["pipeline"] if g["part"] == "projector"]
            assert projector == {
                **projector,
                "group": group,
                "verdict": "halted",
                "members": 0,
                "lag": 2,
            }
            own = await client.get("/readyz", params={"scope": "process"})
            assert own.status_code == 200  # the process itself is fine

            await commit(kafka_bootstrap, group, events, 3)  # it came back and caught up
            recovered = await eventually(
                lambda: answer(200), "readiness after the catch-up", timeout_s=60, last=seen
            )
    finally:
        await monitor.stop()

    body = recovered.json()
    assert body["problems"] == []
    [projector] = [g for g in body["pipeline"] if g["part"] == "projector"]
    assert (projector["verdict"], projector["lag"]) == ("ok", 0)
    assert {g["part"]: g["verdict"] for g in body["pipeline"]}["callbacks"] == "absent"


# --- the API's own readers survive fetch errors ----------------------------------------------


def break_fetches(consumer: AIOKafkaConsumer) -> asyncio.Event:
    """Make ``consumer.getmany`` raise until the returned event is set."""
    healed = asyncio.Event()
    real = consumer.getmany

    async def getmany(*args: Any, **kwargs: Any) -> Any:
        if not healed.is_set():
            await asyncio.sleep(0.05)
            raise KafkaConnectionError("injected fetch failure")
        return await real(*args, **kwargs)

    consumer.getmany = getmany  # type: ignore[method-assign]
    return healed


async def reader_down(client: httpx.AsyncClient, reader: ReaderState) -> dict[str, Any] | None:
    response = await client.get("/readyz", params={"scope": "process"})
    if response.status_code != 503 or reader.up:
        return None
    return dict(response.json())


async def cancel_everything(bootstrap: str, prefix: str, known: orders.OrderSnapshot) -> None:
    """A stand-in order agent: every command cancels ``known``, published as its next event."""
    consumer = AIOKafkaConsumer(
        prefix + ORDER_COMMANDS.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        async for record in consumer:
            decode(record.value or b"")
            after = known.model_copy(
                update={"version": known.version + 1, "status": orders.OrderStatus.CANCELLED}
            )
            event = orders.OrderCancelled(order=after)
            await producer.send_and_wait(prefix + ORDER_EVENTS.name, encode(event), key=record.key)
    finally:
        await consumer.stop()
        await producer.stop()


async def test_the_feed_reader_survives_a_fetch_error_and_readiness_shows_it_down(
    kafka_bootstrap: str, postgres_server_url: str, topics: str
):
    """The order-events feed is how the API learns outcomes (ADR 0003): readiness reports it
    down while its fetches fail, and once they work again a command's event answers it."""
    bus = CommandBus(kafka_bootstrap, topic_prefix=topics)
    feed = OrderFeed(kafka_bootstrap, topic_prefix=topics, backoff=Backoff(0.1, 0.2))
    await bus.start()
    await feed.start()
    order = snapshot(uid=uuid.uuid4(), expires_at_ms=int(time.time() * 1000) + 600_000)
    feed.view.publish(order)
    echo = asyncio.create_task(cancel_everything(kafka_bootstrap, topics, order))
    settings = ApiSettings(
        kafka_bootstrap_servers=kafka_bootstrap, database_url=postgres_server_url
    )
    services = SimpleNamespace(readers=lambda: [feed.reader], pipeline=None)
    try:
        assert feed._consumer is not None
        healed = break_fetches(feed._consumer)
        async with client_for(settings, services) as client:
            body = await eventually(lambda: reader_down(client, feed.reader), "the reader down")
            name = "order-events feed"
            assert body["readers"][name].startswith(f"{name} reader: ")
            assert "KafkaConnectionError" in body["readers"][name]
            assert body["problems"][0]["part"] == name

            healed.set()
            cancel = orders.CancelOrder(uid=order.uid, partner_id=order.partner_id)
            outcome = await ask(feed.view, bus, cancel, timeout_s=20)

            assert isinstance(outcome.judgement, Done), outcome
            assert outcome.judgement.order.status is orders.OrderStatus.CANCELLED
            assert feed.reader.up
            assert feed.reader.last_record_s is not None
            assert (await client.get("/readyz")).status_code == 200
    finally:
        echo.cancel()
        await asyncio.gather(echo, return_exceptions=True)
        await feed.stop()
        await bus.stop()


async def test_the_order_feed_survives_a_fetch_error_and_keeps_delivering(
    kafka_bootstrap: str, topics: str
):
    feed = OrderFeed(kafka_bootstrap, topic_prefix=topics, backoff=Backoff(0.1, 0.2))
    await feed.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        assert feed._consumer is not None
        healed = break_fetches(feed._consumer)

        async def failing() -> bool | None:
            return True if feed.reader.failures >= 2 else None

        await eventually(failing, "two failed fetches")
        assert not feed.reader.up
        assert feed.reader.running
        assert "injected fetch failure" in (feed.reader.last_error or "")

        healed.set()
        uid = uuid.uuid4()
        event = orders.OrderCreated(order=snapshot(uid=uid))
        await producer.send_and_wait(
            topics + ORDER_EVENTS.name, encode(event), key=str(uid).encode()
        )

        async def delivered() -> object | None:
            return feed.latest(uid)

        update = await eventually(delivered, "the event through the feed")
        assert update.uid == uid  # type: ignore[attr-defined]
        assert feed.reader.up
    finally:
        await producer.stop()
        await feed.stop()
