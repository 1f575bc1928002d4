"""The order pipeline as its users meet it, end to end on the real broker and database:
a partner's signed requests, the payer's confirmation, operators' decisions, balances, and
the invariants of DESIGN.md section 5 checked after every scenario."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from db.crypto import mask_pan
from tests.fixtures.system import (
    CARD_PANS,
    CURRENCY,
    DEPOSIT_FEE_BP,
    PARTNER,
    PAYER_PAN,
    WITHDRAWAL_FEE_BP,
    System,
)

pytestmark = pytest.mark.integration


def fee(amount: int, bp: int) -> int:
    return (amount * bp + 5000) // 10000


@pytest.fixture
async def sys_(system: System) -> AsyncIterator[System]:
    """The system, and after each scenario: every invariant still holds."""
    yield system
    assert await system.mismatches() == []


async def create(s: System, direction: str, amount: int, **extra: Any) -> dict[str, Any]:
    body = {
        "direction": direction,
        "amount_minor": amount,
        "currency": CURRENCY,
        "partner_order_id": extra.pop("partner_order_id", f"po-{uuid.uuid4()}"),
        **extra,
    }
    answer = await s.partner.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def confirm(s: System, uid: str, card: str | None = None) -> dict[str, Any]:
    await s.row(uid, "new")
    body = {"card_number": card} if card else {}
    answer = await s.api.post(f"/v1/pay/{uid}/confirm", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def balance(s: System) -> dict[str, int]:
    answer = await s.partner.get("/v1/balance")
    assert answer.status_code == 200, answer.text
    found = [b for b in answer.json()["balances"] if b["currency"] == CURRENCY]
    if not found:
        return {"available_minor": 0, "held_minor": 0}
    return {k: found[0][k] for k in ("available_minor", "held_minor")}


async def balance_becomes(s: System, available: int, held: int) -> None:
    async def probe() -> bool:
        return await balance(s) == {"available_minor": available, "held_minor": held}

    await s.eventually(probe, f"balance available={available} held={held}")


async def funded(s: System, amount: int) -> int:
    """Approve a deposit of ``amount``; the partner's available balance after it."""
    order = await create(s, "deposit", amount)
    await confirm(s, order["uid"])
    assert (await s.decide("olga", order["uid"], "approve")).status_code == 200
    credit = amount - fee(amount, DEPOSIT_FEE_BP)
    await balance_becomes(s, credit, 0)
    return credit


async def test_deposit_from_create_to_credited_balance(sys_: System):
    s = sys_
    amount = 150_000

    order = await create(s, "deposit", amount)

    assert order["status"] == "new"
    assert order["fee_minor"] == fee(amount, DEPOSIT_FEE_BP) == 3750
    assert order["card"]["number"] in CARD_PANS
    assert order["payment_url"] == f"http://api/pay/{order['uid']}"

    confirmed = await confirm(s, order["uid"])
    assert confirmed["status"] == "processing"
    queued = await s.row(order["uid"], "processing")
    assert queued.card_id is not None
    queue = await s.api.get("/v1/operator/queue", headers=await s.login("olga"))
    assert queue.status_code == 200, queue.text
    [item] = [i for i in queue.json()["items"] if i["uid"] == order["uid"]]
    assert item["amount_minor"] == amount
    assert item["card_masked"] == mask_pan(order["card"]["number"])
    assert item["partner_id"] == PARTNER
    assert item["waited_s"] >= 0

    decided = await s.decide("olga", order["uid"], "approve")
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert decided.json()["decided_by"] == "olga"
    [audited] = s.sql(
        "SELECT actor, before, after FROM audit_log WHERE action = 'order.decide' "
        "AND entity_id = :uid",
        uid=order["uid"],
    )
    assert audited.actor == "olga"
    assert audited.before == {"status": "processing"}
    assert audited.after["status"] == "approved"

    await balance_becomes(s, amount - 3750, 0)
    after = await s.api.get("/v1/operator/queue", headers=await s.login("olga"))
    assert order["uid"] not in [i["uid"] for i in after.json()["items"]]
    await s.eventually(
        lambda: s.sql("SELECT 1 FROM ledger_postings WHERE account = 'system:fees'"), "fee posted"
    )
    [(fees,)] = s.sql("SELECT SUM(amount_minor) FROM ledger_postings WHERE account = 'system:fees'")
    assert fees == 3750


async def test_withdrawal_holds_then_captures(sys_: System):
    s = sys_
    available = await funded(s, 1_000_000)
    amount = 200_000
    hold = amount + fee(amount, WITHDRAWAL_FEE_BP)

    order = await create(s, "withdrawal", amount)
    assert order["status"] == "new"
    await balance_becomes(s, available - hold, hold)

    confirmed = await confirm(s, order["uid"], card=PAYER_PAN)
    assert confirmed["payer_card_masked"] == "424242******4242"
    assert (await s.decide("ivan", order["uid"], "approve")).status_code == 200

    await balance_becomes(s, available - hold, 0)


async def test_withdrawal_rejected_releases_the_hold(sys_: System):
    s = sys_
    available = await funded(s, 500_000)

    order = await create(s, "withdrawal", 100_000)
    await confirm(s, order["uid"], card=PAYER_PAN)
    assert (await s.decide("olga", order["uid"], "reject")).status_code == 200

    await balance_becomes(s, available, 0)


async def test_withdrawal_beyond_balance_is_declined_and_holds_nothing(sys_: System):
    s = sys_
    available = await funded(s, 100_000)

    order = await create(s, "withdrawal", available)  # plus the fee: more than available

    assert order["status"] == "declined"
    assert order["decline_reason"] == "insufficient_funds"
    await s.row(order["uid"], "declined")
    assert await balance(s) == {"available_minor": available, "held_minor": 0}


async def test_no_eligible_card_declines_no_requisite(sys_: System):
    order = await create(sys_, "deposit", 10**8 + 1)  # above every card's per-order maximum

    assert order["status"] == "declined"
    assert order["decline_reason"] == "no_requisite"


async def test_same_amount_never_shares_a_card(sys_: System):
    s = sys_
    orders = [await create(s, "deposit", 77_700) for _ in range(3)]

    cards = [o["card"]["number"] for o in orders[:2]]
    assert sorted(cards) == sorted(CARD_PANS)  # two cards, two open orders of one amount
    assert orders[2]["status"] == "declined"
    assert orders[2]["decline_reason"] == "no_requisite"


async def test_repeated_and_concurrent_creates_make_one_order(sys_: System):
    s = sys_
    body = {"direction": "deposit", "amount_minor": 5_000, "currency": CURRENCY}
    body["partner_order_id"] = "inv-same"

    answers = await asyncio.gather(*(s.partner.post("/v1/orders", json=body) for _ in range(5)))

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["uid"] for a in answers}) == 1
    uid = answers[0].json()["uid"]
    await s.row(uid, "new")
    opened = s.sql(
        "SELECT COUNT(*) FROM order_events WHERE order_uid = :u AND type = 'order.created'", u=uid
    )
    assert opened == [(1,)]

    changed = await s.partner.post("/v1/orders", json={**body, "amount_minor": 5_001})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "order_conflict"
    [(amount,)] = s.sql("SELECT amount_minor FROM orders WHERE uid = :u", u=uid)
    assert amount == 5_000


async def test_concurrent_decisions_one_wins(sys_: System):
    s = sys_
    order = await create(s, "deposit", 12_300)
    await confirm(s, order["uid"])

    olga, ivan = await asyncio.gather(
        s.decide("olga", order["uid"], "approve"), s.decide("ivan", order["uid"], "reject")
    )

    assert sorted([olga.status_code, ivan.status_code]) == [200, 409]
    winner, loser = (olga, ivan) if olga.status_code == 200 else (ivan, olga)
    assert loser.json()["error"]["code"] == "illegal_transition"
    assert f"decided by {winner.json()['decided_by']}" in loser.json()["error"]["message"]
    final = await s.row(order["uid"], winner.json()["status"])
    assert final.decided_by == winner.json()["decided_by"]


async def test_illegal_transitions_are_refused(sys_: System):
    s = sys_
    order = await create(s, "deposit", 4_400)
    await s.row(order["uid"], "new")

    early = await s.decide("olga", order["uid"], "approve")  # not awaiting a decision yet
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "illegal_transition"

    await confirm(s, order["uid"])
    cancel = await s.partner.post(f"/v1/orders/{order['uid']}/cancel")
    assert cancel.status_code == 409

    await s.decide("olga", order["uid"], "fail")
    again = await s.api.post(f"/v1/pay/{order['uid']}/confirm", json={})
    assert again.status_code == 409
    await s.row(order["uid"], "failed")


async def test_partner_cancels_a_new_order(sys_: System):
    s = sys_
    order = await create(s, "deposit", 9_900)
    await s.row(order["uid"], "new")

    cancelled = await s.partner.post(f"/v1/orders/{order['uid']}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    await s.row(order["uid"], "cancelled")


async def test_another_partners_order_is_invisible(sys_: System):
    s = sys_
    order = await create(s, "deposit", 3_300)
    await s.row(order["uid"], "new")

    read = await s.rival.get(f"/v1/orders/{order['uid']}")
    cancel = await s.rival.post(f"/v1/orders/{order['uid']}/cancel")
    mine = await s.partner.get(f"/v1/orders/{order['uid']}")

    assert read.status_code == cancel.status_code == 404
    assert read.json()["error"]["code"] == "order_not_found"
    assert mine.status_code == 200
    await s.row(order["uid"], "new")  # the rival's cancel changed nothing


async def test_orders_list_is_paginated_and_filtered(sys_: System):
    s = sys_
    made = [await create(s, "deposit", 1_000 + i) for i in range(3)]
    for order in made:
        await s.row(order["uid"], "new")

    first = await s.partner.get("/v1/orders", params={"limit": 2, "status": "new"})
    assert first.status_code == 200, first.text
    page = first.json()
    rest = await s.partner.get("/v1/orders", params={"limit": 2, "after": page["next_after"]})

    listed = [o["uid"] for o in page["items"]] + [o["uid"] for o in rest.json()["items"]]
    assert listed == [o["uid"] for o in reversed(made)]
    assert (await s.rival.get("/v1/orders")).json()["items"] == []


async def test_unconfirmed_orders_expire_and_release_their_hold(sys_: System):
    """The shortest TTL the API takes is a minute, so this scenario waits for one."""
    s = sys_
    available = await funded(s, 1_000_000)
    amount = 100_000
    hold = amount + fee(amount, WITHDRAWAL_FEE_BP)
    withdrawal = await create(s, "withdrawal", amount, ttl_s=60)
    deposit = await create(s, "deposit", 40_000, ttl_s=60)
    await balance_becomes(s, available - hold, hold)

    for order in (withdrawal, deposit):
        expired = await s.eventually(
            lambda uid=order["uid"]: s.sql(
                "SELECT decline_reason FROM orders WHERE uid = :uid AND status = 'expired'",
                uid=uid,
            ),
            f"order {order['uid']} expired",
            timeout_s=120,
        )
        assert expired
    await balance_becomes(s, available, 0)

    late = await s.api.post(f"/v1/pay/{deposit['uid']}/confirm", json={})
    assert late.status_code == 409, late.text
    assert (await s.partner.get(f"/v1/orders/{withdrawal['uid']}")).json()["status"] == "expired"
    # The deposit's card and amount are free again.
    again = await create(s, "deposit", 40_000)
    assert again["status"] == "new"
