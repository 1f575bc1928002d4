"""The card monitoring page in a real browser over seeded cards, turnover and alerts; it is
pictured in ``docs/screens/console-card-monitoring.png``.

Until the page is listed in ``ops_console.roles``, Streamlit runs a small wrapper that lists
it (as the listing will) and then runs ``ops_console/app.py``; the wrapper's folder links
``views`` to the console's, so every page path resolves as in the real console. Once the
page is listed, ``test_console_browser.py`` pictures it under the same name as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.console import APP_PATH, Console, browser_sign_in, console_env, free_port
from tests.integration.test_console_cards_monitor import ENTRY, seeded  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
REPO_ROOT = APP_PATH.parents[1]
SHOWN_MS = 20_000

WRAPPER = f'''
import runpy
from ops_console import roles

roles.PAGE_ROLES.setdefault("{ENTRY[0]}", frozenset({{"operator", "admin", "analyst"}}))
if all(page[0] != "{ENTRY[0]}" for page in roles.SECTIONS["Operations"]):
    roles.SECTIONS["Operations"].append({ENTRY!r})
runpy.run_path({str(APP_PATH)!r}, run_name="__main__")
'''


def spawn(command: list[str], env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)


@contextlib.asynccontextmanager
async def console_with_page(env: dict[str, str], folder: Path) -> AsyncIterator[str]:
    (folder / "views").symlink_to(APP_PATH.parent / "views")
    (folder / "app.py").write_text(WRAPPER)
    port = free_port()
    command = [
        str(REPO_ROOT / ".venv" / "bin" / "streamlit"), "run", str(folder / "app.py"),
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    log = (folder / "console.log").open("wb")
    process = spawn(command, full_env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/_stcore/health")).text.strip() == "ok":
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("streamlit did not start: " + (folder / "console.log").read_text())
                await asyncio.sleep(0.25)
        yield url
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
        log.close()


async def test_card_monitoring_renders_and_is_pictured(
    console_light: Console,
    seeded: dict[str, Any],  # noqa: F811
    console_chromium: Any,
    tmp_path: Path,
) -> None:
    env = console_env(console_light.database_url, console_light.api_url)
    async with console_with_page(env, tmp_path) as url:
        page = await console_chromium.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(url)
        await browser_sign_in(page, "adam")
        await page.get_by_test_id("stSidebarNav").get_by_text("Card monitoring").click()
        await page.locator("h1").filter(has_text="Card monitoring").first.wait_for(timeout=SHOWN_MS)
        await page.wait_for_load_state("networkidle")
        await page.wait_for_timeout(2000)  # tables and the chart draw after the script ends
        assert await page.locator("[data-testid='stException']").count() == 0
        SCREENS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENS / "console-card-monitoring.png"), full_page=True)
