"""The card monitor on a real broker: windows against a brute-force recount, restarts,
out-of-order and redelivered events; limits, holidays by rule and expiry through the pool.

Windows: approved deposits are published straight to ``order-events`` (as the order agent
would), shuffled, with event times spread over the last three days (so some hours have left
their 48 h retention), some published twice. Whatever the agent publishes on
``card-turnover``, folded to the newest version per window, must equal
:func:`domain.turnover.brute_force` over the distinct events -- before and after the agent
is replaced by a new instance that restores its table from the changelog.
"""

# The fixtures imported from test_agents are pytest fixtures: tests name them as parameters.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import faust
import pytest
from aiokafka import AIOKafkaConsumer

from domain.orders import DeclineReason, OrderStatus
from domain.turnover import HOUR_MS, Movement, Retention, WindowKind, brute_force, window_bounds_ms
from schemas import cards as wc
from schemas import orders as w
from schemas import turnover as wt
from schemas.registry import decode, encode
from schemas.topics import CARD_ALERTS, CARD_TURNOVER, ORDER_COMMANDS, ORDER_EVENTS
from stream_agents.settings import AgentSettings
from stream_agents.wire import epoch_ms_now, from_epoch_ms
from tests.integration.test_agents import (  # noqa: F401 - fixtures
    DEADLINE_S,
    Pipeline,
    agents,
    approved_deposit,
    card,
    configure,
    drop_test_topics,
    open_and_wait,
    open_order,
    pipeline,
    running,
    settings,
)

pytestmark = pytest.mark.integration

TZ = "Europe/Moscow"
CARDS = ("card-a", "card-b")


class Watcher:
    """Reads ``card-turnover``, ``card-alerts`` and ``order-commands`` (for the pauses) from
    the beginning."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        self.seen: list[tuple[str, Any]] = []

    async def start(self) -> None:
        await self.consumer.start()
        wanted = {self.prefix + t.name for t in (CARD_TURNOVER, CARD_ALERTS, ORDER_COMMANDS)}
        deadline = time.monotonic() + DEADLINE_S
        while not wanted <= await self.consumer.topics():
            assert time.monotonic() < deadline, "the topics never appeared"
            await asyncio.sleep(0.1)
        self.consumer.subscribe(sorted(wanted))

    async def poll(self) -> None:
        for records in (await self.consumer.getmany(timeout_ms=200)).values():
            for record in records:
                self.seen.append((record.topic.removeprefix(self.prefix), decode(record.value)[1]))

    def windows(self) -> dict[tuple[str, str, int], tuple[int, int]]:
        newest: dict[tuple[str, str, int], wt.TurnoverUpdated] = {}
        for _, msg in self.seen:
            if isinstance(msg, wt.TurnoverUpdated):
                key = (msg.card_id, msg.window_kind.value, msg.window_start_ms)
                if key not in newest or newest[key].version < msg.version:
                    newest[key] = msg
        return {key: (m.in_minor, m.in_count) for key, m in newest.items()}

    def of(self, kind: type[Any]) -> list[Any]:
        return [msg for _, msg in self.seen if isinstance(msg, kind)]

    async def until(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            await self.poll()


@pytest.fixture
async def watcher(pipeline: Pipeline, kafka_bootstrap: str) -> AsyncIterator[Watcher]:
    watch = Watcher(kafka_bootstrap, pipeline.prefix)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.consumer.stop()


def expected(movements: list[Movement], now_ms: int) -> dict[tuple[str, str, int], tuple[int, int]]:
    """Brute force per card and window kind, for the windows still kept at ``now_ms``."""
    tz, retention, totals = ZoneInfo(TZ), Retention(), {}
    for card_id in CARDS:
        mine = [m for m in movements if m.card_id == card_id]
        for kind in WindowKind:
            for start, total in brute_force(mine, kind, tz).items():
                if retention.kept(kind, window_bounds_ms(kind, start, tz)[1], now_ms):
                    totals[(card_id, kind.value, start)] = total
    return totals


def approval(movement: Movement) -> bytes:
    snapshot = w.OrderSnapshot(
        uid=uuid.UUID(movement.uid),
        version=5,
        partner_id="acme",
        partner_order_id=f"inv-{movement.uid[:8]}",
        direction=w.Direction.DEPOSIT,
        status=OrderStatus.APPROVED,
        amount_minor=movement.amount_minor,
        fee_minor=0,
        currency="RUB",
        ttl_s=900,
        created_at_ms=movement.at_ms - 60_000,
        expires_at_ms=movement.at_ms + 840_000,
        updated_at_ms=movement.at_ms,
        card_id=movement.card_id,
        card_masked="220220******1234",
    )
    return encode(w.OrderApproved(order=snapshot), occurred_at=from_epoch_ms(movement.at_ms))


async def test_windows_match_a_brute_force_recount_across_a_restart(
    settings: AgentSettings,
    pipeline: Pipeline,
    watcher: Watcher,
) -> None:
    settings = settings.model_copy(update={"card_time_zone": TZ})
    rnd = random.Random(20261128)
    now = epoch_ms_now()
    movements = [
        Movement(
            uid=str(uuid.UUID(int=rnd.getrandbits(128))),
            card_id=rnd.choice(CARDS),
            amount_minor=rnd.randint(100, 500_000),
            currency="RUB",
            at_ms=now - rnd.randint(0, 72 * HOUR_MS),  # some hours beyond their 48 h
        )
        for _ in range(40)
    ]
    raws = {m.uid: approval(m) for m in movements}
    first, second = movements[:24], movements[24:]

    async def publish(batch: list[Movement]) -> None:
        for m in batch:
            await pipeline.publish_raw(ORDER_EVENTS.name, m.uid, raws[m.uid])

    async with running(settings):
        # Out of order (they are random in time) and half of them delivered twice.
        await publish(first + first[::2])
        await watcher.until(
            lambda: watcher.windows() == expected(first, epoch_ms_now()), "the first windows"
        )

    async with running(settings) as app:  # a new instance: the table comes from the changelog
        await publish(first[1::3] + second + second[::3])  # redeliveries across the restart
        await watcher.until(
            lambda: watcher.windows() == expected(movements, epoch_ms_now()), "all windows"
        )
        await asyncio.sleep(1.0)  # nothing more may arrive: no redelivery counted twice
        await watcher.poll()
        assert watcher.windows() == expected(movements, epoch_ms_now())
        table: Any = app.tables["turnover"]
        for card_id in CARDS:
            buckets = {(b[0], b[1]): (b[3], b[4]) for b in table[card_id]["buckets"]}
            mine = {(k, s): v for (c, k, s), v in expected(movements, now).items() if c == card_id}
            assert buckets == mine


async def test_a_card_at_its_daily_limit_is_not_handed_out_and_goes_on_holiday(
    pipeline: Pipeline,
    agents: faust.App,
    watcher: Watcher,
) -> None:
    await configure(pipeline, agents, card("pool-1", daily_count_limit=2, monthly_count_limit=10))
    await approved_deposit(pipeline, 100_000)
    await approved_deposit(pipeline, 110_000)
    declined = await open_and_wait(pipeline, open_order(amount_minor=120_000))
    assert declined.decline_reason is DeclineReason.NO_REQUISITE

    def holiday_alerts() -> list[wt.CardAlerted]:
        return [a for a in watcher.of(wt.CardAlerted) if a.kind is wt.AlertKind.HOLIDAY_STARTED]

    await watcher.until(lambda: holiday_alerts() and watcher.of(wc.PauseCard), "the holiday")
    [alert] = holiday_alerts()
    assert alert.holiday_reason is wt.HolidayReason.DAILY_LIMIT_REACHED
    assert alert.holiday_until_ms is not None
    assert alert.holiday_until_ms - alert.at_ms == 12 * HOUR_MS  # the default rule
    shares = {
        (a.metric, a.threshold_pct)
        for a in watcher.of(wt.CardAlerted)
        if a.kind is wt.AlertKind.LIMIT_SHARE
    }
    assert shares == {(wt.LimitMetric.DAILY_COUNT, 80), (wt.LimitMetric.DAILY_COUNT, 100)}


@pytest.fixture
def streak_settings(settings: AgentSettings) -> AgentSettings:
    return settings.model_copy(
        update={"holiday_after_orders": 2, "holiday_after_orders_h": 4 / 3600}  # 4 s
    )


async def test_a_streak_holiday_stops_the_card_and_it_comes_back_by_itself(
    streak_settings: AgentSettings,
    pipeline: Pipeline,
    watcher: Watcher,
) -> None:
    async with running(streak_settings) as app:
        await configure(pipeline, app, card("pool-1"))
        await approved_deposit(pipeline, 100_000)
        await approved_deposit(pipeline, 110_000)
        await watcher.until(lambda: watcher.of(wc.PauseCard), "the pause")
        [pause] = watcher.of(wc.PauseCard)
        assert pause.reason == "order_streak"
        if epoch_ms_now() < pause.until_ms - 500:
            on_holiday = await open_and_wait(pipeline, open_order(amount_minor=120_000))
            assert on_holiday.decline_reason is DeclineReason.NO_REQUISITE
        await asyncio.sleep(max(0.0, (pause.until_ms - epoch_ms_now()) / 1000) + 0.2)
        back = await open_and_wait(pipeline, open_order(amount_minor=130_000))
        assert (back.status, back.card_id) == (OrderStatus.NEW, "card-1")


async def test_an_expired_card_is_never_handed_out(
    pipeline: Pipeline,
    agents: faust.App,
) -> None:
    yesterday = date.today() - timedelta(days=2)
    await configure(pipeline, agents, card("pool-1", expires_on=yesterday))
    for amount in (100_000, 200_000):
        declined = await open_and_wait(pipeline, open_order(amount_minor=amount))
        assert declined.decline_reason is DeclineReason.NO_REQUISITE
