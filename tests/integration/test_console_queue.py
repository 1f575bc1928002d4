"""The operator queue with ``AppTest`` on the whole pipeline: a confirmed order appears, an
operator decides it through the API, and a second operator is told who was first.

The API app of ``system`` is served by uvicorn in the test's event loop, so every ``AppTest``
run happens on a worker thread (``asyncio.to_thread``) while the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ops_console.api_client import ApiCallError, KeeperApi
from tests.fixtures.console import Console, sign_in
from tests.fixtures.system import CURRENCY, PASSWORD, System

pytestmark = pytest.mark.integration


async def run(at: AppTest) -> AppTest:
    return await asyncio.to_thread(at.run)


async def signed_in(console: Console, username: str) -> AppTest:
    at = await asyncio.to_thread(sign_in, console.app(), username)
    assert not at.exception, at.exception
    return at


async def confirmed_order(s: System, amount: int = 15_000) -> dict[str, Any]:
    body = {
        "direction": "deposit",
        "amount_minor": amount,
        "currency": CURRENCY,
        "partner_order_id": f"po-{uuid.uuid4().hex[:8]}",
    }
    answer = await s.partner.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    order = answer.json()
    await s.row(order["uid"], "new")
    confirmed = await s.api.post(f"/v1/pay/{order['uid']}/confirm", json={})
    assert confirmed.status_code == 200, confirmed.text
    await s.row(order["uid"], "processing")
    return {**order, "partner_order_id": body["partner_order_id"]}


def shown(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "success") for e in at.get(kind)]
    parts += [m.value for m in at.markdown] + [t.value for t in at.toast]
    return "\n".join(str(p) for p in parts)


async def test_new_order_appears_and_is_approved(console_system: tuple[System, Console]):
    s, console = console_system
    at = await signed_in(console, "olga")
    assert "No order awaits a decision." in shown(at)

    order = await confirmed_order(s)
    await run(at)  # what the fragment's next tick does
    assert order["partner_order_id"] in shown(at)
    assert "1 new order(s) awaiting a decision" in [t.value for t in at.toast]
    assert any("data:audio/wav;base64," in h.proto.body for h in at.get("html")), "a chime"
    assert any(":red-badge[new]" in m.value for m in at.markdown)

    at.button(key=f"open_{order['uid']}").click()
    await run(at)
    assert "**History**" in shown(at)
    assert "411111******1111" in shown(at) or "555555******4444" in shown(at)
    approve = next(b for b in at.button if b.label == "Approve")
    approve.click()
    await run(at)
    assert not at.exception, at.exception
    assert f"Order {order['uid']} approved." in [m.value for m in at.success]
    [(status, decided_by)] = console.sql(
        "SELECT status, decided_by FROM orders WHERE uid = :u", u=order["uid"]
    )
    assert (status, decided_by) == ("approved", "olga")
    assert "No order awaits a decision." in shown(at)


async def test_reject_needs_a_reason(console_system: tuple[System, Console]):
    s, console = console_system
    order = await confirmed_order(s)
    at = await signed_in(console, "olga")
    at.button(key=f"open_{order['uid']}").click()
    await run(at)
    next(b for b in at.button if b.label == "Reject").click()
    await run(at)
    assert "Give a reason to reject or fail an order." in [e.value for e in at.error]
    [(status,)] = console.sql("SELECT status FROM orders WHERE uid = :u", u=order["uid"])
    assert status == "processing"


async def test_second_operator_is_told_who_decided_first(console_system: tuple[System, Console]):
    s, console = console_system
    order = await confirmed_order(s)
    olga = await signed_in(console, "olga")
    ivan = await signed_in(console, "ivan")
    for at in (olga, ivan):
        at.button(key=f"open_{order['uid']}").click()
        await run(at)

    next(b for b in olga.button if b.label == "Approve").click()
    await run(olga)
    assert f"Order {order['uid']} approved." in [m.value for m in olga.success]

    ivan.text_input(key=f"reason_queue_open_{order['uid']}").input("no money arrived")
    next(b for b in ivan.button if b.label == "Reject").click()
    await run(ivan)
    assert not ivan.exception, ivan.exception
    [warning] = [w.value for w in ivan.warning]
    assert "Another operator decided first" in warning
    assert "approved by olga at" in warning
    assert "Your decision was not recorded." in warning
    assert not [b for b in ivan.button if b.label in ("Approve", "Reject", "Mark failed")]
    [(status, decided_by)] = console.sql(
        "SELECT status, decided_by FROM orders WHERE uid = :u", u=order["uid"]
    )
    assert (status, decided_by) == ("approved", "olga")
    decisions = console.sql(
        "SELECT count(*) FROM order_events WHERE order_uid = :u"
        " AND type IN ('order.approved', 'order.rejected', 'order.failed')",
        u=order["uid"],
    )
    assert decisions == [(1,)]


async def test_the_api_refuses_an_analysts_decision(console_system: tuple[System, Console]):
    s, console = console_system
    order = await confirmed_order(s)
    api = KeeperApi(console.api_url)
    token = (await asyncio.to_thread(api.login, "ann", PASSWORD)).token
    with pytest.raises(ApiCallError) as refused:
        await asyncio.to_thread(api.decide, token, order["uid"], "approve", "")
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    at = await signed_in(console, "ann")
    assert "Operator queue" not in [t.value for t in at.title]
