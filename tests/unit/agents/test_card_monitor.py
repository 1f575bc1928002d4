"""The card monitor through its pure handlers and through Faust's ``test_context``; the pool
agent's handling of the monitor's ``card.pause``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust
import pytest

from domain.orders import Direction, OrderStatus
from domain.turnover import HOUR_MS, HolidayRules, WindowKind
from schemas import cards as wc
from schemas import orders as w
from schemas import turnover as wt
from schemas.registry import encode
from stream_agents.card_monitor import MonitorRules, Stored, handle_movement, movement_of
from stream_agents.desk.pool import handle_pause
from stream_agents.wire import Out, epoch_ms_now, from_epoch_ms
from tests.unit.agents.builders import CARD_MASKED, T0, capture_sends, env, faust_app
from tests.unit.agents.test_desk_pool import Pool, config, release, request

RULES = MonitorRules(holidays=HolidayRules(on_daily_limit_ms=2 * HOUR_MS))


def movement(
    uid: uuid.UUID | None = None, amount: int = 100_000, at_ms: int = T0
) -> wt.CardMovement:
    return wt.CardMovement(
        card_id="card-1",
        uid=uid or uuid.uuid4(),
        amount_minor=amount,
        currency="RUB",
        occurred_at_ms=at_ms,
    )


class Monitor:
    """Keeps the table entry between movements, through JSON, as the table does."""

    def __init__(self, card_config: dict[str, Any] | None, rules: MonitorRules = RULES) -> None:
        self.config, self.rules = card_config, rules
        self.stored: Stored | None = None

    def feed(self, message: wt.CardMovement, now_ms: int = T0 + 1_000) -> list[Out]:
        state, outputs = handle_movement(self.stored, message, self.config, self.rules, now_ms)
        if state is not None:
            self.stored = json.loads(json.dumps(state))
        return outputs


def kinds(outputs: list[Out]) -> list[str]:
    named = []
    for out in outputs:
        detail = getattr(out.message, "window_kind", None) or getattr(out.message, "kind", "")
        named.append(f"{out.message.TYPE}:{detail}")
    return named


def snapshot(direction: Direction = Direction.DEPOSIT, card_id: str | None = "card-1") -> Any:
    return w.OrderSnapshot(
        uid=uuid.uuid4(),
        version=5,
        partner_id="acme",
        partner_order_id="inv-1",
        direction=direction,
        status=OrderStatus.APPROVED,
        amount_minor=150_000,
        fee_minor=3_000,
        currency="RUB",
        ttl_s=900,
        created_at_ms=T0,
        expires_at_ms=T0 + 900_000,
        updated_at_ms=T0 + 5_000,
        card_id=card_id,
        card_masked=CARD_MASKED if card_id else None,
    )


def test_only_approved_deposits_become_movements_at_their_approval_time() -> None:
    deposit = w.OrderApproved(order=snapshot())
    [out] = movement_of(env(deposit, at_ms=T0 + 7), deposit)
    assert isinstance(out.message, wt.CardMovement)
    assert (out.topic, out.key, out.message.occurred_at_ms) == ("card-movements", b"card-1", T0 + 7)
    assert movement_of(env(deposit, at_ms=T0 + 9), deposit)[0].message_id == out.message_id
    withdrawal = w.OrderApproved(order=snapshot(Direction.WITHDRAWAL, None))
    created = w.OrderCreated(order=snapshot())
    assert movement_of(env(withdrawal), withdrawal) == []
    assert movement_of(env(created), created) == []


def test_a_movement_updates_three_windows_and_a_redelivery_repeats_them_identically() -> None:
    monitor = Monitor(config())
    message = movement()
    first = monitor.feed(message)
    assert kinds(first) == [
        "card.turnover_updated:hour",
        "card.turnover_updated:day",
        "card.turnover_updated:month",
    ]
    stored = monitor.stored
    again = monitor.feed(message)
    assert monitor.stored == stored
    assert [o.encode() for o in again] == [o.encode() for o in first]


def test_limit_shares_raise_alerts_and_a_full_day_starts_a_holiday() -> None:
    monitor = Monitor(config(daily_limit_minor=200_000))
    assert kinds(monitor.feed(movement(amount=100_000)))[3:] == []
    crossing = movement(amount=70_000, at_ms=T0 + 10)
    outputs = monitor.feed(crossing)
    alerts = [o.message for o in outputs if isinstance(o.message, wt.CardAlerted)]
    assert [(a.kind, a.metric, a.threshold_pct) for a in alerts] == [
        (wt.AlertKind.LIMIT_SHARE, wt.LimitMetric.DAILY_AMOUNT, 80)
    ]
    outputs = monitor.feed(movement(amount=30_000, at_ms=T0 + 20))
    [pause] = [o for o in outputs if isinstance(o.message, wc.PauseCard)]
    assert pause.topic == "order-commands"
    assert pause.key == b"pool:pool-1"  # to the pool's desk
    assert pause.message.until_ms == T0 + 20 + 2 * HOUR_MS  # type: ignore[attr-defined]
    holiday = [o.message for o in outputs if getattr(o.message, "kind", None) == "holiday_started"]
    assert len(holiday) == 1
    # A redelivery of the crossing movement re-publishes the same alert (same id).
    repeated = monitor.feed(crossing)
    ids = {o.message_id for o in repeated if isinstance(o.message, wt.CardAlerted)}
    assert alerts[0].alert_id in ids


def test_a_movement_older_than_every_window_is_dropped_and_counted() -> None:
    monitor = Monitor(config())
    assert monitor.feed(movement(at_ms=T0 - 500 * 24 * HOUR_MS)) == []
    assert monitor.stored is not None
    assert monitor.stored["dropped_late"] == 1


def test_an_unknown_card_is_counted_without_alerts() -> None:
    monitor = Monitor(None)
    outputs = monitor.feed(movement(amount=10**8))
    assert {o.topic for o in outputs} == {"card-turnover"}


# --- the pool agent and the pause -----------------------------------------------------------


def test_a_paused_card_is_not_handed_out_until_the_pause_ends() -> None:
    pool = Pool(config())
    pause = wc.PauseCard(pool_id="pool-1", card_id="card-1", until_ms=T0 + 60_000, reason="x")
    slot = handle_pause(pool.slots.get("card-1"), pause, pool.configs[0])
    assert slot is not None
    pool.slots["card-1"] = slot
    assert handle_pause(slot, pause, pool.configs[0]) is None  # a repeat changes nothing
    assert isinstance(pool.ask(request(), now_ms=T0).message, w.DeclineOrder)
    assert isinstance(pool.ask(request(), now_ms=T0 + 60_000).message, w.AssignCard)


def test_a_newer_configuration_overrides_the_pause() -> None:
    pool = Pool(config())
    pause = wc.PauseCard(pool_id="pool-1", card_id="card-1", until_ms=T0 + 60_000, reason="x")
    slot = handle_pause(pool.slots.get("card-1"), pause, pool.configs[0])
    assert slot is not None
    pool.slots["card-1"] = slot
    pool.configs = [config(version=2)]  # an admin ended the holiday in the console
    assert isinstance(pool.ask(request(), now_ms=T0).message, w.AssignCard)


# --- through Faust ---------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Out]:
    return capture_sends(monkeypatch)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[faust.App]:
    yield from faust_app(tmp_path)


async def test_the_monitor_agent_keeps_windows_in_its_table(
    app: faust.App, sent: list[Out]
) -> None:
    approved = w.OrderApproved(order=snapshot())
    raw = encode(approved, occurred_at=from_epoch_ms(epoch_ms_now() - 60_000))
    async with app.agents["card-movements"].test_context() as rekey:
        await rekey.put(key=str(approved.order.uid).encode(), value=raw)
    [moved] = sent
    assert isinstance(moved.message, wt.CardMovement)
    sent.clear()
    async with app.agents["card-monitor"].test_context() as monitor:
        await monitor.put(key=b"card-1", value=moved.encode())
        await monitor.put(key=b"card-1", value=moved.encode())  # redelivered
    table: Any = app.tables["turnover"]
    buckets = table["card-1"]["buckets"]
    assert [(b[0], b[3], b[4]) for b in buckets] == [
        (WindowKind.DAY, 150_000, 1),
        (WindowKind.HOUR, 150_000, 1),
        (WindowKind.MONTH, 150_000, 1),
    ]
    assert len({o.message_id for o in sent}) == 3  # the repeat sent the same three updates


def test_the_pool_agent_counts_days_in_the_configured_time_zone() -> None:
    """23:30 and 00:30 in Moscow are two days there, one day in UTC."""
    moscow = ZoneInfo("Europe/Moscow")
    released_ms = 1_764_361_800_000  # 2025-11-28T20:30Z, 23:30 in Moscow
    for tz, expected in ((UTC, w.DeclineOrder), (moscow, w.AssignCard)):
        pool = Pool(config(daily_count_limit=1))
        first = request(100_000)
        pool.keep(first.uid, pool.request(first, released_ms, tz))
        pool.keep(first.uid, pool.release(release(first), released_ms, tz))
        [answer] = pool.request(request(120_000), released_ms + HOUR_MS, tz).outputs
        assert isinstance(answer.message, expected), tz
