"""The Disputes page with ``AppTest`` on the whole pipeline: a payer's dispute appears with
its deadline and receipt, an operator rejects one without a reason (refused) and accepts
another, whose late credit reaches the partner's balance; an analyst cannot open the page."""

from __future__ import annotations

import asyncio

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.console import Console, sign_in
from tests.fixtures.system import CURRENCY, DEPOSIT_FEE_BP, System
from tests.integration.test_disputes import PNG, rejected_deposit, upload

pytestmark = pytest.mark.integration


async def page(console: Console, username: str) -> AppTest:
    def open_() -> AppTest:
        at = sign_in(console.app(), username)
        return at.switch_page("views/disputes.py").run()

    at = await asyncio.to_thread(open_)
    assert not at.exception, at.exception
    return at


def text_of(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "success") for e in at.get(kind)]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


async def test_an_operator_settles_disputes_from_the_console(
    console_system: tuple[System, Console],
) -> None:
    s, console = console_system
    at = await page(console, "olga")
    assert "No dispute awaits a decision." in text_of(at)

    first, second = await rejected_deposit(s, 41_000), await rejected_deposit(s, 42_000)
    broken = b"\x89PNG\r\n\x1a\n" + bytes(64)  # a PNG by its first bytes only
    for uid, receipt in ((first, PNG), (second, broken)):
        answer = await s.api.post(f"/v1/pay/{uid}/dispute", **upload(receipt, comment="paid!"))
        assert answer.status_code == 201, answer.text
    # the second one is overdue: its deadline passed
    console.execute(
        "UPDATE disputes SET created_at = created_at - interval '2 days',"
        " deadline_at = now() - interval '1 hour' WHERE order_uid = :uid",
        uid=second,
    )
    await asyncio.to_thread(at.run)
    assert [m.value for m in at.metric] == ["2", "1"]
    assert any(":red-badge[overdue]" in m.value for m in at.markdown)
    [(overdue_id,)] = console.sql("SELECT id FROM disputes WHERE order_uid = :u", u=second)
    [(other_id,)] = console.sql("SELECT id FROM disputes WHERE order_uid = :u", u=first)
    assert at.button(key=f"open_dispute_{overdue_id}")  # the overdue one is listed first
    assert at.button[0].key == f"open_dispute_{overdue_id}"

    at.button(key=f"open_dispute_{other_id}").click()
    await asyncio.to_thread(at.run)
    assert "paid!" in [t.value for t in at.text]
    assert len(at.get("image")) == 1  # the receipt, shown to console users only
    reject = next(b for b in at.button if b.label == "Reject")
    reject.click()
    await asyncio.to_thread(at.run)
    assert "Say why the dispute is rejected" in text_of(at)
    assert console.sql("SELECT status FROM disputes WHERE id = :i", i=other_id) == [("open",)]

    accept = next(b for b in at.button if b.label == "Accept: credit the deposit")
    accept.click()
    await asyncio.to_thread(at.run)
    assert not at.exception, at.exception
    assert f"Dispute {other_id} accepted: the deposit is credited late." in text_of(at)
    credit = 41_000 - (41_000 * DEPOSIT_FEE_BP + 5000) // 10000

    def booked() -> bool:
        rows = console.sql(
            "SELECT available_minor FROM balance_snapshots WHERE currency = :c", c=CURRENCY
        )
        return rows == [(credit,)]

    await s.eventually(booked, "the late credit in the balance snapshot")
    assert await s.mismatches() == []

    at.button(key=f"open_dispute_{overdue_id}").click()  # a receipt no decoder can read
    await asyncio.to_thread(at.run)
    assert not at.exception, at.exception
    assert "cannot be shown as an image" in text_of(at)


async def test_an_analyst_may_not_open_the_disputes_page(
    console_system: tuple[System, Console],
) -> None:
    _, console = console_system
    at = await page(console, "ann")
    assert "may not open this page" in text_of(at)
