"""A payer who paid too late, in headless Chromium: under a rejected deposit the form offers
a dispute, refuses a missing or fake receipt in the payer's words, sends a real one, and
shows the dispute's state and, once an operator rejects it, the reason."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_payment_form import create, payer_for  # noqa: F401 - the fixture
from tests.fixtures.browser import LiveApi
from tests.integration.test_disputes import HTML, PNG

pytestmark = pytest.mark.e2e


async def test_a_payer_disputes_a_rejected_deposit_with_a_receipt(
    live_api: LiveApi,
    payer_for: Any,  # noqa: F811 - the fixture imported above
) -> None:
    s = live_api.system
    order = await create(s, "deposit", 93_000)
    uid = order["uid"]
    payer = await payer_for(uid)
    await payer.shows("deposit-new")
    assert await payer.page.locator("#dispute").is_hidden()  # nothing to dispute yet
    await payer.page.click("#paid")
    await payer.shows("waiting")
    await s.row(uid, "processing")
    assert (await s.decide("olga", uid, "reject")).status_code == 200

    await payer.shows("rejected")  # pushed: the dispute is offered at once
    await payer.page.wait_for_selector("#dispute", state="visible")
    assert await payer.text("#h-dispute") == "Already paid?"
    await payer.page.click("#dispute-send")
    error = payer.page.locator("#dispute-form .error")
    assert (await error.inner_text()).strip() == "Choose the receipt file first."

    fake = {"name": "receipt.png", "mimeType": "image/png", "buffer": HTML}
    await payer.page.set_input_files("#receipt", files=[fake])
    await payer.page.click("#dispute-send")
    await payer.page.wait_for_selector("#dispute-form .error:has-text('PDF, PNG or JPEG')")
    assert s.sql("SELECT count(*) FROM disputes") == [(0,)]

    real = {"name": "receipt.png", "mimeType": "image/png", "buffer": PNG}
    await payer.page.set_input_files("#receipt", files=[real])
    await payer.page.fill("#dispute-comment", "Paid from my bank at 14:02")
    await payer.page.click("#dispute-send")
    await payer.page.wait_for_selector("[data-dispute='open']", state="visible")
    [(dispute_id, by, comment)] = s.sql(
        "SELECT id, opened_by, comment FROM disputes WHERE order_uid = :u", u=uid
    )
    assert (by, comment) == ("payer", "Paid from my bank at 14:02")

    await payer.page.reload()  # the state survives a reload
    await payer.page.wait_for_selector("[data-dispute='open']", state="visible")
    assert await payer.page.locator("#dispute-form").is_hidden()

    headers = await s.login("olga")
    verdict = {"verdict": "reject", "reason": "No transfer of 930.00 reached the card"}
    settled = await s.api.post(
        f"/v1/operator/disputes/{dispute_id}/decision", json=verdict, headers=headers
    )
    assert settled.status_code == 200, settled.text
    await payer.page.reload()
    await payer.page.wait_for_selector("[data-dispute='rejected']", state="visible")
    assert await payer.text("#dispute-reason") == "No transfer of 930.00 reached the card"
