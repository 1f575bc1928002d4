"""Disputes end to end on the real broker and database: the payer or the partner opens one on
a closed deposit with a receipt, an operator settles it, the late credit is booked once
through the desk, callbacks and audit follow, and every invariant still holds; bad uploads
and other partners' orders are refused with a precise code and store nothing."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fixtures.system import CURRENCY, DEPOSIT_FEE_BP, PARTNER, System, refusal

pytestmark = pytest.mark.integration


def png() -> bytes:
    """A real 40x20 PNG (a receipt's photo, in miniature)."""
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 220, 240)).save(out, format="PNG")
    return out.getvalue()


PNG = png()
PDF = b"%PDF-1.7\n" + bytes(64)
HTML = b"<!doctype html><script>alert(1)</script>"


@pytest.fixture
async def sys_(system: System) -> AsyncIterator[System]:
    yield system
    assert await system.mismatches() == []


def fee(amount: int) -> int:
    return (amount * DEPOSIT_FEE_BP + 5000) // 10000


async def rejected_deposit(s: System, amount: int) -> str:
    """A deposit the payer confirmed and an operator rejected: money may have moved."""
    body = {
        "direction": "deposit",
        "amount_minor": amount,
        "currency": CURRENCY,
        "partner_order_id": f"po-{uuid.uuid4()}",
    }
    answer = await s.partner.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    uid = str(answer.json()["uid"])
    await s.row(uid, "new")
    assert (await s.api.post(f"/v1/pay/{uid}/confirm", json={})).status_code == 200
    assert (await s.decide("olga", uid, "reject")).status_code == 200
    await s.row(uid, "rejected")
    return uid


def upload(data: bytes, name: str = "receipt.png", comment: str | None = None) -> dict[str, Any]:
    form: dict[str, Any] = {"files": {"receipt": (name, data, "image/png")}}
    if comment is not None:
        form["data"] = {"comment": comment}
    return form


async def settle(s: System, dispute_id: str, verdict: str, reason: str = "") -> httpx.Response:
    headers = await s.login("olga")
    return await s.api.post(
        f"/v1/operator/disputes/{dispute_id}/decision",
        json={"verdict": verdict, "reason": reason},
        headers=headers,
    )


async def available(s: System) -> int:
    answer = await s.partner.get("/v1/balance")
    found = [b for b in answer.json()["balances"] if b["currency"] == CURRENCY]
    return int(found[0]["available_minor"]) if found else 0


async def test_an_accepted_payer_dispute_credits_the_deposit_once(sys_: System) -> None:
    s, amount = sys_, 123_400
    uid = await rejected_deposit(s, amount)
    opened = await s.api.post(f"/v1/pay/{uid}/dispute", **upload(PNG, comment="paid at 14:02"))
    assert opened.status_code == 201, opened.text
    assert opened.json()["status"] == "open"
    [(dispute_id, by, receipt_type)] = s.sql(
        "SELECT d.id, d.opened_by, r.content_type FROM disputes d"
        " JOIN dispute_receipts r ON r.dispute_id = d.id WHERE d.order_uid = :uid",
        uid=uid,
    )
    assert (by, receipt_type) == ("payer", "image/png")

    accepted = await settle(s, str(dispute_id), "accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "dispute_id": str(dispute_id),
        "status": "accepted",
        "credit_sent": True,
    }

    async def credited() -> bool:
        return await available(s) == amount - fee(amount)

    await s.eventually(credited, "the late credit on the partner's balance")
    again = await settle(s, str(dispute_id), "accept")  # booked already: nothing is sent
    assert again.status_code == 200, again.text
    assert again.json()["credit_sent"] is False
    refusal(await settle(s, str(dispute_id), "reject", "changed my mind"), 409, "dispute_resolved")
    assert await s.mismatches() == []
    assert await available(s) == amount - fee(amount)
    legs = s.sql(
        "SELECT account, amount_minor, reference FROM ledger_postings"
        " WHERE order_uid = :uid ORDER BY account",
        uid=uid,
    )
    assert [(a, m) for a, m, _ in legs] == [
        ("external:settlement", -amount),
        (f"partner:{PARTNER}:available", amount - fee(amount)),
        ("system:fees", fee(amount)),
    ]
    assert {ref for _, _, ref in legs} == {f"dispute:{dispute_id}"}
    assert s.sql("SELECT status FROM orders WHERE uid = :uid", uid=uid)[0][0] == "rejected"
    events = s.sql(
        "SELECT event_type FROM callback_deliveries WHERE order_uid = :uid"
        " AND event_type LIKE 'dispute.%' ORDER BY event_type",
        uid=uid,
    )
    assert [e for (e,) in events] == ["dispute.opened", "dispute.resolved"]
    actions = s.sql(
        "SELECT action, actor FROM audit_log WHERE entity = 'dispute' AND entity_id = :id"
        " ORDER BY id",
        id=str(dispute_id),
    )
    assert actions == [
        ("dispute.open", "payer"),
        ("dispute.resolve", "olga"),
        ("dispute.settle_again", "olga"),
    ]


async def test_a_partner_dispute_rejected_with_a_reason_moves_no_money(sys_: System) -> None:
    s = sys_
    uid = await rejected_deposit(s, 55_500)
    before = await available(s)
    opened = await s.partner.post(f"/v1/orders/{uid}/disputes", **upload(PDF, "r.pdf"))
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert (dispute["status"], dispute["opened_by"]) == ("open", "partner")
    refusal(await settle(s, dispute["dispute_id"], "reject"), 422, "reason_required")
    rejected = await settle(s, dispute["dispute_id"], "reject", "no transfer in the statement")
    assert rejected.status_code == 200, rejected.text
    seen = await s.partner.get(f"/v1/disputes/{dispute['dispute_id']}")
    assert seen.status_code == 200, seen.text
    assert (seen.json()["status"], seen.json()["resolution_reason"]) == (
        "rejected",
        "no transfer in the statement",
    )
    payer = (await s.api.get(f"/v1/pay/{uid}/dispute")).json()
    assert (payer["status"], payer["resolution_reason"]) == (
        "rejected",
        "no transfer in the statement",
    )
    body = s.sql(
        "SELECT body FROM callback_deliveries WHERE order_uid = :uid"
        " AND event_type = 'dispute.resolved'",
        uid=uid,
    )[0][0]
    assert '"status":"rejected"' in body
    assert "olga" not in body  # operators stay unnamed
    refusal(await s.rival.get(f"/v1/disputes/{dispute['dispute_id']}"), 404, "dispute_not_found")
    assert await available(s) == before
    assert s.sql("SELECT count(*) FROM ledger_postings WHERE order_uid = :uid", uid=uid) == [(0,)]


async def test_bad_uploads_and_foreign_orders_are_refused_and_store_nothing(
    sys_: System,
) -> None:
    s = sys_
    uid = await rejected_deposit(s, 77_700)
    path = f"/v1/orders/{uid}/disputes"
    refusal(await s.partner.post(path, **upload(HTML, "receipt.png")), 415, "receipt_type")
    big = b"\x89PNG\r\n\x1a\n" + bytes(6 * 1024 * 1024)
    refusal(await s.partner.post(path, **upload(big)), 413, "receipt_too_large")
    refusal(await s.partner.post(path, json={"receipt": "x"}), 415, "unsupported_media_type")
    no_file = await s.partner.post(path, files={"comment": (None, "only words")})
    refusal(no_file, 422, "receipt_missing")
    refusal(await s.rival.post(path, **upload(PNG)), 404, "not_found")
    refusal(await s.partner.post(path, **upload(PNG, comment="a\x00b")), 422, "invalid_text")
    refusal(await s.partner.post(path, **upload(PNG, comment="x" * 1001)), 422, "text_too_long")
    assert s.sql("SELECT count(*) FROM disputes") == [(0,)]

    assert (await s.partner.post(path, **upload(PNG))).status_code == 201
    second = await s.api.post(f"/v1/pay/{uid}/dispute", **upload(PNG))
    refusal(second, 409, "dispute_exists")
    refusal(await s.api.get(f"/v1/pay/{uuid.uuid4()}/dispute"), 404, "dispute_not_found")
    assert s.sql("SELECT count(*) FROM disputes") == [(1,)]
    assert s.sql("SELECT count(*) FROM dispute_receipts") == [(1,)]


async def test_only_a_closed_deposit_can_be_disputed(sys_: System) -> None:
    s = sys_
    body = {
        "direction": "deposit",
        "amount_minor": 31_300,
        "currency": CURRENCY,
        "partner_order_id": f"po-{uuid.uuid4()}",
    }
    created = await s.partner.post("/v1/orders", json=body)
    uid = str(created.json()["uid"])
    await s.row(uid, "new")
    open_order = await s.api.post(f"/v1/pay/{uid}/dispute", **upload(PNG))
    refusal(open_order, 409, "order_not_disputable")
    refusal(await s.api.post(f"/v1/pay/{uuid.uuid4()}/dispute", **upload(PNG)), 404, "not_found")
    assert s.sql("SELECT count(*) FROM disputes") == [(0,)]
