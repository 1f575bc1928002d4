"""The callback pages in a real browser over seeded deliveries and secrets: one delivery
opened by its id, and a partner's secrets during a rotation. Pictured in
``docs/screens/console-callbacks.png`` and ``console-callback-secrets.png`` (the names
``test_console_browser.py`` uses for every page; this test runs after it and pictures the
pages with data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from db.crypto import SecretBox
from db.repositories import callbacks as repo
from tests.fixtures.console import Console, browser_sign_in, console_env, streamlit_server
from tests.integration.test_console_callbacks import Seeded, seeded  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

SHOWN_MS = 20_000
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


async def open_page(page: Any, title: str) -> None:
    await page.get_by_test_id("stSidebarNav").get_by_text(title).click()
    await page.locator("h1").filter(has_text=title).first.wait_for(timeout=SHOWN_MS)


async def settle(page: Any) -> None:
    await page.wait_for_load_state("networkidle")
    await page.wait_for_timeout(1500)  # tables draw after the script ends
    assert await page.locator("[data-testid='stException']").count() == 0


async def test_callback_pages_render_and_are_pictured(
    console_light: Console,
    seeded: Seeded,  # noqa: F811
    console_chromium: Any,
    tmp_path: Path,
) -> None:
    box = SecretBox.from_settings()
    with console_light.sessions.begin() as s:
        repo.issue_callback_secret(s, box, "game", "test")
        retired_id, _ = repo.issue_callback_secret(s, box, "game", "test")
        repo.revoke_callback_secret(s, retired_id, "test")
        repo.issue_callback_secret(s, box, "game", "test")
    env = console_env(console_light.database_url, console_light.api_url)
    async with streamlit_server(env, tmp_path / "console.log") as url:
        page = await console_chromium.new_page(viewport={"width": 1400, "height": 1700})
        await page.goto(url)
        await browser_sign_in(page, "adam")
        SCREENS.mkdir(parents=True, exist_ok=True)

        await open_page(page, "Callback deliveries")
        box_for_id = page.get_by_label("…or a delivery id (Keeper-Delivery-Id)")
        await box_for_id.fill(str(seeded.dead))
        await box_for_id.press("Enter")
        await page.get_by_text("dead: parked after its retry window").wait_for(timeout=SHOWN_MS)
        await settle(page)
        await page.screenshot(path=str(SCREENS / "console-callbacks.png"), full_page=True)

        await page.set_viewport_size({"width": 1400, "height": 1000})
        await open_page(page, "Callback secrets")
        await page.get_by_text("2 active").wait_for(timeout=SHOWN_MS)
        await settle(page)
        assert await page.get_by_text("cs_").count() == 0  # never a secret after issuing
        await page.screenshot(path=str(SCREENS / "console-callback-secrets.png"), full_page=True)
