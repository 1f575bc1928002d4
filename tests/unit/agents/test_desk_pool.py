"""The pool agent's protocol through its pure handlers: choosing, repeating, releasing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, tzinfo
from typing import Any

from domain.cards import CardStatus
from domain.orders import DeclineReason
from schemas import cards as wc
from schemas import orders as w
from stream_agents.desk.pool import (
    Entry,
    PoolStep,
    card_from_config,
    handle_release,
    handle_request,
)
from stream_agents.wire import Out
from tests.unit.agents.builders import CARD_MASKED, T0

DAY_MS = 24 * 3600 * 1000


def config(card_id: str = "card-1", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "card_id": card_id,
        "pool_id": "pool-1",
        "pan_masked": CARD_MASKED,
        "currency": "RUB",
        "status": CardStatus.ACTIVE,
        "expires_on": date(2099, 12, 31),
        "daily_limit_minor": 1_000_000,
        "monthly_limit_minor": 10_000_000,
        "daily_count_limit": 10,
        "monthly_count_limit": 100,
        "min_order_minor": 100,
        "max_order_minor": 500_000,
        "version": 1,
    }
    return wc.CardConfigured(**(fields | overrides)).model_dump(mode="json")


def request(amount_minor: int = 150_000, uid: uuid.UUID | None = None) -> wc.RequestCard:
    return wc.RequestCard(
        pool_id="pool-1", uid=uid or uuid.uuid4(), amount_minor=amount_minor, currency="RUB"
    )


def release(req: wc.RequestCard, card_id: str = "card-1", approved: bool = True) -> wc.ReleaseCard:
    return wc.ReleaseCard(
        pool_id="pool-1",
        uid=req.uid,
        card_id=card_id,
        amount_minor=req.amount_minor,
        approved=approved,
    )


class Pool:
    """Keeps the pool's table entries between messages, through JSON, as the table does."""

    def __init__(self, *configs: dict[str, Any]) -> None:
        self.configs = list(configs)
        self.placements: dict[str, Entry] = {}
        self.slots: dict[str, Entry] = {}

    def keep(self, uid: uuid.UUID, step: PoolStep) -> None:
        if step.placement is not None:
            self.placements[str(uid)] = json.loads(json.dumps(step.placement))
        for card_id, slot in step.slots.items():
            self.slots[card_id] = json.loads(json.dumps(slot))

    def request(self, req: wc.RequestCard, now_ms: int = T0, tz: tzinfo = UTC) -> PoolStep:
        placement = self.placements.get(str(req.uid))
        return handle_request(placement, self.slots, req, self.configs, now_ms, tz)

    def release(self, rel: wc.ReleaseCard, now_ms: int = T0, tz: tzinfo = UTC) -> PoolStep:
        return handle_release(self.placements.get(str(rel.uid)), self.slots, rel, now_ms, tz)

    def ask(self, req: wc.RequestCard, now_ms: int = T0) -> Out:
        step = self.request(req, now_ms)
        self.keep(req.uid, step)
        [answer] = step.outputs
        return answer

    def free(self, rel: wc.ReleaseCard, now_ms: int = T0) -> bool:
        step = self.release(rel, now_ms)
        assert step.outputs == []
        self.keep(rel.uid, step)
        return step.placement is not None or bool(step.slots)


def test_a_request_gets_a_card_and_a_repeat_gets_the_same_answer() -> None:
    pool = Pool(config())
    req = request()
    first = pool.ask(req)
    assert isinstance(first.message, w.AssignCard)
    assert (first.message.card_id, first.message.card_masked) == ("card-1", CARD_MASKED)
    assert first.topic == "desk/order"
    again = pool.ask(req, now_ms=T0 + 60_000)
    assert again.encode() == first.encode()


def test_same_amount_on_one_card_is_declined_and_the_decline_is_remembered() -> None:
    pool = Pool(config())
    pool.ask(request(150_000))
    req = request(150_000)
    declined = pool.ask(req)
    assert isinstance(declined.message, w.DeclineOrder)
    assert declined.message.reason is DeclineReason.NO_REQUISITE
    pool.configs.append(config("card-2"))  # a card arrives later: the answer stays the same
    assert pool.ask(req).encode() == declined.encode()


def test_a_second_card_takes_the_same_amount() -> None:
    pool = Pool(config("card-1"), config("card-2"))
    cards = {pool.ask(request(150_000)).message.card_id for _ in range(2)}  # type: ignore[attr-defined]
    assert cards == {"card-1", "card-2"}


def test_releasing_frees_the_card_and_counts_turnover_once() -> None:
    pool = Pool(config(daily_count_limit=2))
    req = request(150_000)
    pool.ask(req)
    assert pool.free(release(req))
    assert not pool.free(release(req))  # repeated: nothing changes
    slot = pool.slots["card-1"]
    assert (slot["open"], slot["day_minor"], slot["day_count"]) == ({}, 150_000, 1)
    # The same amount is possible again; one more order reaches the daily count limit.
    assert isinstance(pool.ask(request(150_000)).message, w.AssignCard)
    assert isinstance(pool.ask(request(100_000)).message, w.DeclineOrder)


def test_a_rejected_order_frees_the_card_without_turnover() -> None:
    pool = Pool(config())
    req = request()
    pool.ask(req)
    pool.free(release(req, approved=False))
    assert "day_minor" not in pool.slots["card-1"]


def test_a_request_after_release_does_not_reopen_the_order() -> None:
    pool = Pool(config())
    req = request()
    pool.ask(req)
    pool.free(release(req))
    assert pool.request(req) == PoolStep(None, {}, [])


def test_turnover_starts_afresh_on_a_new_day() -> None:
    pool = Pool(config(daily_limit_minor=200_000))
    req = request(150_000)
    pool.ask(req)
    pool.free(release(req))
    assert isinstance(pool.ask(request(100_000)).message, w.DeclineOrder)  # over today's limit
    assert isinstance(pool.ask(request(100_000), now_ms=T0 + DAY_MS).message, w.AssignCard)


def test_a_card_with_a_broken_configuration_is_skipped() -> None:
    broken = config("card-0") | {"min_order_minor": 900_000}  # above its max order
    pool = Pool(broken, config("card-1"))
    assert pool.ask(request()).message.card_id == "card-1"  # type: ignore[attr-defined]


def test_card_from_config_reads_the_stored_payload() -> None:
    card = card_from_config(config(holiday_until_ms=T0))
    assert (card.card_id, card.expires_on, card.holiday_until_ms) == (
        "card-1",
        date(2099, 12, 31),
        T0,
    )


def test_each_write_is_one_card_or_one_order_however_full_the_pool() -> None:
    pool = Pool(
        config(
            daily_limit_minor=10**10,
            monthly_limit_minor=10**11,
            daily_count_limit=10_000,
            monthly_count_limit=100_000,
        )
    )
    sizes = []
    for amount in range(100_000, 102_000):
        req = request(amount)
        pool.ask(req)
        step = pool.release(release(req))
        pool.keep(req.uid, step)
        sizes.append(
            sum(len(json.dumps(entry)) for entry in [step.placement, *step.slots.values()])
        )
    assert max(sizes) - sizes[0] < 16  # only the turnover's figures grow a few digits
    assert (pool.slots["card-1"]["open"], pool.slots["card-1"]["day_count"]) == ({}, 2_000)


def test_a_slot_write_lost_in_a_crash_is_repaired_when_the_request_comes_again() -> None:
    pool = Pool(config())
    req = request(150_000)
    step = pool.request(req)
    # The crash: the placement reached the changelog, the card's slot did not.
    pool.placements[str(req.uid)] = json.loads(json.dumps(step.placement))
    again = pool.request(req, now_ms=T0 + 5_000)
    assert again.placement is None
    assert again.slots == step.slots
    assert [o.encode() for o in again.outputs] == [o.encode() for o in step.outputs]
    pool.keep(req.uid, again)
    assert isinstance(pool.ask(request(150_000)).message, w.DeclineOrder)  # the amount is taken


def test_a_release_lost_half_way_is_finished_when_it_comes_again() -> None:
    pool = Pool(config())
    req = request(150_000)
    pool.ask(req)
    step = pool.release(release(req))
    pool.placements[str(req.uid)] = json.loads(json.dumps(step.placement))  # slot write lost
    assert str(req.uid) in pool.slots["card-1"]["open"]
    again = pool.release(release(req), now_ms=T0 + 5_000)
    assert again.placement is None
    assert again.slots == step.slots
    pool.keep(req.uid, again)
    assert pool.release(release(req)) == PoolStep(None, {}, [])  # and only once
    slot = pool.slots["card-1"]
    assert (slot["open"], slot["day_minor"], slot["day_count"]) == ({}, 150_000, 1)


def test_a_repair_after_midnight_does_not_count_in_the_new_day() -> None:
    pool = Pool(config())
    first, second = request(150_000), request(120_000)
    pool.ask(first)
    pool.ask(second)
    step = pool.release(release(first))
    pool.placements[str(first.uid)] = json.loads(json.dumps(step.placement))  # slot write lost
    pool.free(release(second), now_ms=T0 + DAY_MS)  # a new day starts on the card
    pool.keep(first.uid, pool.release(release(first), now_ms=T0 + DAY_MS))
    slot = pool.slots["card-1"]
    assert (slot["open"], slot["day_minor"], slot["day_count"]) == ({}, 120_000, 1)
    assert (slot["month_minor"], slot["month_count"]) == (270_000, 2)  # T0 is mid-month
