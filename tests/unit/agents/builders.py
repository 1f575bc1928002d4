"""Builders for the agents' unit tests: wire commands in envelopes, a driver for the order
agent's pure handler that keeps the table entry between commands as the Faust agent does, and
the Faust app without a broker for ``agent.test_context()``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest

from domain.orders import Direction
from schemas import orders as w
from schemas.envelope import Envelope, Message
from schemas.registry import envelope
from schemas.translation import OrderCommand, epoch_ms, from_epoch_ms
from stream_agents.app import create_app
from stream_agents.bus import Bus
from stream_agents.desk.orders import Step, handle
from stream_agents.desk.outputs import OrderEntry
from stream_agents.settings import AgentSettings
from stream_agents.wire import Out

T0 = 1_764_300_000_000  # 2025-11-28T03:20:00Z
UID = uuid.UUID("3f2b8c1e-8d4a-8c7e-9a1b-2c3d4e5f6a7b")
CARD_MASKED = "220220******1234"
PAYER_CARD = "411111******1111"


def env(message: Message, at_ms: int = T0, message_id: uuid.UUID | None = None) -> Envelope:
    return envelope(
        message, message_id=message_id or uuid.uuid4(), occurred_at=from_epoch_ms(at_ms)
    )


def open_order(direction: Direction = Direction.DEPOSIT, **overrides: Any) -> w.OpenOrder:
    fields: dict[str, Any] = {
        "uid": UID,
        "partner_id": "acme",
        "partner_order_id": "inv-1001",
        "direction": direction,
        "amount_minor": 150_000,
        "currency": "RUB",
        "ttl_s": 900,
        "fee_bp": 200,
        "pool_id": "pool-1" if direction is Direction.DEPOSIT else None,
        "callback_url": "https://partner.example/cb",
    }
    return w.OpenOrder(**(fields | overrides))


def assign(card_id: str = "card-1", card_masked: str = CARD_MASKED) -> w.AssignCard:
    return w.AssignCard(uid=UID, card_id=card_id, card_masked=card_masked)


def decide(verdict: w.Verdict, operator: str = "olga") -> w.DecideOrder:
    return w.DecideOrder(uid=UID, verdict=verdict, operator=operator, decision_id=uuid.uuid4())


def types(outputs: list[Out]) -> list[tuple[str, str]]:
    return [(out.topic, out.message.TYPE) for out in outputs]


def of_type(outputs: list[Out], message_type: type[Message]) -> list[Any]:
    return [out.message for out in outputs if isinstance(out.message, message_type)]


class OrderDriver:
    """Feeds commands to :func:`handle`, storing the entry as JSON like the table does."""

    def __init__(self) -> None:
        self.stored: dict[str, Any] | None = None
        self.steps: list[Step] = []

    @property
    def entry(self) -> OrderEntry | None:
        return OrderEntry.from_json(self.stored) if self.stored else None

    def send(self, message: OrderCommand, at_ms: int = T0, **kwargs: Any) -> Step:
        return self.deliver(env(message, at_ms, **kwargs), message)

    def deliver(self, envelope_: Envelope, message: OrderCommand) -> Step:
        step = handle(self.entry, epoch_ms(envelope_.occurred_at), message)
        if step.changed and step.entry is not None:
            self.stored = json.loads(json.dumps(step.entry.to_json()))
        self.steps.append(step)
        return step


def capture_sends(monkeypatch: pytest.MonkeyPatch) -> list[Out]:
    """Replace :meth:`Bus.send` for one test: what the app would publish lands in the list
    returned, and no producer is ever started."""
    captured: list[Out] = []

    async def send(self: Bus, outputs: list[Out]) -> list[Any]:
        captured.extend(outputs)
        return []  # no broker, so no acknowledgements to wait for

    monkeypatch.setattr(Bus, "send", send)
    return captured


def faust_app(tmp_path: Path) -> Iterator[faust.App]:
    """The agents' app for ``agent.test_context()``: memory stores, no web server (a fixture
    body: ``yield from faust_app(tmp_path)``)."""
    app = create_app(AgentSettings(app_id="unit", datadir=tmp_path, web_enabled=False))
    yield app
    # A table write asks the (never started) consumer for partition counts; creating it
    # made a thread event loop that nothing else closes.
    consumer: Any = app._consumer
    if consumer is not None:
        consumer._thread.thread_loop.close()
