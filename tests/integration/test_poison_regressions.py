"""Issue 15's incident, pinned one explicit case at a time (the pipeline fuzz,
tests/integration/test_fuzz_pipeline.py, found the same class and more).

The incident: a signed partner create whose ``partner_order_id`` held a NUL was answered
``201``; PostgreSQL refused the record (``22P05``), the projector halted on it, and from then
on every new order answered ``404``, the operator queue stayed empty and reads went stale.
Now the edge refuses it, and the platform goes on: after the refusal a normal order still
goes create -> payer -> operator queue -> approved, readable through the partner API, the
projector never stops and reconciliation stays clean.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.fuzz_pipeline import halted_parts, running_parts
from tests.fixtures.system import CURRENCY, System, refusal, uid_of

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
POISON = "a\u0000b"


def create_body(partner_order_id: str, amount_minor: int) -> bytes:
    """``json.dumps`` writes the NUL as the escape ``\\u0000``, as the incident's client did."""
    document = {
        "direction": "deposit",
        "amount_minor": amount_minor,
        "currency": CURRENCY,
        "partner_order_id": partner_order_id,
    }
    return json.dumps(document).encode()


@pytest.fixture
async def whole(system: System) -> AsyncIterator[System]:
    """The system; afterwards the projector still runs and reconciliation is clean."""
    parts = running_parts()
    assert parts, "the system fixture's projector task was not found"
    yield system
    assert halted_parts(system, parts) == []
    assert await system.mismatches() == []


async def normal_order_flows(s: System, amount_minor: int) -> str:
    """create -> payer view -> confirm -> operator queue -> approve -> partner read."""
    made = await s.partner.post(
        "/v1/orders", content=create_body(f"po-{uuid.uuid4()}", amount_minor), headers=JSON
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "new"
    uid: str = made.json()["uid"]
    await s.row(uid, "new")
    payer = await s.api.get(f"/v1/pay/{uid}")
    assert payer.status_code == 200, payer.text

    confirmed = await s.api.post(f"/v1/pay/{uid}/confirm", json={})
    assert confirmed.status_code == 200, confirmed.text
    await s.row(uid, "processing")
    queue = await s.api.get("/v1/operator/queue", headers=await s.login("olga"))
    assert queue.status_code == 200, queue.text
    assert uid in [item["uid"] for item in queue.json()["items"]]

    decided = await s.decide("olga", uid, "approve")
    assert decided.status_code == 200, decided.text
    await s.row(uid, "approved")
    read = await s.partner.get(f"/v1/orders/{uid}")
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "approved"
    return uid


async def test_a_nul_in_partner_order_id_is_refused_then_orders_still_flow(whole: System) -> None:
    s = whole

    answer = await s.partner.post("/v1/orders", content=create_body(POISON, 10_000), headers=JSON)

    error = refusal(answer, 422, "invalid_text")
    assert [detail["field"] for detail in error["details"]] == ["partner_order_id"]
    uid = await normal_order_flows(s, 10_001)
    # The refused create left nothing behind, now that a later order has been projected.
    poisoned = uid_of(s, POISON)
    assert s.sql("SELECT 1 FROM orders WHERE uid = :u", u=poisoned) == []
    assert (await s.partner.get(f"/v1/orders/{poisoned}")).status_code == 404
    assert s.sql("SELECT status FROM orders WHERE uid = :u", u=uid)[0].status == "approved"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(create_body("\u0000", 10_000), 422, "invalid_text", id="only-nul"),
        pytest.param(create_body("po-\u0000", 10_000), 422, "invalid_text", id="trailing-nul"),
        pytest.param(
            create_body("po-X", 10_000).replace(b"po-X", b"po-\x00"),
            400,
            "malformed_json",
            id="raw-nul-byte",  # a raw control byte inside a JSON string is no JSON at all
        ),
    ],
)
async def test_every_spelling_of_a_nul_is_refused(
    whole: System, body: bytes, status: int, code: str
) -> None:
    s = whole
    [(before,)] = s.sql("SELECT COUNT(*) FROM orders")

    answer = await s.partner.post("/v1/orders", content=body, headers=JSON)

    refusal(answer, status, code)
    await normal_order_flows(s, 10_002)
    [(after,)] = s.sql("SELECT COUNT(*) FROM orders")
    assert after == before + 1  # only the normal order


async def test_a_nul_in_a_decision_reason_is_refused_and_the_order_is_still_decided(
    whole: System,
) -> None:
    """The fuzz's second find: a decision whose reason held a NUL was approved by the agent,
    then the audit write failed (a ``500``) and the decision event halted the projector."""
    s = whole
    made = await s.partner.post(
        "/v1/orders", content=create_body(f"po-{uuid.uuid4()}", 10_003), headers=JSON
    )
    assert made.status_code == 201, made.text
    uid = made.json()["uid"]
    await s.row(uid, "new")
    assert (await s.api.post(f"/v1/pay/{uid}/confirm", json={})).status_code == 200
    await s.row(uid, "processing")
    headers = {**await s.login("olga"), **JSON}
    poisoned = json.dumps({"verdict": "approve", "reason": POISON}).encode()

    answer = await s.api.post(
        f"/v1/operator/orders/{uid}/decision", content=poisoned, headers=headers
    )

    error = refusal(answer, 422, "invalid_text")
    assert [detail["field"] for detail in error["details"]] == ["reason"]
    [row] = s.sql("SELECT status, decided_by FROM orders WHERE uid = :u", u=uid)
    assert (row.status, row.decided_by) == ("processing", None)
    decided = await s.decide("olga", uid, "approve")
    assert decided.status_code == 200, decided.text
    await s.row(uid, "approved")
    await normal_order_flows(s, 10_004)
