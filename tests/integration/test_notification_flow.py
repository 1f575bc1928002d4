# ruff: noqa: RUF003 - Cyrillic bank messages on purpose
"""The order pipeline with a simulated phone per card replaying the shipped bank messages
(issue 14's "done when"): three of four deposits are approved with no operator, the fourth
reaches the operator queue with the reason why, and every invariant still holds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ops_console import queries
from tests.fixtures.device import Phone, example
from tests.fixtures.system import CURRENCY, System
from tests.integration.test_notifications import outcomes, policy  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
async def phones(system: System, outcomes: None) -> AsyncIterator[dict[str, Phone]]:  # noqa: F811
    """An ``auto`` pool, and a phone on each of its cards."""
    policy(system, "auto")
    found = {card: Phone(system, f"phone-{n}", card) for n, card in enumerate(system.card_ids)}
    yield found
    for phone in found.values():
        await phone.aclose()
    assert await system.mismatches() == []


async def deposit(s: System, amount_minor: int) -> dict[str, Any]:
    body = {
        "direction": "deposit",
        "amount_minor": amount_minor,
        "currency": CURRENCY,
        "partner_order_id": f"po-{uuid.uuid4()}",
    }
    answer = await s.partner.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    row = await s.row(created["uid"], "new")
    return {"uid": created["uid"], "card_id": str(row.card_id)}


async def test_three_of_four_deposits_confirm_themselves_and_the_fourth_waits_with_a_reason(
    system: System, phones: dict[str, Phone]
) -> None:
    s = system
    # The shipped examples, replayed as the phones receive them; each deposit is of the amount
    # its payer transfers.
    paid = [
        example("sber-credit-ru", 235_050),  # "+2 350.50р", thousands with a space
        example("tbank-credit-ru", 1_200_000),  # "+12 000 ₽"
        example("alfa-credit-en", 150_000),  # "RUB 1500.00"
    ]
    orders = [await deposit(s, shown.amount_minor) for shown in paid]
    # The fourth payer sends 1 500 ₽ for an order of 1 499 ₽: the credit pays no order.
    short = await deposit(s, 149_900)
    for order, shown in zip(orders, paid, strict=True):
        await phones[order["card_id"]].replay(shown)
    confirmed = await s.api.post(f"/v1/pay/{short['uid']}/confirm", json={})
    assert confirmed.status_code == 200, confirmed.text
    stray = await phones[short["card_id"]].replay(example("tbank-credit-ru", 150_000))
    refused = await phones[short["card_id"]].replay(example("tbank-refused-ru"))
    assert refused["outcome"] == "ignored"  # a refused transfer is kept, matches nothing

    for order in orders:
        row = await s.row(order["uid"], "approved")
        assert row.decided_by.startswith("device:phone-")

    def unmatched() -> Any:
        found = s.sql("SELECT outcome, reason FROM notifications WHERE id = :id", id=stray["id"])
        return found[0] if found and found[0].outcome == "unmatched" else None

    assert (await s.eventually(unmatched, "the stray credit settled")).reason == "no_open_order"
    await s.row(short["uid"], "processing")
    waiting = queries.queue(s.engine)
    [row] = waiting[waiting["uid"] == short["uid"]].itertuples()
    assert row.unmatched_credit == "no_open_order"  # the operator sees why
    assert row.suggested_by is None

    [(by_device,)] = s.sql(
        "SELECT COUNT(*) FROM orders WHERE status = 'approved' AND decided_by LIKE 'device:%'"
    )
    assert by_device == 3
