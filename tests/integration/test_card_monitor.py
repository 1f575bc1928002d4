"""The card monitor (the desk's turnover part) on a real broker: windows against a
brute-force recount, restarts, out-of-order and redelivered decisions; limits, holidays by rule
and expiry through the pool.

Windows: deposits go through the desk with their commands dated over the last three days (so
some hours have left their 48 h retention) and in shuffled order, some decisions delivered
twice. Whatever the desk publishes on ``card-turnover``, folded to the newest version per
window, must equal :func:`domain.turnover.brute_force` over the approvals -- before and after
the desk is replaced by a new instance that restores its table from the changelog.
"""

# The fixtures imported from test_agents are pytest fixtures: tests name them as parameters.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import faust
import pytest
from aiokafka import AIOKafkaConsumer

from domain.orders import DeclineReason, OrderStatus
from domain.turnover import HOUR_MS, Movement, Retention, WindowKind, brute_force, window_bounds_ms
from schemas import orders as w
from schemas import turnover as wt
from schemas.registry import decode
from schemas.topics import CARD_ALERTS, CARD_TURNOVER, ORDER_COMMANDS, ORDER_EVENTS
from schemas.translation import from_epoch_ms
from stream_agents.settings import AgentSettings
from stream_agents.wire import epoch_ms_now
from tests.integration.test_agents import (  # noqa: F401 - fixtures
    DEADLINE_S,
    Pipeline,
    agents,
    approved_deposit,
    card,
    configure,
    decide,
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
DESK = "pool:pool-1"


class Watcher:
    """Reads ``card-turnover`` and ``card-alerts`` from the beginning."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        self.seen: list[tuple[str, Any]] = []

    async def start(self) -> None:
        await self.consumer.start()
        wanted = {self.prefix + t.name for t in (CARD_TURNOVER, CARD_ALERTS)}
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
        for msg in self.of(wt.TurnoverWindows):
            for window in msg.windows:
                key = (window.card_id, window.window_kind.value, window.window_start_ms)
                if key not in newest or newest[key].version < window.version:
                    newest[key] = window
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


@dataclass(frozen=True, slots=True)
class Deposit:
    """One deposit to approve at ``at_ms`` (opened a minute before, confirmed half a minute
    before), and the card the desk gave it."""

    order: w.OpenOrder
    at_ms: int
    card_id: str = ""

    def movement(self) -> Movement:
        return Movement(
            uid=str(self.order.uid),
            card_id=self.card_id,
            amount_minor=self.order.amount_minor,
            currency="RUB",
            at_ms=self.at_ms,
        )


async def approve_all(
    pipeline: Pipeline, deposits: list[Deposit]
) -> tuple[list[Deposit], list[bytes]]:
    """Open, confirm and approve each deposit at its own (past) time; returns the deposits
    with their cards, and each approval as published, for redelivering it."""
    for d in deposits:
        await pipeline.command(d.order, occurred_at=from_epoch_ms(d.at_ms - 60_000))
    placed = []
    for d in deposits:
        [created] = await pipeline.wait(
            ORDER_EVENTS.name, w.OrderCreated, lambda m, u=d.order.uid: m.order.uid == u
        )
        assert created.order.card_id in CARDS, created.order
        placed.append(replace(d, card_id=created.order.card_id))
    for d in placed:
        confirm = w.ConfirmPayment(uid=d.order.uid)
        await pipeline.command(confirm, occurred_at=from_epoch_ms(d.at_ms - 30_000))
    approvals = []
    for d in placed:
        decision = decide(d.order.uid, w.Verdict.APPROVE).model_copy(update={"desk": DESK})
        at = from_epoch_ms(d.at_ms)
        approvals.append((await pipeline.publish(ORDER_COMMANDS.name, decision, occurred_at=at))[1])
    return placed, approvals


async def test_windows_match_a_brute_force_recount_across_a_restart(
    settings: AgentSettings,
    pipeline: Pipeline,
    watcher: Watcher,
) -> None:
    # The deposits are dated days back, so their deadlines have passed: no expiry timer here.
    settings = settings.model_copy(update={"card_time_zone": TZ, "expiry_interval_s": 3600})
    rnd = random.Random(20261128)
    now = epoch_ms_now()
    amounts = rnd.sample(range(100, 500_000), 40)  # distinct: no amount clash on a card
    deposits = [
        Deposit(open_order(amount_minor=amount), now - rnd.randint(60_000, 72 * HOUR_MS))
        for amount in amounts
    ]
    first, second = deposits[:24], deposits[24:]

    async def redeliver(approvals: list[bytes]) -> None:
        for raw in approvals:
            await pipeline.publish_raw(ORDER_COMMANDS.name, DESK, raw)

    async with running(settings) as app:
        await configure(pipeline, app, *(card("pool-1", card_id) for card_id in CARDS))
        placed, approvals = await approve_all(pipeline, first)
        await redeliver(approvals[::2])  # half of them delivered twice
        counted = [d.movement() for d in placed]
        await watcher.until(
            lambda: watcher.windows() == expected(counted, epoch_ms_now()), "the first windows"
        )

    async with running(settings) as app:  # a new instance: the table comes from the changelog
        await redeliver(approvals[1::3])  # redeliveries across the restart
        more, again = await approve_all(pipeline, second)
        await redeliver(again[::3])
        counted += [d.movement() for d in more]
        await watcher.until(
            lambda: watcher.windows() == expected(counted, epoch_ms_now()), "all windows"
        )
        await asyncio.sleep(1.0)  # nothing more may arrive: no redelivery counted twice
        await watcher.poll()
        assert watcher.windows() == expected(counted, epoch_ms_now())
        table: Any = app.tables["desk"]
        for card_id in CARDS:
            buckets = {(b[0], b[1]): (b[3], b[4]) for b in table[f"turnover/{card_id}"]["buckets"]}
            mine = {(k, s): v for (c, k, s), v in expected(counted, now).items() if c == card_id}
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

    await watcher.until(lambda: bool(holiday_alerts()), "the holiday")
    [alert] = holiday_alerts()
    desk: Any = agents.tables["desk"]
    slot = desk["card/pool-1/card-1"]
    assert slot["pause"][0] == alert.holiday_until_ms  # the pool part stops handing it out
    assert alert.holiday_reason is wt.HolidayReason.DAILY_LIMIT_REACHED
    assert alert.holiday_until_ms is not None
    assert alert.holiday_until_ms - alert.at_ms == 12 * HOUR_MS  # the default rule
    shares = {
        (a.metric, a.threshold_pct)
        for a in watcher.of(wt.CardAlerted)
        if a.kind is wt.AlertKind.LIMIT_SHARE
    }
    assert shares == {(wt.LimitMetric.DAILY_COUNT, 80), (wt.LimitMetric.DAILY_COUNT, 100)}


def holidays(watcher: Watcher) -> list[wt.CardAlerted]:
    return [a for a in watcher.of(wt.CardAlerted) if a.kind is wt.AlertKind.HOLIDAY_STARTED]


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
        await watcher.until(lambda: bool(holidays(watcher)), "the holiday")
        [pause] = holidays(watcher)
        assert pause.holiday_reason is wt.HolidayReason.ORDER_STREAK
        assert pause.holiday_until_ms is not None
        if epoch_ms_now() < pause.holiday_until_ms - 500:
            on_holiday = await open_and_wait(pipeline, open_order(amount_minor=120_000))
            assert on_holiday.decline_reason is DeclineReason.NO_REQUISITE
        await asyncio.sleep(max(0.0, (pause.holiday_until_ms - epoch_ms_now()) / 1000) + 0.2)
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
