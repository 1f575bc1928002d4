"""The partner portal as a partner meets it: ``streamlit run`` in its own process, headless
Chromium.

- A partner user signs in with its password and opens every portal page over seeded
  history of two partners: no page raises, none shows the other partner's ids, and each is
  pictured in ``docs/screens/portal-<page>.png``.
- On the whole pipeline, a partner user with two-factor sign-in (TOTP) signs in with its
  password and its current code, and rotates its API key in the browser; the running API
  refuses the old key within the revocation bound (1 s, ADR 0006) and takes the new one.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from db.repositories import users
from ops_console.nav import visible_keys
from ops_console.roles import page_title
from tests.fixtures.console import (
    REPO_ROOT,
    Console,
    api_app,
    console_env,
    serve_in_loop,
    streamlit_server,
)
from tests.fixtures.portal import RIVAL_ORDER_ID, SHOP_USER, World
from tests.fixtures.second_factor import code_now, enrol
from tests.fixtures.system import PARTNER, PASSWORD, System, signed_client

pytestmark = pytest.mark.e2e

SHOWN_MS = 20_000
BOUND_S = 1.0  # ApiSettings.key_max_stale_s
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


def env_for(database_url: str, api_url: str) -> dict[str, str]:
    """The console's environment; this checkout's code first on the path (the virtualenv
    may hold another checkout's editable install)."""
    return {**console_env(database_url, api_url), "PYTHONPATH": str(REPO_ROOT)}


async def title(page: Any, text: str) -> None:
    await page.locator("h1").filter(has_text=text).first.wait_for(timeout=SHOWN_MS)


async def sign_in(page: Any, url: str, username: str, database_url: str | None = None) -> None:
    """Password, then (``database_url`` given: the user has a second factor) the code."""
    await page.goto(url)
    await page.get_by_label("Username").fill(username)
    await page.get_by_role("textbox", name="Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    if database_url is not None:
        code = page.get_by_role("textbox", name="Code")
        await code.wait_for(timeout=SHOWN_MS)
        await code.fill(await asyncio.to_thread(code_now, username, database_url))
        await page.get_by_role("button", name="Verify").click()
    await title(page, "My orders")


async def test_every_portal_page_renders_and_is_pictured(
    console_light: Console, portal_world: World, console_chromium: Any, tmp_path: Path
):
    rival = portal_world.rival
    theirs = [rival.order_uid, RIVAL_ORDER_ID, rival.key_id, rival.secret_id]
    env = env_for(console_light.database_url, console_light.api_url)
    async with streamlit_server(env, tmp_path / "console.log") as url:
        page = await console_chromium.new_page(viewport={"width": 1400, "height": 1000})
        await sign_in(page, url, SHOP_USER)
        nav = page.get_by_test_id("stSidebarNav")
        assert not await nav.get_by_text("Operator queue").count()  # staff pages not offered
        SCREENS.mkdir(parents=True, exist_ok=True)
        for key in visible_keys("partner"):
            await nav.get_by_text(page_title(key), exact=True).click()
            await title(page, page_title(key))
            await page.wait_for_load_state("networkidle")
            await page.wait_for_timeout(1500)  # tables draw after the script ends
            assert await page.locator("[data-testid='stException']").count() == 0, key
            html = await page.content()  # the tables' cells too (hidden behind a canvas)
            assert not [ident for ident in theirs if ident in html], key
            name = key.removeprefix("portal_").replace("_", "-")
            await page.screenshot(path=str(SCREENS / f"portal-{name}.png"), full_page=True)


async def first_refusal(s: System, stop: asyncio.Event) -> datetime | None:
    while not stop.is_set():
        answer = await s.partner.get("/v1/balance")
        if answer.status_code == 401:
            assert answer.json()["error"]["code"] == "revoked_api_key", answer.text
            return datetime.now(UTC)
        assert answer.status_code == 200, answer.text
        await asyncio.sleep(0.02)
    return None


async def test_a_partner_signs_in_and_rotates_its_key_in_the_browser(
    system: System, console_chromium: Any, tmp_path: Path
):
    s = system
    with s.sessions.begin() as session:
        users.create_user(session, "sam", PASSWORD, "partner", "test", partner_id=PARTNER)
    with s.sessions.begin() as session:
        enrol(session, "sam")  # a partner who turned two-factor sign-in on
    old_key = s.credentials[PARTNER][0]
    assert (await s.partner.get("/v1/balance")).status_code == 200
    async with (
        serve_in_loop(api_app(s)) as api_url,
        streamlit_server(env_for(s.database_url, api_url), tmp_path / "console.log") as url,
    ):
        page = await console_chromium.new_page(viewport={"width": 1400, "height": 900})
        await sign_in(page, url, "sam", s.database_url)
        await page.get_by_test_id("stSidebarNav").get_by_text("My API keys").click()
        await title(page, "My API keys")
        rotate = page.get_by_role("button", name=re.compile("^Rotate"))
        await rotate.wait_for(timeout=SHOWN_MS)

        stop = asyncio.Event()
        probe = asyncio.create_task(first_refusal(s, stop))
        await rotate.click()
        try:
            refused_at = await asyncio.wait_for(asyncio.shield(probe), timeout=SHOWN_MS / 1000)
        finally:
            stop.set()
            await probe
        shown = page.get_by_text(re.compile("KEEPER_KEY_SECRET=ks_"))
        await shown.first.wait_for(timeout=SHOWN_MS)
        block = await page.locator("code").filter(has_text="KEEPER_KEY_ID=").first.inner_text()

    [row] = s.sql("SELECT status, revoked_at FROM partner_api_keys WHERE key_id = :k", k=old_key)
    assert row.status == "revoked"
    assert refused_at is not None
    refused_after_s = (refused_at - row.revoked_at).total_seconds()
    print(f"old key refused {refused_after_s * 1000:.0f} ms after the click's revocation")
    assert refused_after_s <= BOUND_S, refused_after_s
    values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    async with signed_client(
        api_app(s), f"{values['KEEPER_KEY_ID']}:{values['KEEPER_KEY_SECRET']}"
    ) as client:
        deadline = time.monotonic() + BOUND_S
        while (answer := await client.get("/v1/balance")).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            await asyncio.sleep(0.02)
