"""The card monitor through its pure handlers and through Faust's ``test_context``; the pool
agent's handling of the monitor's ``card.pause``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from domain.orders import Direction, OrderStatus
from domain.turnover import HOUR_MS, HolidayRules
from schemas import cards as wc
from schemas import orders as w
from schemas import turnover as wt
from stream_agents.desk.outputs import OrderEntry, state_outputs
from stream_agents.desk.pool import handle_pause
from stream_agents.desk.turnover import MonitorRules, Stored, handle_movement
from stream_agents.wire import TO_TURNOVER, Out
from tests.unit.agents.builders import CARD_MASKED, T0
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
        windows = getattr(out.message, "windows", [])
        detail = ",".join(w.window_kind for w in windows) or getattr(out.message, "kind", "")
        named.append(f"{out.message.TYPE}:{detail}")
    return named


def snapshot(
    direction: Direction = Direction.DEPOSIT,
    card_id: str | None = "card-1",
    status: OrderStatus = OrderStatus.APPROVED,
) -> Any:
    return w.OrderSnapshot(
        uid=uuid.uuid4(),
        version=5,
        partner_id="acme",
        partner_order_id="inv-1",
        direction=direction,
        status=status,
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


def test_only_approved_deposits_on_a_card_count_as_movements_at_their_approval_time() -> None:
    deposit = OrderEntry(order=snapshot().to_order(), pool_id="pool-1")
    [movement_out] = [o for o in state_outputs(deposit) if o.topic == TO_TURNOVER]
    moved = movement_out.message
    assert isinstance(moved, wt.CardMovement)
    assert (moved.card_id, moved.occurred_at_ms) == ("card-1", T0 + 5_000)
    assert movement_out.message_id == state_outputs(deposit)[-1].message_id  # stable
    withdrawal = OrderEntry(order=snapshot(Direction.WITHDRAWAL, None).to_order())
    created = OrderEntry(order=snapshot(status=OrderStatus.NEW).to_order(), pool_id="pool-1")
    for entry in (withdrawal, created):
        assert [o for o in state_outputs(entry) if o.topic == TO_TURNOVER] == []


def test_a_movement_updates_three_windows_and_a_redelivery_repeats_them_identically() -> None:
    monitor = Monitor(config())
    message = movement()
    first = monitor.feed(message)
    assert kinds(first) == ["card.turnover_windows:hour,day,month"]  # one record
    stored = monitor.stored
    again = monitor.feed(message)
    assert monitor.stored == stored
    assert [o.encode() for o in again] == [o.encode() for o in first]


def test_limit_shares_raise_alerts_and_a_full_day_starts_a_holiday() -> None:
    monitor = Monitor(config(daily_limit_minor=200_000))
    assert kinds(monitor.feed(movement(amount=100_000)))[1:] == []
    crossing = movement(amount=70_000, at_ms=T0 + 10)
    outputs = monitor.feed(crossing)
    alerts = [o.message for o in outputs if isinstance(o.message, wt.CardAlerted)]
    assert [(a.kind, a.metric, a.threshold_pct) for a in alerts] == [
        (wt.AlertKind.LIMIT_SHARE, wt.LimitMetric.DAILY_AMOUNT, 80)
    ]
    outputs = monitor.feed(movement(amount=30_000, at_ms=T0 + 20))
    [pause] = [o for o in outputs if isinstance(o.message, wc.PauseCard)]
    assert pause.topic == "desk/pool"  # handed to the pool part within the desk
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
