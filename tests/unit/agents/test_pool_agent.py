"""The pool agent's protocol through its pure handlers: choosing, repeating, releasing."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

from domain.cards import CardStatus
from domain.orders import DeclineReason
from schemas import cards as wc
from schemas import orders as w
from stream_agents.pool_agent import State, card_from_config, handle_release, handle_request
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
    """Keeps the pool entry between messages, through JSON, as the table does."""

    def __init__(self, *configs: dict[str, Any]) -> None:
        self.configs = list(configs)
        self.state: State | None = None

    def _keep(self, state: State | None) -> None:
        if state is not None:
            self.state = json.loads(json.dumps(state))

    def ask(self, req: wc.RequestCard, now_ms: int = T0) -> Out:
        state, outputs = handle_request(self.state, req, self.configs, now_ms)
        self._keep(state)
        [answer] = outputs
        return answer

    def free(self, rel: wc.ReleaseCard, now_ms: int = T0) -> bool:
        state, outputs = handle_release(self.state, rel, now_ms)
        assert outputs == []
        self._keep(state)
        return state is not None


def test_a_request_gets_a_card_and_a_repeat_gets_the_same_answer() -> None:
    pool = Pool(config())
    req = request()
    first = pool.ask(req)
    assert isinstance(first.message, w.AssignCard)
    assert (first.message.card_id, first.message.card_masked) == ("card-1", CARD_MASKED)
    assert first.topic == "order-commands"
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
    assert pool.state is not None
    slot = pool.state["cards"]["card-1"]
    assert (slot["open"], slot["day_minor"], slot["day_count"]) == ({}, 150_000, 1)
    # The same amount is possible again; one more order reaches the daily count limit.
    assert isinstance(pool.ask(request(150_000)).message, w.AssignCard)
    assert isinstance(pool.ask(request(100_000)).message, w.DeclineOrder)


def test_a_rejected_order_frees_the_card_without_turnover() -> None:
    pool = Pool(config())
    req = request()
    pool.ask(req)
    pool.free(release(req, approved=False))
    assert pool.state is not None
    assert "day_minor" not in pool.state["cards"]["card-1"]


def test_a_request_after_release_does_not_reopen_the_order() -> None:
    pool = Pool(config())
    req = request()
    pool.ask(req)
    pool.free(release(req))
    state, outputs = handle_request(pool.state, req, pool.configs, T0)
    assert (state, outputs) == (None, [])


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
