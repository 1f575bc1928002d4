"""The pool agent: which card takes a deposit (``card-pool``, key pool id → table ``pools``).

Per pool it keeps, for each card, the open orders it was given (``uid → [amount, at_ms]``)
and its finished turnover in the current day and month (calendar periods of the time zone
``tz``: the ``card_time_zone`` setting, UTC by default, shared with the card monitor); plus
``done``, the uids it declined or saw released, so that a late or repeated request never
re-opens a closed order (which would occupy the card forever, or count its turnover twice).
Card configuration comes from the compacted ``config-cards`` topic into a global table, so
every worker knows every card whichever pools it serves.

A ``card.pause`` from the card monitor (an automatic holiday) is kept per card as
``pause = [until_ms, config_version]`` and applies while the card's configuration is not newer
than the one it was decided on: an admin's later edit carries PostgreSQL's holiday instead
(the monitor's holiday is projected there), and may end it early.

Requests are answered with ``order.assign_card`` or ``order.decline`` (``no_requisite``); the
answer is remembered, and a repeated request gets the same answer with the same id and time.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, tzinfo
from typing import Any, Final

import faust

from domain.cards import Card, CardLoad, CardStatus, choose_card, local_date
from domain.errors import DomainError
from domain.orders import DeclineReason
from schemas import cards as wc
from schemas import orders as w
from schemas.envelope import Envelope, Message
from schemas.topics import CARD_POOL, CONFIG_CARDS, ORDER_COMMANDS
from stream_agents.bus import Bus
from stream_agents.wire import Out, message_id

log = logging.getLogger(__name__)

#: How long a closed uid is remembered; requests come within seconds of the order opening.
DONE_KEEP_MS: Final = 2 * 24 * 3600 * 1000

State = dict[str, Any]


def card_from_config(config: dict[str, Any]) -> Card:
    """A domain card from a stored ``config.card`` payload (JSON values)."""
    return Card(
        card_id=config["card_id"],
        pool_id=config["pool_id"],
        pan_masked=config["pan_masked"],
        currency=config["currency"],
        status=CardStatus(config["status"]),
        expires_on=date.fromisoformat(config["expires_on"]),
        daily_limit_minor=config["daily_limit_minor"],
        monthly_limit_minor=config["monthly_limit_minor"],
        daily_count_limit=config["daily_count_limit"],
        monthly_count_limit=config["monthly_count_limit"],
        min_order_minor=config["min_order_minor"],
        max_order_minor=config["max_order_minor"],
        holiday_until_ms=config.get("holiday_until_ms"),
    )


def _periods(now_ms: int, tz: tzinfo = UTC) -> tuple[str, str]:
    day = local_date(now_ms, tz).isoformat()
    return day, day[:7]


def _load(slot: dict[str, Any], now_ms: int, tz: tzinfo = UTC) -> CardLoad:
    day, month = _periods(now_ms, tz)
    same_day, same_month = slot.get("day") == day, slot.get("month") == month
    return CardLoad(
        day_turnover_minor=slot.get("day_minor", 0) if same_day else 0,
        day_count=slot.get("day_count", 0) if same_day else 0,
        month_turnover_minor=slot.get("month_minor", 0) if same_month else 0,
        month_count=slot.get("month_count", 0) if same_month else 0,
        open_orders=tuple((uid, amount) for uid, (amount, _) in sorted(slot["open"].items())),
    )


def _copy(state: State) -> State:
    """A copy the handlers may change without touching the stored entry.

    Only the dicts they change are copied (the state, each card slot, its open orders and
    ``done``); the values they only ever replace, never change in place (``[amount, at_ms]``
    lists, strings, numbers), are shared. Same result as ``deepcopy`` at a fraction of its
    cost, which grows with every open and recently closed order of the pool.
    """
    return {
        **state,
        "cards": {
            card_id: {**slot, "open": dict(slot["open"])}
            for card_id, slot in state["cards"].items()
        },
        "done": dict(state["done"]),
    }


def _new_slot(masked: str) -> dict[str, Any]:
    return {"masked": masked, "open": {}}


def handle_request(
    state: State | None,
    request: wc.RequestCard,
    configs: Iterable[dict[str, Any]],
    now_ms: int,
    tz: tzinfo = UTC,
) -> tuple[State | None, list[Out]]:
    """Answer a card request; returns the new state (``None``: unchanged) and the answer."""
    uid = str(request.uid)
    state = _copy(state) if state else {"cards": {}, "done": {}}
    for card_id, slot in state["cards"].items():
        if uid in slot["open"]:  # placed before: the same answer again
            return None, [_assign(uid, card_id, slot["masked"], slot["open"][uid][1])]
    if uid in state["done"]:
        at_ms, declined = state["done"][uid]
        return None, [_decline(uid, at_ms)] if declined else []
    candidates = []
    for config in configs:
        try:
            card = card_from_config(config)
        except DomainError as exc:
            log.warning("card %s skipped: %s", config.get("card_id"), exc.code)
            continue
        slot = state["cards"].get(card.card_id) or _new_slot(card.pan_masked)
        candidates.append((_paused(card, slot, config["version"]), _load(slot, now_ms, tz)))
    chosen = choose_card(candidates, request.amount_minor, request.currency, now_ms, tz)
    _forget_old(state, now_ms)
    if chosen is None:
        state["done"][uid] = [now_ms, True]
        return state, [_decline(uid, now_ms)]
    slot = state["cards"].setdefault(chosen.card_id, _new_slot(chosen.pan_masked))
    slot["masked"] = chosen.pan_masked
    slot["open"][uid] = [request.amount_minor, now_ms]
    return state, [_assign(uid, chosen.card_id, chosen.pan_masked, now_ms)]


def _paused(card: Card, slot: dict[str, Any], config_version: int) -> Card:
    """``card`` with the monitor's holiday, if one applies to this configuration version."""
    pause = slot.get("pause")
    if pause is None or config_version > pause[1]:
        return card
    if card.holiday_until_ms is not None and card.holiday_until_ms >= pause[0]:
        return card
    return dataclasses.replace(card, holiday_until_ms=pause[0])


def handle_pause(
    state: State | None, pause: wc.PauseCard, config: dict[str, Any] | None
) -> State | None:
    """Remember an automatic holiday; the new state, or ``None`` when nothing changes.

    Idempotent and order-free: the latest end wins, for the configuration version known now.
    """
    version = config["version"] if config else 0
    slot = (state or {}).get("cards", {}).get(pause.card_id, {})
    current = slot.get("pause")
    if current is not None and current[1] == version and current[0] >= pause.until_ms:
        return None
    state = _copy(state) if state else {"cards": {}, "done": {}}
    masked = config["pan_masked"] if config else ""
    slot = state["cards"].setdefault(pause.card_id, _new_slot(masked))
    until = (
        pause.until_ms
        if current is None or current[1] != version
        else max(current[0], pause.until_ms)
    )
    slot["pause"] = [until, version]
    return state


def handle_release(
    state: State | None, release: wc.ReleaseCard, now_ms: int, tz: tzinfo = UTC
) -> tuple[State | None, list[Out]]:
    """Free the card of a closed order; an approved one adds to the card's turnover.

    Idempotent: only an order still open on that card changes anything.
    """
    uid = str(release.uid)
    if not state or uid not in state["cards"].get(release.card_id, {}).get("open", {}):
        if state and uid not in state["done"]:
            state = _copy(state)
            state["done"][uid] = [now_ms, False]
            return state, []
        return None, []
    state = _copy(state)
    slot = state["cards"][release.card_id]
    del slot["open"][uid]
    if release.approved:
        _add_turnover(slot, release.amount_minor, now_ms, tz)
    state["done"][uid] = [now_ms, False]
    _forget_old(state, now_ms)
    return state, []


def _add_turnover(slot: dict[str, Any], amount_minor: int, now_ms: int, tz: tzinfo = UTC) -> None:
    """Count a settled order in the current day and month, starting new periods as needed."""
    day, month = _periods(now_ms, tz)
    if slot.get("month") != month:
        slot.update(month=month, month_minor=0, month_count=0)
    if slot.get("day") != day:
        slot.update(day=day, day_minor=0, day_count=0)
    slot["day_minor"] += amount_minor
    slot["day_count"] += 1
    slot["month_minor"] += amount_minor
    slot["month_count"] += 1


def _forget_old(state: State, now_ms: int) -> None:
    done = state["done"]
    for uid in [uid for uid, (at_ms, _) in done.items() if at_ms < now_ms - DONE_KEEP_MS]:
        del done[uid]


def _assign(uid: str, card_id: str, masked: str, at_ms: int) -> Out:
    assign = w.AssignCard(uid=uuid.UUID(uid), card_id=card_id, card_masked=masked)
    return Out(ORDER_COMMANDS.name, assign, message_id(uid, assign.TYPE, card_id), at_ms)


def _decline(uid: str, at_ms: int) -> Out:
    reason = DeclineReason.NO_REQUISITE
    decline = w.DeclineOrder(uid=uuid.UUID(uid), reason=reason)
    return Out(ORDER_COMMANDS.name, decline, message_id(uid, decline.TYPE, reason), at_ms)


def install(app: faust.App, bus: Bus, now_ms: Callable[[], int], tz: tzinfo = UTC) -> None:
    """Declare the ``cards`` global table and its feeder, the ``pools`` table and the agent."""
    # partitions=1 and recovery_buffer_size=1: Faust's advice against a recovery loop of
    # global tables with several workers (see faust.tables.globaltable).
    cards = app.GlobalTable("cards", key_type=str, partitions=1, recovery_buffer_size=1)
    pools = app.Table("pools", key_type=str, partitions=CARD_POOL.partitions)

    def on_config(env: Envelope, message: Message) -> list[Out]:
        assert isinstance(message, wc.CardConfigured)
        stored = cards.get(message.card_id)
        if stored is None or stored["version"] <= message.version:  # compaction may reorder
            cards[message.card_id] = message.model_dump(mode="json")
        return []

    def on_pool(env: Envelope, message: Message) -> list[Out]:
        if isinstance(message, wc.RequestCard):
            configs = [c for c in cards.values() if c["pool_id"] == message.pool_id]
            state, outputs = handle_request(
                pools.get(message.pool_id), message, configs, now_ms(), tz
            )
        elif isinstance(message, wc.PauseCard):
            state = handle_pause(pools.get(message.pool_id), message, cards.get(message.card_id))
            outputs = []
        else:
            assert isinstance(message, wc.ReleaseCard)
            state, outputs = handle_release(pools.get(message.pool_id), message, now_ms(), tz)
        if state is not None:
            pools[message.pool_id] = state
        return outputs

    def on_tombstone(key: bytes | None) -> None:
        if key is not None and key.decode() in cards:  # the card was deleted from the topic
            del cards[key.decode()]

    @app.agent(bus.topic(CONFIG_CARDS.name), name="card-config")
    async def card_config(stream: faust.StreamT[bytes]) -> None:
        accepts = (wc.CardConfigured,)
        await bus.consume(stream, CONFIG_CARDS.name, accepts, on_config, on_tombstone)

    @app.agent(bus.topic(CARD_POOL.name), name="pool-agent")
    async def pool_agent(stream: faust.StreamT[bytes]) -> None:
        accepts = (wc.RequestCard, wc.ReleaseCard, wc.PauseCard)
        await bus.consume(stream, CARD_POOL.name, accepts, on_pool)
