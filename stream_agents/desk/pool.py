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
writes), all to the same changelog partition, and the batch is acknowledged only once the
broker has them all (:mod:`stream_agents.confirmed`), so a crash can lose the slot write but
never the placement before it; the command is then delivered again and the slot is
repaired from the placement (an open placement missing from its slot is added, a closed one
still in it is taken out, with its turnover). Each write is one card's or one order's
entry, never the pool's whole state.

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
from dataclasses import dataclass, field
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
class Period:
    """A card's finished turnover in one calendar period: a day (``2025-11-28``) or a month
    (``2025-11``) of the cards' time zone."""

    name: str
    amount_minor: int = 0
    count: int = 0

    def counted(self, name: str, amount_minor: int) -> Period:
        """This period with one more settled order of ``name``'s period: a later period
        starts afresh; an earlier one is over and no longer limits the card, so an order
        settled in it (a repair after a crash across midnight) is not counted."""
        current = self if self.name >= name else Period(name)
        if current.name != name:
            return current
        return Period(name, current.amount_minor + amount_minor, current.count + 1)


@dataclass(frozen=True, slots=True)
class Pause:
    """The monitor's holiday for a card, decided on configuration ``config_version``."""

    until_ms: int
    config_version: int


@dataclass(frozen=True, slots=True)
class Slot:
    """A card's entry (``card/<pool>/<card>``): its open orders (``uid → (amount, at_ms)``),
    its finished turnover in the current day and month, the monitor's holiday if any."""

    open: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    day: Period | None = None
    month: Period | None = None
    pause: Pause | None = None

    def opened(self, uid: str, amount_minor: int, at_ms: int) -> Slot:
        return dataclasses.replace(self, open={**self.open, uid: (amount_minor, at_ms)})

    def closed(self, uid: str) -> Slot:
        return dataclasses.replace(self, open={k: v for k, v in self.open.items() if k != uid})

    def settled(self, amount_minor: int, at_ms: int, tz: tzinfo) -> Slot:
        """Count a settled order in its day and month."""
        day, month = _periods(at_ms, tz)
        return dataclasses.replace(
            self,
            day=(self.day or Period(day)).counted(day, amount_minor),
            month=(self.month or Period(month)).counted(month, amount_minor),
        )

    def load(self, now_ms: int, tz: tzinfo) -> CardLoad:
        """What the card carries now: its open orders, and its turnover in today's day and
        month (a period that is not today's counts nothing)."""
        day, month = _periods(now_ms, tz)
        today = self.day if self.day is not None and self.day.name == day else Period(day)
        this_month = self.month if self.month is not None and self.month.name == month else None
        this_month = this_month or Period(month)
        return CardLoad(
            day_turnover_minor=today.amount_minor,
            day_count=today.count,
            month_turnover_minor=this_month.amount_minor,
            month_count=this_month.count,
            open_orders=tuple((uid, amount) for uid, (amount, _) in self.open.items()),
        )

    def to_json(self) -> Entry:
        entry: Entry = {"open": {uid: [amount, at] for uid, (amount, at) in self.open.items()}}
        for key, period in (("day", self.day), ("month", self.month)):
            if period is not None:
                entry |= {key: period.name, f"{key}_minor": period.amount_minor}
                entry[f"{key}_count"] = period.count
        if self.pause is not None:
            entry["pause"] = [self.pause.until_ms, self.pause.config_version]
        return entry

    @classmethod
    def from_json(cls, entry: Entry | None) -> Slot:
        if entry is None:
            return cls()
        periods = {
            key: Period(entry[key], entry[f"{key}_minor"], entry[f"{key}_count"])
            for key in ("day", "month")
            if key in entry
        }
        pause = entry.get("pause")
        return cls(
            open={uid: (amount, at) for uid, (amount, at) in entry["open"].items()},
            day=periods.get("day"),
            month=periods.get("month"),
            pause=None if pause is None else Pause(pause[0], pause[1]),
        )


@dataclass(frozen=True, slots=True)
class Placed:
    """An order's placement (``placement/<uid>``): on which card (or declined), for how much,
    since when, and once closed, when and whether it was approved."""

    status: Placement
    amount_minor: int
    at_ms: int
    card_id: str | None = None
    masked: str | None = None
    closed_ms: int | None = None
    approved: bool | None = None

    def close(self, at_ms: int, *, approved: bool) -> Placed:
        return dataclasses.replace(
            self, status=Placement.CLOSED, closed_ms=at_ms, approved=approved
        )

    def to_json(self) -> Entry:
        entry: Entry = {
            "status": self.status,
            "card_id": self.card_id,
            "amount_minor": self.amount_minor,
            "at_ms": self.at_ms,
        }
        if self.masked is not None:
            entry["masked"] = self.masked
        if self.status is Placement.CLOSED:
            entry |= {"closed_ms": self.closed_ms, "approved": self.approved}
        return entry

    @classmethod
    def from_json(cls, entry: Entry) -> Placed:
        return cls(
            status=Placement(entry["status"]),
            amount_minor=entry["amount_minor"],
            at_ms=entry["at_ms"],
            card_id=entry.get("card_id"),
            masked=entry.get("masked"),
            closed_ms=entry.get("closed_ms"),
            approved=entry.get("approved"),
        )


@dataclass(frozen=True, slots=True)
class PoolStep:
    """The result of one message: the order's placement to write first (``None``: unchanged),
    then the changed card slots by card id (table entries, JSON), and what to send."""

    placement: Entry | None
    slots: dict[str, Entry]
    outputs: list[Out]

    @classmethod
    def of(cls, placed: Placed | None, slots: Mapping[str, Slot], outputs: list[Out]) -> PoolStep:
        entry = None if placed is None else placed.to_json()
        return cls(entry, {card_id: s.to_json() for card_id, s in slots.items()}, outputs)


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
        placed = Placed.from_json(placement)
        repaired = _repaired(uid, placed, slots, tz)
        return PoolStep.of(None, repaired, _answer(uid, placed))
    candidates = []
    for config in configs:
        try:
            card = card_from_config(config)
        except DomainError as exc:
            log.warning("card %s skipped: %s", config.get("card_id"), exc.code)
            continue
        slot = Slot.from_json(slots.get(card.card_id))
        candidates.append((_paused(card, slot, config["version"]), slot.load(now_ms, tz)))
    chosen = choose_card(candidates, request.amount_minor, request.currency, now_ms, tz)
    if chosen is None:
        declined = Placed(Placement.DECLINED, request.amount_minor, now_ms)
        return PoolStep.of(declined, {}, _answer(uid, declined))
    placed = Placed(Placement.OPEN, request.amount_minor, now_ms, chosen.card_id, chosen.pan_masked)
    slot = Slot.from_json(slots.get(chosen.card_id)).opened(uid, request.amount_minor, now_ms)
    return PoolStep.of(placed, {chosen.card_id: slot}, _answer(uid, placed))


def _answer(uid: str, placed: Placed) -> list[Out]:
    if placed.status is Placement.OPEN:
        assert placed.card_id is not None
        assert placed.masked is not None
        return [_assign(uid, placed.card_id, placed.masked, placed.at_ms)]
    if placed.status is Placement.DECLINED:
        return [_decline(uid, placed.at_ms)]
    return []


def _released(slot: Slot, uid: str, placed: Placed, tz: tzinfo) -> Slot:
    """``slot`` without the order, and with its turnover if it was approved."""
    slot = slot.closed(uid)
    if placed.approved:
        assert placed.closed_ms is not None
        slot = slot.settled(placed.amount_minor, placed.closed_ms, tz)
    return slot


def _repaired(uid: str, placed: Placed, slots: Mapping[str, Entry], tz: tzinfo) -> dict[str, Slot]:
    """The card slot this placement implies, if a crash lost its write; else nothing."""
    card_id = placed.card_id
    if card_id is None:
        return {}
    stored = slots.get(card_id)
    slot = Slot.from_json(stored)
    is_open = stored is not None and uid in slot.open
    if placed.status is Placement.OPEN and not is_open:
        log.warning("order %s restored on card %s", uid, card_id)
        return {card_id: slot.opened(uid, placed.amount_minor, placed.at_ms)}
    if placed.status is Placement.CLOSED and is_open:
        log.warning("order %s released from card %s", uid, card_id)
        return {card_id: _released(slot, uid, placed, tz)}
    return {}


def _paused(card: Card, slot: Slot, config_version: int) -> Card:
    """``card`` with the monitor's holiday, if one applies to this configuration version."""
    pause = slot.pause
    if pause is None or config_version > pause.config_version:
        return card
    if card.holiday_until_ms is not None and card.holiday_until_ms >= pause.until_ms:
        return card
    return dataclasses.replace(card, holiday_until_ms=pause.until_ms)


def handle_pause(slot: Entry | None, pause: wc.PauseCard, config: Entry | None) -> Entry | None:
    """Remember an automatic holiday; the card's new slot, or ``None`` when nothing changes.

    Idempotent and order-free: the latest end wins, for the configuration version known now.
    """
    version = config["version"] if config else 0
    current = Slot.from_json(slot)
    kept = current.pause
    if kept is not None and kept.config_version == version and kept.until_ms >= pause.until_ms:
        return None
    until = pause.until_ms
    if kept is not None and kept.config_version == version:
        until = max(kept.until_ms, pause.until_ms)
    return dataclasses.replace(current, pause=Pause(until, version)).to_json()


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
        never = Placed(Placement.CLOSED, release.amount_minor, now_ms, closed_ms=now_ms)
        return PoolStep.of(dataclasses.replace(never, approved=False), {}, [])
    placed = Placed.from_json(placement)
    if placed.status is not Placement.OPEN:
        return PoolStep.of(None, _repaired(uid, placed, slots, tz), [])
    card_id = placed.card_id
    assert card_id is not None
    if release.card_id != card_id:
        log.warning("order %s released from card %s, placed on %s", uid, release.card_id, card_id)
    closed = placed.close(now_ms, approved=release.approved)
    slot = _released(Slot.from_json(slots.get(card_id)), uid, closed, tz)
    return PoolStep.of(closed, {card_id: slot}, [])


def _assign(uid: str, card_id: str, masked: str, at_ms: int) -> Out:
    assign = w.AssignCard(uid=uuid.UUID(uid), card_id=card_id, card_masked=masked)
    return Out(TO_ORDER, assign, message_id(uid, assign.TYPE, card_id), at_ms)


def _decline(uid: str, at_ms: int) -> Out:
    reason = DeclineReason.NO_REQUISITE
    decline = w.DeclineOrder(uid=uuid.UUID(uid), reason=reason)
    return Out(TO_ORDER, decline, message_id(uid, decline.TYPE, reason), at_ms)
