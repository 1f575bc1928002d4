"""Screenshots of every payment form state, in English and Russian, from real orders.

Walks real orders through the whole system (as ``tests/e2e/test_payment_form.py`` does) and
at each state loads the form in both languages on a phone-sized headless Chromium, writing
``docs/screens/pay-<state>-<lang>.png``. The expired order lives the minimum 60 s, so a run
takes a little over a minute.

    .venv/bin/python bench/payform_screens.py [--out docs/screens]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import REPO_ROOT, run

OUT_ENV = "KEEPER_SCREENS_OUT"
LANGS = ("en", "ru")
STATES = (
    "deposit-new",
    "withdrawal-new",
    "waiting",
    "approved",
    "rejected",
    "failed",
    "expired",
    "not-found",
)


async def _create(s: Any, direction: str, amount: int, **extra: Any) -> str:
    body = {
        "direction": direction,
        "amount_minor": amount,
        "currency": "RUB",
        "partner_order_id": f"screens-{uuid.uuid4()}",
        **extra,
    }
    answer = await s.partner.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    uid: str = answer.json()["uid"]
    await s.row(uid, "new")
    return uid


async def _confirm(s: Any, uid: str, card: str | None = None) -> None:
    answer = await s.api.post(f"/v1/pay/{uid}/confirm", json={"card_number": card} if card else {})
    assert answer.status_code == 200, answer.text


async def _decide(s: Any, uid: str, verdict: str, status: str) -> None:
    answer = await s.decide("olga", uid, verdict)
    assert answer.status_code == 200, answer.text
    await s.row(uid, status)


async def bench_screens(live_api: Any, browser: Any) -> None:
    from tests.fixtures.browser import PHONE
    from tests.fixtures.system import PAYER_PAN

    out = Path(os.environ.get(OUT_ENV, str(REPO_ROOT / "docs" / "screens")))
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    s = live_api.system
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = await context.new_page()

    async def snap(uid: str, state: str, typed_card: str | None = None) -> None:
        for lang in LANGS:
            await page.goto(live_api.pay_url(uid, lang))
            await page.wait_for_selector(f"#pay[data-screen='{state}']")
            if typed_card:
                await page.click("#card-input")
                await page.keyboard.type(typed_card)
                await page.locator("#card-input").blur()
            await page.screenshot(path=str(out / f"pay-{state}-{lang}.png"), full_page=True)
            print(f"wrote pay-{state}-{lang}.png")

    expiring = await _create(s, "deposit", 33_300, ttl_s=60)  # expires while the rest runs

    deposit = await _create(s, "deposit", 150_000)
    await snap(deposit, "deposit-new")
    await _confirm(s, deposit)
    await s.row(deposit, "processing")
    await snap(deposit, "waiting")
    await _decide(s, deposit, "approve", "approved")
    await snap(deposit, "approved")

    withdrawal = await _create(s, "withdrawal", 50_000)
    await snap(withdrawal, "withdrawal-new", typed_card=PAYER_PAN)
    await _confirm(s, withdrawal, PAYER_PAN)
    await _decide(s, withdrawal, "reject", "rejected")
    await snap(withdrawal, "rejected")

    failing = await _create(s, "deposit", 77_700)
    await _confirm(s, failing)
    await _decide(s, failing, "fail", "failed")
    await snap(failing, "failed")

    await snap(str(uuid.uuid4()), "not-found")

    await s.eventually(
        lambda: s.sql("SELECT 1 FROM orders WHERE uid = :u AND status = 'expired'", u=expiring),
        "the short-lived order to expire",
        timeout_s=120,
    )
    await snap(expiring, "expired")
    await context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "screens"))
    args = parser.parse_args()
    return run(__file__, {OUT_ENV: args.out})


if __name__ == "__main__":
    raise SystemExit(main())
