"""The Faust wiring without a broker: each agent driven through ``agent.test_context()``.

Sends are captured by replacing :meth:`Bus.send` and :meth:`Bus.dead_letter`, so what the
tests see is exactly what the app would publish, and no producer is ever started.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import faust
import pytest

from domain.cards import CardStatus
from schemas import cards as wc
from schemas import orders as w
from schemas.registry import encode
from stream_agents.bus import Bus
from stream_agents.wire import Out
from tests.unit.agents.builders import capture_sends, faust_app, open_order


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Out]:
    return capture_sends(monkeypatch)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[faust.App]:
    yield from faust_app(tmp_path)


async def test_open_is_stored_and_published(app: faust.App, sent: list[Out]) -> None:
    uid = uuid.uuid4()
    message = open_order(uid=uid, desk="pool:pool-1")
    async with app.agents["desk"].test_context() as agent:
        await agent.put(key=b"pool:pool-1", value=encode(message))
    desk: Any = app.tables["desk"]
    entry = desk[f"order/{uid}"]
    assert entry["status"] == "declined"  # the pool has no cards
    assert entry["decline_reason"] == "no_requisite"
    assert [out.message.TYPE for out in sent] == ["order.declined"]


async def test_undecodable_and_unexpected_messages_go_to_dead_letters(
    app: faust.App, sent: list[Out], monkeypatch: pytest.MonkeyPatch
) -> None:
    parked: list[tuple[str, bytes | None, str]] = []

    async def dead_letter(self: Bus, source: str, raw: bytes | None, reason: str) -> None:
        parked.append((source, raw, reason))

    monkeypatch.setattr(Bus, "dead_letter", dead_letter)
    not_a_command = encode(
        wc.RequestCard(pool_id="pool-1", uid=uuid.uuid4(), amount_minor=100, currency="RUB")
    )
    async with app.agents["desk"].test_context() as agent:
        await agent.put(key=b"k", value=b"{not json")
        await agent.put(key=b"k", value=not_a_command)
    assert [(source, reason.split(":")[0]) for source, _, reason in parked] == [
        ("order-commands", "undecodable"),
        ("order-commands", "unexpected type card.request"),
    ]
    assert sent == []


async def test_the_desk_opens_a_deposit_on_a_configured_card_in_one_step(
    app: faust.App, sent: list[Out]
) -> None:
    config = wc.CardConfigured(
        card_id="card-1",
        pool_id="pool-1",
        pan_masked="220220******1234",
        currency="RUB",
        status=CardStatus.ACTIVE,
        expires_on=date(2099, 12, 31),
        daily_limit_minor=10**9,
        monthly_limit_minor=10**10,
        daily_count_limit=100,
        monthly_count_limit=1000,
        min_order_minor=100,
        max_order_minor=10**8,
        version=1,
    )
    uid = uuid.uuid4()
    opening = open_order(uid=uid, amount_minor=5_000, desk="pool:pool-1")
    async with app.agents["card-config"].test_context() as feeder:
        await feeder.put(key=b"card-1", value=encode(config))
    async with app.agents["desk"].test_context() as desk_agent:
        await desk_agent.put(key=b"pool:pool-1", value=encode(opening))
    [created] = [out.message for out in sent]  # no order.opened: superseded in the step
    assert isinstance(created, w.OrderCreated)
    assert (created.order.uid, created.order.card_id, created.order.version) == (uid, "card-1", 2)
    assert created.order.desk == "pool:pool-1"
    desk: Any = app.tables["desk"]
    assert desk[f"placement/{uid}"]["card_id"] == "card-1"
    assert desk["card/pool-1/card-1"]["open"] == {str(uid): [5_000, sent[0].occurred_at_ms]}
    assert desk[f"order/{uid}"]["status"] == "new"
