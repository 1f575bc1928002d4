"""The operator console as an operator meets it: ``streamlit run`` in its own process,
headless Chromium, the whole pipeline behind the API.

An operator signs in, a payer confirms a fresh order, and the order appears in the queue
without a reload (the queue is a fragment that refreshes itself); the operator opens and
approves it, and the order is approved in PostgreSQL and on the payer's side.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from db.repositories import dead_letters, disputes
from domain.disputes import OpenedBy
from ops_console.nav import visible_keys
from ops_console.roles import page_title
from tests.fixtures.console import (
    Console,
    api_app,
    browser_sign_in,
    console_env,
    seed_history,
    serve_in_loop,
    streamlit_server,
)
from tests.fixtures.system import CURRENCY, PASSWORD, System
from tests.integration.test_disputes import PNG

pytestmark = pytest.mark.e2e

SHOWN_MS = 20_000
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
#: Counts ``<audio>`` elements with a data-URI chime as they are added to the page.
CHIME_WATCH = """() => {
    window.__chimes = 0;
    new MutationObserver((changes) => {
        for (const change of changes) for (const node of change.addedNodes) {
            const found = node.querySelectorAll ? node.querySelectorAll("audio") : [];
            for (const audio of found)
                if ((audio.getAttribute("src") || "").startsWith("data:audio/wav"))
                    window.__chimes++;
        }
    }).observe(document.body, {childList: true, subtree: true});
}"""


async def confirmed_order(s: System) -> dict[str, Any]:
    body = {
        "direction": "deposit",
        "amount_minor": 25_000,
        "currency": CURRENCY,
        "partner_order_id": f"web-{uuid.uuid4().hex[:8]}",
    }
    answer = await s.partner.post("/v1/orders", json=body)
    assert answer.status_code == 201, answer.text
    order = answer.json()
    await s.row(order["uid"], "new")
    confirmed = await s.api.post(f"/v1/pay/{order['uid']}/confirm", json={})
    assert confirmed.status_code == 200, confirmed.text
    return {**order, "partner_order_id": body["partner_order_id"]}


async def test_operator_approves_a_fresh_order_without_reloading(
    system: System, console_chromium: Any, tmp_path: Path
):
    s = system
    app = api_app(s)
    async with (
        serve_in_loop(app) as api_url,
        streamlit_server(console_env(s.database_url, api_url), tmp_path / "console.log") as url,
    ):
        page = await console_chromium.new_page(viewport={"width": 1400, "height": 900})
        navigations: list[str] = []
        await page.goto(url)
        await page.get_by_label("Username").fill("olga")
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("heading", name="Operator queue").wait_for(timeout=SHOWN_MS)
        await page.get_by_text("No order awaits a decision.").wait_for(timeout=SHOWN_MS)
        await page.evaluate("() => { window.__sameDocument = true; }")
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        await page.evaluate(CHIME_WATCH)

        order = await confirmed_order(s)
        await page.get_by_text(order["partner_order_id"], exact=False).wait_for(timeout=SHOWN_MS)
        assert await page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
        assert not [u for u in navigations if "/queue" not in u and u.rstrip("/") != url]
        await page.get_by_text(re.compile("new order")).first.wait_for(timeout=SHOWN_MS)
        assert await page.evaluate("() => window.__chimes") >= 1, "no chime played"
        SCREENS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENS / "console-queue-live.png"), full_page=True)

        await page.get_by_role("button", name="Open").click()
        await page.get_by_text("History").wait_for(timeout=SHOWN_MS)
        await page.get_by_label("Reason (required to reject or fail)").fill("money arrived")
        await page.get_by_role("button", name="Approve").click()
        await page.get_by_text(f"Order {order['uid']} approved.").wait_for(timeout=SHOWN_MS)

        row = await s.row(order["uid"], "approved")
        assert (row.decided_by, row.decision_reason) == ("olga", "money arrived")
        payer = await s.api.get(f"/v1/pay/{order['uid']}")
        assert payer.status_code == 200
        assert payer.json()["status"] == "approved"
        await page.get_by_text("No order awaits a decision.").wait_for(timeout=SHOWN_MS)


async def title(page: Any, text: str) -> None:
    await page.locator("h1").filter(has_text=text).first.wait_for(timeout=SHOWN_MS)


def dispute_one(console: Console, order_uid: uuid.UUID) -> None:
    """A payer's dispute, with a receipt, on the expired deposit ``order_uid``."""
    with console.sessions.begin() as session:
        disputes.open_dispute(
            session,
            order_uid=order_uid,
            opened_by=OpenedBy.PAYER,
            receipt=PNG,
            comment="I paid at 14:02 from my bank's app",
            now=datetime.now(UTC) - timedelta(hours=3),
            deadline_s=24 * 3600,
        )


def quarantine_one(console: Console, order_uid: uuid.UUID) -> None:
    """A dead letter of ``order_uid``, as the projector stores a record PostgreSQL refused."""
    letter = dead_letters.NewDeadLetter(
        consumer="keeper-projector",
        source_topic="order-events",
        source_partition=3,
        source_offset=1207,
        key=str(order_uid).encode(),
        value=b'{"partner_order_id": "inv\x00-1"}',
        reason="DataError sqlstate=22P05 message=unsupported Unicode escape sequence",
        order_uid=order_uid,
    )
    with console.sessions.begin() as session:
        dead_letters.record(session, [letter])


async def test_every_page_renders_and_is_pictured(
    console_light: Console, console_chromium: Any, tmp_path: Path
):
    """Every page of an admin, in a real browser over seeded history: no page raises, and
    each is pictured in ``docs/screens/console-<page>.png`` (the partner portal's pages:
    ``tests/e2e/test_portal_browser.py``)."""
    uids = seed_history(console_light, datetime.now(UTC) - timedelta(hours=30))
    quarantine_one(console_light, uuid.UUID(next(iter(uids.values()))))
    dispute_one(console_light, uuid.UUID(uids["a4"]))
    env = console_env(console_light.database_url, console_light.api_url)
    async with streamlit_server(env, tmp_path / "console.log") as url:
        page = await console_chromium.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(url)
        await page.get_by_label("Username").wait_for(timeout=SHOWN_MS)
        SCREENS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENS / "console-sign-in.png"))
        await browser_sign_in(page, "adam")
        await title(page, "Operator queue")
        for key in visible_keys("admin"):
            # Through the sidebar: a reload would open a new session (signed out).
            await page.get_by_test_id("stSidebarNav").get_by_text(page_title(key)).click()
            await title(page, page_title(key))
            await page.wait_for_load_state("networkidle")
            await page.wait_for_timeout(1500)  # charts and tables draw after the script ends
            assert await page.locator("[data-testid='stException']").count() == 0, key
            name = key.replace("_", "-")
            await page.screenshot(path=str(SCREENS / f"console-{name}.png"), full_page=True)
