"""The desk's pool part: which card of the pool takes a deposit.

It keeps two kinds of entry in the desk's table, each small and of bounded size:

- ``card/<pool>/<card>``, the card's slot: the open orders it was given
  (``uid → [amount, at_ms]``), its finished turnover in the current day and month (calendar
  periods of the time zone ``tz``: the ``card_time_zone`` setting, UTC by default, shared
  with the card monitor), and the monitor's holiday if one applies;
- ``placement/<uid>``, the order's placement: the card it was given (and when), or that it was
  declined, and once released whether it was approved. A late or repeated request never
  re-opens a closed order (which would occupy the card forever, or count its turnover twice),
  and a repeated request gets the same answer with the same id and time.

Card configuration comes from the compacted ``config-cards`` topic into a global table, so
every worker knows every card whichever pools it serves.

Placements are written before card slots (:mod:`stream_agents.desk.step` orders a batch's
writes), all to the same changelog partition, and Faust flushes the changelog before it
commits the source offset, so a crash can lose the slot write but never the placement before
it; the command is then delivered again and the slot is repaired from the placement (an open
placement missing from its slot is added, a closed one still in it is taken out, with its
turnover). Each write is one card's or one order's entry, never the pool's whole state.

A ``card.pause`` from the card monitor (an automatic holiday) is kept in the card's slot as
``pause = [until_ms, config_version]`` and applies while the card's configuration is not newer
than the one it was decided on: an admin's later edit carries PostgreSQL's holiday instead
(the monitor's holiday is projected there), and may end it early.

Requests (from the order part, within the desk) are answered with ``order.assign_card`` or
``order.decline`` (``no_requisite``), to the order part again.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, tzinfo
from enum import StrEnum
from typing import Any

from domain.cards import Card, CardLoad, CardStatus, choose_card, local_date
from domain.errors import DomainError
from domain.orders import DeclineReason
from schemas import cards as wc
from schemas import orders as w
from stream_agents.wire import TO_ORDER, Out, message_id

log = logging.getLogger(__name__)

#: A table entry, as JSON values.
Entry = dict[str, Any]


class Placement(StrEnum):
    """Where an order stands in the pool: on a card, declined, or released from its card."""

    OPEN = "open"
    DECLINED = "declined"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PoolStep:
    """The result of one message: the order's placement to write first (``None``: unchanged),
    then the changed card slots by card id, and what to send."""

    placement: Entry | None
    slots: dict[str, Entry]
    outputs: list[Out]


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
        open_orders=tuple((uid, amount) for uid, (amount, _) in slot["open"].items()),
    )


def _new_slot() -> Entry:
    return {"open": {}}


def handle_request(
    placement: Entry | None,
    slots: Mapping[str, Entry],
    request: wc.RequestCard,
    configs: Iterable[dict[str, Any]],
    now_ms: int,
    tz: tzinfo = UTC,
) -> PoolStep:
    """Answer a card request, given the order's placement and the pool's card slots."""
    uid = str(request.uid)
    if placement is not None:  # asked before: the same answer again
        step = _repaired(uid, placement, slots, tz)
        return dataclasses.replace(step, outputs=_answer(uid, placement))
    candidates = []
    for config in configs:
        try:
            card = card_from_config(config)
        except DomainError as exc:
            log.warning("card %s skipped: %s", config.get("card_id"), exc.code)
            continue
        slot = slots.get(card.card_id) or _new_slot()
        candidates.append((_paused(card, slot, config["version"]), _load(slot, now_ms, tz)))
    chosen = choose_card(candidates, request.amount_minor, request.currency, now_ms, tz)
    placed: Entry = {"amount_minor": request.amount_minor, "at_ms": now_ms}
    if chosen is None:
        placed |= {"status": Placement.DECLINED, "card_id": None}
        return PoolStep(placed, {}, _answer(uid, placed))
    placed |= {"status": Placement.OPEN, "card_id": chosen.card_id, "masked": chosen.pan_masked}
    slot = _opened(slots.get(chosen.card_id) or _new_slot(), uid, placed)
    return PoolStep(placed, {chosen.card_id: slot}, _answer(uid, placed))


def _answer(uid: str, placement: Entry) -> list[Out]:
    if placement["status"] == Placement.OPEN:
        return [_assign(uid, placement["card_id"], placement["masked"], placement["at_ms"])]
    if placement["status"] == Placement.DECLINED:
        return [_decline(uid, placement["at_ms"])]
    return []


def _opened(slot: Entry, uid: str, placement: Entry) -> Entry:
    return {**slot, "open": {**slot["open"], uid: [placement["amount_minor"], placement["at_ms"]]}}


def _closed(slot: Entry, uid: str, placement: Entry, tz: tzinfo) -> Entry:
    """``slot`` without the order, and with its turnover if it was approved."""
    slot = {**slot, "open": {k: v for k, v in slot["open"].items() if k != uid}}
    if placement["approved"]:
        _add_turnover(slot, placement["amount_minor"], placement["closed_ms"], tz)
    return slot


def _repaired(uid: str, placement: Entry, slots: Mapping[str, Entry], tz: tzinfo) -> PoolStep:
    """The card slot this placement implies, if a crash lost its write; else no change."""
    card_id = placement["card_id"]
    slot = slots.get(card_id) if card_id else None
    is_open = slot is not None and uid in slot["open"]
    if placement["status"] == Placement.OPEN and not is_open:
        log.warning("order %s restored on card %s", uid, card_id)
        return PoolStep(None, {card_id: _opened(slot or _new_slot(), uid, placement)}, [])
    if placement["status"] == Placement.CLOSED and is_open:
        assert slot is not None
        log.warning("order %s released from card %s", uid, card_id)
        return PoolStep(None, {card_id: _closed(slot, uid, placement, tz)}, [])
    return PoolStep(None, {}, [])


def _paused(card: Card, slot: dict[str, Any], config_version: int) -> Card:
    """``card`` with the monitor's holiday, if one applies to this configuration version."""
    pause = slot.get("pause")
    if pause is None or config_version > pause[1]:
        return card
    if card.holiday_until_ms is not None and card.holiday_until_ms >= pause[0]:
        return card
    return dataclasses.replace(card, holiday_until_ms=pause[0])


def handle_pause(slot: Entry | None, pause: wc.PauseCard, config: Entry | None) -> Entry | None:
    """Remember an automatic holiday; the card's new slot, or ``None`` when nothing changes.

    Idempotent and order-free: the latest end wins, for the configuration version known now.
    """
    version = config["version"] if config else 0
    current = (slot or {}).get("pause")
    if current is not None and current[1] == version and current[0] >= pause.until_ms:
        return None
    until = (
        pause.until_ms
        if current is None or current[1] != version
        else max(current[0], pause.until_ms)
    )
    return {**(slot or _new_slot()), "pause": [until, version]}


def handle_release(
    placement: Entry | None,
    slots: Mapping[str, Entry],
    release: wc.ReleaseCard,
    now_ms: int,
    tz: tzinfo = UTC,
) -> PoolStep:
    """Free the card of a closed order; an approved one adds to the card's turnover.

    Idempotent: only an order still open changes anything (or a repair, see the module).
    """
    uid = str(release.uid)
    if placement is None:  # never placed: remembered closed, so a late request stays unmet
        closed: Entry = {
            "status": Placement.CLOSED,
            "card_id": None,
            "amount_minor": release.amount_minor,
            "at_ms": now_ms,
            "closed_ms": now_ms,
            "approved": False,
        }
        return PoolStep(closed, {}, [])
    if placement["status"] != Placement.OPEN:
        return _repaired(uid, placement, slots, tz)
    card_id = placement["card_id"]
    if release.card_id != card_id:
        log.warning("order %s released from card %s, placed on %s", uid, release.card_id, card_id)
    closed = {
        **placement,
        "status": Placement.CLOSED,
        "closed_ms": now_ms,
        "approved": release.approved,
    }
    slot = _closed(slots.get(card_id) or _new_slot(), uid, closed, tz)
    return PoolStep(closed, {card_id: slot}, [])


def _add_turnover(slot: Entry, amount_minor: int, at_ms: int, tz: tzinfo = UTC) -> None:
    """Count a settled order in its day and month, starting new periods as needed.

    A period older than the slot's current one is over and no longer limits the card, so an
    order settled in it (a repair after a crash across midnight) is not counted there.
    """
    day, month = _periods(at_ms, tz)
    if slot.get("month", "") < month:
        slot.update(month=month, month_minor=0, month_count=0)
    if slot.get("day", "") < day:
        slot.update(day=day, day_minor=0, day_count=0)
    if slot["month"] == month:
        slot["month_minor"] += amount_minor
        slot["month_count"] += 1
    if slot["day"] == day:
        slot["day_minor"] += amount_minor
        slot["day_count"] += 1


def _assign(uid: str, card_id: str, masked: str, at_ms: int) -> Out:
    assign = w.AssignCard(uid=uuid.UUID(uid), card_id=card_id, card_masked=masked)
    return Out(TO_ORDER, assign, message_id(uid, assign.TYPE, card_id), at_ms)


def _decline(uid: str, at_ms: int) -> Out:
    reason = DeclineReason.NO_REQUISITE
    decline = w.DeclineOrder(uid=uuid.UUID(uid), reason=reason)
    return Out(TO_ORDER, decline, message_id(uid, decline.TYPE, reason), at_ms)
