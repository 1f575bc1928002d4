"""The stream agents on a real broker: the order pipeline hop by hop, duplicates and restarts.

Each test runs the agents' app in-process with its own app id and topic prefix (both start
with ``unique_name``, so the topics are deleted afterwards), drives it by producing commands
with aiokafka the way the API and the config publisher do, and reads what the agents publish.
Waits poll with deadlines; nothing sleeps blindly.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import Consumer as FaustKafkaConsumer

from domain.cards import CardStatus
from domain.orders import DeclineReason, Direction, OrderStatus
from schemas import cards as wc
from schemas import ledger as wl
from schemas import orders as w
from schemas.desks import pool_desk
from schemas.envelope import Envelope, Message
from schemas.registry import decode, encode
from schemas.topics import (
    CONFIG_CARDS,
    LEDGER_EVENTS,
    ORDER_COMMANDS,
    ORDER_EVENTS,
)
from stream_agents.app import create_app, prepare
from stream_agents.settings import AgentSettings
from stream_agents.table_keys import DESK_TABLE, order_key

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
PARTNER = "acme"
CARD_PAN = "220220******1234"
PAYER_PAN = "411111******1111"
WATCHED = (ORDER_EVENTS, LEDGER_EVENTS)


class Pipeline:
    """Publishes commands and collects everything the agents publish, decoded."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        self.seen: list[tuple[str, Envelope, Message, bytes]] = []
        #: The desk of each order opened here: later commands go to it, as the API sends them.
        self.desks: dict[uuid.UUID, str] = {}

    async def start(self) -> None:
        """Subscribe once the broker's metadata lists the new topics (no error storm)."""
        await self.producer.start()
        await self.consumer.start()
        watched = {self.prefix + spec.name for spec in WATCHED}
        deadline = time.monotonic() + DEADLINE_S
        while not watched <= await self.consumer.topics():
            assert time.monotonic() < deadline, "the test topics never appeared"
            await asyncio.sleep(0.1)
        self.consumer.subscribe(sorted(watched))

    async def publish(
        self,
        topic: str,
        message: Message,
        *,
        occurred_at: datetime | None = None,
    ) -> tuple[uuid.UUID, bytes]:
        raw = encode(message, occurred_at=occurred_at)
        await self.publish_raw(topic, message.message_key(), raw)
        return decode(raw)[0].message_id, raw

    async def publish_raw(self, topic: str, key: str, raw: bytes) -> None:
        await self.producer.send_and_wait(self.prefix + topic, raw, key=key.encode())

    async def command(self, message: Message, **kwargs: Any) -> uuid.UUID:
        """Publish an order command to its order's desk (an opening names it)."""
        if isinstance(message, w.OpenOrder) and message.desk is not None:
            self.desks[message.uid] = message.desk
        desk = self.desks.get(getattr(message, "uid", None))  # type: ignore[arg-type]
        if getattr(message, "desk", "") is None and desk is not None:
            message = message.model_copy(update={"desk": desk})
        return (await self.publish(ORDER_COMMANDS.name, message, **kwargs))[0]

    def found(self, topic: str, kind: type[Message], pred: Callable[[Any], bool]) -> list[Any]:
        return [
            (env, msg)
            for name, env, msg, _ in self.seen
            if name == topic and isinstance(msg, kind) and pred(msg)
        ]

    async def wait(
        self,
        topic: str,
        kind: type[Message],
        pred: Callable[[Any], bool] = lambda _: True,
        count: int = 1,
        what: str = "",
    ) -> list[Any]:
        """The messages of ``kind`` on ``topic`` matching ``pred``, once ``count`` arrived."""
        deadline = time.monotonic() + DEADLINE_S
        while len(hits := self.found(topic, kind, pred)) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what or kind.TYPE} on {topic}")
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    env, msg = decode(record.value)
                    topic_name = record.topic.removeprefix(self.prefix)
                    self.seen.append((topic_name, env, msg, record.value))
        return [msg for _, msg in hits]

    async def settle(self, seconds: float = 1.5) -> None:
        """Collect for a while: used only to show that something does *not* happen."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for records in (await self.consumer.getmany(timeout_ms=100)).values():
                for record in records:
                    env, msg = decode(record.value)
                    self.seen.append(
                        (record.topic.removeprefix(self.prefix), env, msg, record.value)
                    )


@pytest.fixture
def settings(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        app_id=unique_name,
        topic_prefix=f"{unique_name}.",
        expiry_interval_s=0.2,
        datadir=tmp_path,
        web_enabled=False,
        metadata_max_age_ms=1000,
    )


@pytest.fixture(autouse=True)
async def drop_test_topics(kafka_bootstrap: str, unique_name: str) -> AsyncIterator[None]:
    yield
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        leftovers = [t for t in await admin.list_topics() if t.startswith(unique_name)]
        if leftovers:
            await admin.delete_topics(leftovers)
    finally:
        await admin.close()


@asynccontextmanager
async def running(settings: AgentSettings) -> AsyncIterator[faust.App]:
    app = create_app(settings)
    await asyncio.wait_for(app.start(), DEADLINE_S)
    try:
        yield app
    finally:
        await asyncio.wait_for(app.stop(), DEADLINE_S)


@pytest.fixture
async def pipeline(settings: AgentSettings, kafka_bootstrap: str) -> AsyncIterator[Pipeline]:
    await prepare(settings)
    line = Pipeline(kafka_bootstrap, settings.topic_prefix)
    await line.start()
    try:
        yield line
    finally:
        await line.consumer.stop()
        await line.producer.stop()


@pytest.fixture
async def agents(settings: AgentSettings, pipeline: Pipeline) -> AsyncIterator[faust.App]:
    async with running(settings) as app:
        yield app


def card(pool_id: str, card_id: str = "card-1", **overrides: Any) -> wc.CardConfigured:
    fields: dict[str, Any] = {
        "card_id": card_id,
        "pool_id": pool_id,
        "pan_masked": CARD_PAN,
        "currency": "RUB",
        "status": CardStatus.ACTIVE,
        "expires_on": date(2099, 12, 31),
        "daily_limit_minor": 10**9,
        "monthly_limit_minor": 10**10,
        "daily_count_limit": 100,
        "monthly_count_limit": 1000,
        "min_order_minor": 100,
        "max_order_minor": 10**8,
        "version": 1,
    }
    return wc.CardConfigured(**(fields | overrides))


def open_order(
    direction: Direction = Direction.DEPOSIT,
    amount_minor: int = 150_000,
    pool_id: str | None = "pool-1",
    **overrides: Any,
) -> w.OpenOrder:
    fields: dict[str, Any] = {
        "uid": uuid.uuid4(),
        "partner_id": PARTNER,
        "partner_order_id": f"inv-{uuid.uuid4().hex[:8]}",
        "direction": direction,
        "amount_minor": amount_minor,
        "currency": "RUB",
        "ttl_s": 900,
        "fee_bp": 200,
        "pool_id": pool_id,
        "desk": pool_desk("pool-1"),  # the partner's desk, for deposits and withdrawals
    }
    return w.OpenOrder(**(fields | overrides))


async def configure(line: Pipeline, app: faust.App, *cards: wc.CardConfigured) -> None:
    """Publish card configurations and wait until the pool agent knows them."""
    for config in cards:
        await line.publish(CONFIG_CARDS.name, config)
    table: Any = app.tables["cards"]
    deadline = time.monotonic() + DEADLINE_S
    while not all(c.card_id in table for c in cards):
        assert time.monotonic() < deadline, "card configuration never reached the pool agent"
        await asyncio.sleep(0.05)


def of_order(uid: uuid.UUID, pred: Callable[[w.OrderSnapshot], bool]) -> Callable[[Any], bool]:
    """Events of order ``uid`` whose snapshot matches ``pred``."""

    def matches(message: Any) -> bool:
        snap = getattr(message, "order", None)
        return isinstance(snap, w.OrderSnapshot) and snap.uid == uid and pred(snap)

    return matches


async def open_and_wait(line: Pipeline, order: w.OpenOrder, **kwargs: Any) -> w.OrderSnapshot:
    """Open ``order`` and return it as the next event past ``pending`` shows it (as the API
    learns it, ADR 0003); a repeated open waits for the event it re-publishes."""
    settled = of_order(order.uid, lambda snap: snap.status is not OrderStatus.PENDING)
    before = len(line.found(ORDER_EVENTS.name, Message, settled))
    await line.command(order, **kwargs)
    hits = await line.wait(ORDER_EVENTS.name, Message, settled, count=before + 1)
    snap = hits[-1].order
    assert isinstance(snap, w.OrderSnapshot)
    return snap


def decide(uid: uuid.UUID, verdict: w.Verdict, operator: str = "op-1") -> w.DecideOrder:
    return w.DecideOrder(uid=uid, verdict=verdict, operator=operator, decision_id=uuid.uuid4())


async def approved_deposit(line: Pipeline, amount_minor: int) -> wl.LedgerPosted:
    """Run a deposit to approval; returns its ledger posting (the partner's credit)."""
    order = open_order(amount_minor=amount_minor)
    assert (await open_and_wait(line, order)).status is OrderStatus.NEW
    await line.command(w.ConfirmPayment(uid=order.uid))
    await line.wait(ORDER_EVENTS.name, w.PaymentConfirmed, lambda m: m.order.uid == order.uid)
    await line.command(decide(order.uid, w.Verdict.APPROVE))
    [posted] = await line.wait(LEDGER_EVENTS.name, wl.LedgerPosted, lambda m: m.uid == order.uid)
    assert isinstance(posted, wl.LedgerPosted)
    return posted


def backdated(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def events_of(line: Pipeline, uid: uuid.UUID, kind: type[Message]) -> list[tuple[Envelope, bytes]]:
    return [
        (env, raw)
        for name, env, msg, raw in line.seen
        if name == ORDER_EVENTS.name and isinstance(msg, kind) and uid_of(msg) == uid
    ]


def uid_of(message: Message) -> uuid.UUID | None:
    """The order a published message is about."""
    order = getattr(message, "order", None)
    if isinstance(order, w.OrderSnapshot):
        return order.uid
    uid = getattr(message, "uid", None)
    return uid if isinstance(uid, uuid.UUID) else None


def about(uid: uuid.UUID) -> Callable[[Any], bool]:
    """A predicate: the order event or decision is about order ``uid``."""
    return lambda message: uid_of(message) == uid


# --- tests -----------------------------------------------------------------------------------


async def test_deposit_is_assigned_a_card_confirmed_and_credited(
    pipeline: Pipeline, agents: faust.App
) -> None:
    await configure(pipeline, agents, card("pool-1"))
    order = open_order(amount_minor=150_000, callback_url="https://partner.example/cb")

    opened = await open_and_wait(pipeline, order)
    assert opened.status is OrderStatus.NEW
    assert (opened.card_id, opened.card_masked) == ("card-1", CARD_PAN)
    [announced] = await pipeline.wait(
        ORDER_EVENTS.name, w.OrderCreated, lambda m: m.order.uid == order.uid
    )
    assert (announced.order.desk, announced.callback_url) == ("pool:pool-1", order.callback_url)
    assert events_of(pipeline, order.uid, w.OrderOpened) == []  # pending is not news (ADR 0005)

    await pipeline.command(w.ConfirmPayment(uid=order.uid, payer_card_ciphertext="sealed"))
    [confirmed] = await pipeline.wait(
        ORDER_EVENTS.name, w.PaymentConfirmed, lambda m: m.order.uid == order.uid
    )
    assert confirmed.order.status is OrderStatus.PROCESSING
    assert confirmed.payer_card_ciphertext == "sealed"

    await pipeline.command(decide(order.uid, w.Verdict.APPROVE, "olga"))
    [approved] = await pipeline.wait(
        ORDER_EVENTS.name, w.OrderApproved, lambda m: m.order.uid == order.uid
    )
    assert (approved.order.status, approved.order.decided_by) == (OrderStatus.APPROVED, "olga")
    [posted] = await pipeline.wait(
        LEDGER_EVENTS.name, wl.LedgerPosted, lambda m: m.uid == order.uid
    )
    fee = 3_000  # 2 % of 1 500.00
    assert posted.kind == "deposit_credit"
    assert (posted.available_minor, posted.held_minor) == (150_000 - fee, 0)
    assert {(leg.account, leg.amount_minor) for leg in posted.legs} == {
        ("external:settlement", -150_000),
        (f"partner:{PARTNER}:available", 150_000 - fee),
        ("system:fees", fee),
    }


async def test_withdrawal_holds_then_releases_and_too_large_one_is_declined(
    pipeline: Pipeline, agents: faust.App
) -> None:
    await configure(pipeline, agents, card("pool-1"))
    credited = (await approved_deposit(pipeline, 100_000)).available_minor  # 98 000

    withdrawal = open_order(Direction.WITHDRAWAL, amount_minor=50_000, fee_bp=100)
    opened = await open_and_wait(pipeline, withdrawal)
    assert opened.status is OrderStatus.NEW
    [held] = await pipeline.wait(
        LEDGER_EVENTS.name, wl.LedgerPosted, lambda m: m.uid == withdrawal.uid
    )
    assert held.kind == "hold"
    assert (held.available_minor, held.held_minor) == (credited - 50_500, 50_500)

    await pipeline.command(w.ConfirmPayment(uid=withdrawal.uid, payer_card_masked=PAYER_PAN))
    await pipeline.wait(
        ORDER_EVENTS.name, w.PaymentConfirmed, lambda m: m.order.uid == withdrawal.uid
    )
    await pipeline.command(decide(withdrawal.uid, w.Verdict.REJECT))
    released = await pipeline.wait(
        LEDGER_EVENTS.name, wl.LedgerPosted, lambda m: m.uid == withdrawal.uid, count=2
    )
    assert released[1].kind == "release"
    assert (released[1].available_minor, released[1].held_minor) == (credited, 0)

    too_much = open_order(Direction.WITHDRAWAL, amount_minor=credited)  # + fee > available
    declined = await open_and_wait(pipeline, too_much)
    assert declined.status is OrderStatus.DECLINED
    assert declined.decline_reason is DeclineReason.INSUFFICIENT_FUNDS


async def test_deposit_without_an_eligible_card_or_pool_is_declined(
    pipeline: Pipeline, agents: faust.App
) -> None:
    await configure(pipeline, agents, card("pool-1", max_order_minor=10_000))
    for order in (open_order(amount_minor=20_000), open_order(pool_id=None)):
        declined = await open_and_wait(pipeline, order)
        assert declined.status is OrderStatus.DECLINED
        assert declined.decline_reason is DeclineReason.NO_REQUISITE


async def test_same_amount_twice_needs_a_second_card(pipeline: Pipeline, agents: faust.App) -> None:
    await configure(pipeline, agents, card("pool-1"), card("pool-2", "card-2a"))
    first = await open_and_wait(pipeline, open_order(pool_id="pool-1"))
    second = await open_and_wait(pipeline, open_order(pool_id="pool-1"))
    assert (first.status, second.status) == (OrderStatus.NEW, OrderStatus.DECLINED)

    await configure(pipeline, agents, card("pool-2", "card-2b", pan_masked="220220******5678"))
    third = await open_and_wait(pipeline, open_order(pool_id="pool-2"))
    fourth = await open_and_wait(pipeline, open_order(pool_id="pool-2"))
    assert {third.card_id, fourth.card_id} == {"card-2a", "card-2b"}


async def test_expiry_frees_the_card_and_the_hold(pipeline: Pipeline, agents: faust.App) -> None:
    await configure(pipeline, agents, card("pool-1"))
    await approved_deposit(pipeline, 200_000)
    # Opened 58.5 s ago with the shortest TTL (60 s): both expire 1.5 s from now.
    deposit = open_order(amount_minor=50_000, ttl_s=60)
    withdrawal = open_order(Direction.WITHDRAWAL, amount_minor=10_000, ttl_s=60)
    for order in (deposit, withdrawal):
        opened = await open_and_wait(pipeline, order, occurred_at=backdated(58.5))
        assert opened.status is OrderStatus.NEW

    for uid in (deposit.uid, withdrawal.uid):
        [expired] = await pipeline.wait(ORDER_EVENTS.name, w.OrderExpired, about(uid))
        assert expired.order.status is OrderStatus.EXPIRED
    released = await pipeline.wait(
        LEDGER_EVENTS.name, wl.LedgerPosted, lambda m: m.uid == withdrawal.uid, count=2
    )
    assert [p.kind for p in released] == ["hold", "release"]
    # The card is free again: an order of the very same amount gets it.
    again = await open_and_wait(pipeline, open_order(amount_minor=50_000))
    assert again.card_id == "card-1"


async def test_repeated_open_is_the_same_order_and_a_conflicting_one_is_refused(
    pipeline: Pipeline, agents: faust.App
) -> None:
    await configure(pipeline, agents, card("pool-1"))
    order = open_order()
    await pipeline.command(order)
    await pipeline.command(order)  # a retry: the agent re-publishes the current event
    is_new = of_order(order.uid, lambda snap: snap.status is OrderStatus.NEW)
    created = await pipeline.wait(ORDER_EVENTS.name, w.OrderCreated, is_new, count=2)
    assert {c.order.version for c in created} == {2}
    assert len({env.message_id for env, _ in events_of(pipeline, order.uid, w.OrderCreated)}) == 1

    conflicting = order.model_copy(update={"amount_minor": order.amount_minor + 1})
    await pipeline.command(conflicting)  # refused: nothing published (the API refuses it, 409)
    await pipeline.settle()
    snaps = [
        m.order for _, m in pipeline.found(ORDER_EVENTS.name, Message, of_order(order.uid, bool))
    ]
    assert {snap.amount_minor for snap in snaps} == {order.amount_minor}
    assert max(snap.version for snap in snaps) == 2
    assert events_of(pipeline, order.uid, w.OrderOpened) == []


async def test_two_concurrent_decisions_one_wins(pipeline: Pipeline, agents: faust.App) -> None:
    await configure(pipeline, agents, card("pool-1"))
    order = open_order()
    await open_and_wait(pipeline, order)
    await pipeline.command(w.ConfirmPayment(uid=order.uid))
    await pipeline.wait(ORDER_EVENTS.name, w.PaymentConfirmed, lambda m: m.order.uid == order.uid)

    await asyncio.gather(
        pipeline.command(decide(order.uid, w.Verdict.APPROVE, "alice")),
        pipeline.command(decide(order.uid, w.Verdict.REJECT, "bob")),
    )
    decided = of_order(order.uid, lambda snap: snap.decided_by is not None)
    [won] = await pipeline.wait(ORDER_EVENTS.name, Message, decided)
    assert won.order.decided_by in {"alice", "bob"}
    await pipeline.settle()
    verdicts = events_of(pipeline, order.uid, w.OrderApproved) + events_of(
        pipeline, order.uid, w.OrderRejected
    )
    assert len({env.message_id for env, _ in verdicts}) == 1


async def test_redelivered_commands_change_nothing_and_repeat_identical_messages(
    pipeline: Pipeline, agents: faust.App
) -> None:
    await configure(pipeline, agents, card("pool-1"))
    order = open_order()
    _, open_raw = await pipeline.publish(ORDER_COMMANDS.name, order)
    await pipeline.publish_raw(ORDER_COMMANDS.name, "pool:pool-1", open_raw)
    await pipeline.wait(ORDER_EVENTS.name, w.OrderCreated, lambda m: m.order.uid == order.uid)
    confirm = w.ConfirmPayment(uid=order.uid, desk="pool:pool-1")
    _, confirm_raw = await pipeline.publish(ORDER_COMMANDS.name, confirm)
    await pipeline.wait(ORDER_EVENTS.name, w.PaymentConfirmed, lambda m: m.order.uid == order.uid)
    await pipeline.publish_raw(ORDER_COMMANDS.name, "pool:pool-1", confirm_raw)
    await pipeline.wait(
        ORDER_EVENTS.name, w.PaymentConfirmed, lambda m: m.order.uid == order.uid, count=2
    )
    await pipeline.settle()

    by_id: dict[uuid.UUID, set[bytes]] = {}
    for _, env, msg, raw in pipeline.seen:
        if uid_of(msg) == order.uid:
            by_id.setdefault(env.message_id, set()).add(raw)
    assert all(len(raws) == 1 for raws in by_id.values()), "a repeat differs from the original"
    versions = {
        snap.version
        for name, _, msg, _ in pipeline.seen
        if name == ORDER_EVENTS.name
        and isinstance(snap := getattr(msg, "order", None), w.OrderSnapshot)
        and snap.uid == order.uid
    }
    assert versions == {2, 3}  # created (opened within the step), confirmed: nothing more
    for kind in (w.OrderCreated, w.PaymentConfirmed):
        assert len({env.message_id for env, _ in events_of(pipeline, order.uid, kind)}) == 1


async def test_a_new_instance_restores_the_tables_and_carries_on(
    settings: AgentSettings, pipeline: Pipeline
) -> None:
    order = open_order(amount_minor=70_000)
    async with running(settings) as first:
        await configure(pipeline, first, card("pool-1"))
        credited = (await approved_deposit(pipeline, 100_000)).available_minor
        assert (await open_and_wait(pipeline, order)).status is OrderStatus.NEW

    async with running(settings) as second:
        cards: Any = second.tables["cards"]
        assert "card-1" in cards
        again = await open_and_wait(pipeline, order)  # the orders table remembers it
        assert (again.uid, again.version, again.card_id) == (order.uid, 2, "card-1")
        same_amount = await open_and_wait(pipeline, open_order(amount_minor=70_000))
        assert same_amount.decline_reason is DeclineReason.NO_REQUISITE  # the pool remembers

        await pipeline.command(w.ConfirmPayment(uid=order.uid))
        await pipeline.wait(
            ORDER_EVENTS.name, w.PaymentConfirmed, lambda m: m.order.uid == order.uid
        )
        await pipeline.command(decide(order.uid, w.Verdict.APPROVE))
        [posted] = await pipeline.wait(
            LEDGER_EVENTS.name, wl.LedgerPosted, lambda m: m.uid == order.uid
        )
        assert posted.available_minor == credited + 70_000 - 1_400  # the balance was restored
        assert posted.balance_version == 2


#: Faust commits every 2.8 s: the held writes of one step must take longer than that.
HOLD_S = 1.5


def hold_changelogs(
    monkeypatch: pytest.MonkeyPatch, *changelogs: str, hold_s: float = HOLD_S
) -> None:
    """Each write to ``changelogs`` waits ``hold_s`` on its way from Faust's producer buffer
    to the Kafka client, as under a loaded machine or a slow broker."""
    publish = faust.topics.Topic.publish_message

    async def held(self: faust.topics.Topic, fut: Any, wait: bool = False) -> Any:
        if self.get_topic_name() in changelogs:
            await asyncio.sleep(hold_s)
        return await publish(self, fut, wait=wait)

    monkeypatch.setattr(faust.topics.Topic, "publish_message", held)


async def commits_before_write(
    bootstrap: str, group: str, sent: Any, changelog: str, key: str, partitions: int
) -> list[int]:
    """Follow ``group``'s committed offset of the record ``sent`` and ``changelog`` until the
    record is committed and ``key`` written; the offsets committed while ``key`` was not
    yet in the changelog (a SIGKILL then would lose the write for good)."""
    source = TopicPartition(sent.topic, sent.partition)
    wanted = json.dumps(key).encode()  # Faust's JSON keys
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    tail = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await tail.start()
    try:
        parts = [TopicPartition(changelog, p) for p in range(partitions)]
        tail.assign(parts)
        await tail.seek_to_beginning(*parts)
        written: set[bytes] = set()
        early = []
        deadline = time.monotonic() + 30  # a few held writes, then a commit
        while True:
            done = (await admin.list_consumer_group_offsets(group)).get(source)
            committed = done is not None and done.offset > sent.offset
            for records in (await tail.getmany(timeout_ms=100)).values():
                written |= {record.key for record in records if record.key is not None}
            if committed and wanted not in written:
                early.append(done.offset)
            if committed and wanted in written:
                return early
            assert time.monotonic() < deadline, "the record was never committed"
    finally:
        await tail.stop()
        await admin.close()


async def test_a_command_is_committed_only_after_the_changelog_has_its_writes(
    settings: AgentSettings,
    pipeline: Pipeline,
    agents: faust.App,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's commit does not wait for table writes still on their way out of its producer
    buffer (ADR 0005, addendum): here each write to the desk's changelog is held for a while
    on its way to the broker, and the command's offset must not be committed meanwhile, or a
    SIGKILL would lose the writes and never deliver the command again."""
    await configure(pipeline, agents, card("pool-1"))
    changelog = f"{settings.app_id}-{DESK_TABLE}-changelog"
    hold_changelogs(monkeypatch, changelog)
    order = open_order()
    sent = await pipeline.producer.send_and_wait(
        pipeline.prefix + ORDER_COMMANDS.name, encode(order), key=order.message_key().encode()
    )
    key = order_key(str(order.uid))
    early = await commits_before_write(
        kafka_bootstrap, settings.app_id, sent, changelog, key, ORDER_COMMANDS.partitions
    )
    assert early == []


async def test_a_card_configuration_is_committed_only_after_the_cards_table_has_it(
    settings: AgentSettings,
    pipeline: Pipeline,
    agents: faust.App,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same for the cards' global table: a card blocked by its configuration must stay
    blocked after a crash (invariant 5), so ``config-cards`` is committed only after the
    table's changelog has the card."""
    changelog = f"{settings.app_id}-cards-changelog"
    hold_changelogs(monkeypatch, changelog, hold_s=4.0)  # one write
    blocked = card("pool-1", status=CardStatus.BLOCKED)
    sent = await pipeline.producer.send_and_wait(
        pipeline.prefix + CONFIG_CARDS.name, encode(blocked), key=blocked.message_key().encode()
    )
    early = await commits_before_write(
        kafka_bootstrap, settings.app_id, sent, changelog, blocked.card_id, 1
    )
    assert early == []


async def drop_next_command(monkeypatch: pytest.MonkeyPatch, topic: str) -> list[int]:
    """The next record of ``topic`` that a fetch returns is dropped on its way to the
    streams, the consumer's position already past it: what Faust's fetch loop does to a
    batch around a rebalance (``stream_agents.rewind``). Returns once the fetches in flight
    are over; the list of offsets dropped fills later."""
    fetch = FaustKafkaConsumer._getmany
    dropped: list[int] = []
    armed = asyncio.Event()

    async def dropping(self: FaustKafkaConsumer, **kwargs: Any) -> Any:
        armed.set()
        records = await fetch(self, **kwargs)
        for tp, batch in records.items():
            if tp.topic == topic and batch and not dropped:
                dropped.append(batch[0].offset)
                records[tp] = batch[1:]
        return records

    monkeypatch.setattr(FaustKafkaConsumer, "_getmany", dropping)
    await asyncio.wait_for(armed.wait(), DEADLINE_S)  # a fetch started before would not drop
    return dropped


async def test_a_command_the_fetch_dropped_is_read_again_not_committed_past(
    settings: AgentSettings,
    pipeline: Pipeline,
    agents: faust.App,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record fetched and then dropped before the desk saw it leaves a hole in the offsets
    the desk reads. Faust takes a hole for offsets that do not exist, and commits past it
    with the next record; on ``order-commands`` it can only be a drop, so the partition is
    read again from the hole (ADR 0005, addendum): both orders are served."""
    await configure(pipeline, agents, card("pool-1"))
    assert (await open_and_wait(pipeline, open_order(amount_minor=100_000))).status is (
        OrderStatus.NEW
    )
    dropped = await drop_next_command(monkeypatch, pipeline.prefix + ORDER_COMMANDS.name)
    lost, after = open_order(amount_minor=120_000), open_order(amount_minor=130_000)
    await pipeline.command(lost)
    await pipeline.command(after)

    def settled(snap: w.OrderSnapshot) -> bool:
        return snap.status is not OrderStatus.PENDING

    [served] = await pipeline.wait(
        ORDER_EVENTS.name, Message, of_order(lost.uid, settled), what="the dropped order"
    )
    await pipeline.wait(ORDER_EVENTS.name, Message, of_order(after.uid, settled), what="the next")
    assert len(dropped) == 1  # the fetch did drop a command
    assert served.order.status is OrderStatus.NEW
