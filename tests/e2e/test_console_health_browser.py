"""The System health page in a real browser (Debian's Chromium): an operator opens it from
the sidebar and sees every figure read from the processes' ``/metrics`` (Prometheus not
running), a component down named at the top; pictured in
``docs/screens/console-health-live.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.console import Console, console_env, streamlit_server
from tests.fixtures.fake_metrics import FakeProcesses, populate
from tests.fixtures.stack import free_port
from tests.fixtures.system import PASSWORD

pytestmark = pytest.mark.e2e

SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
SHOWN_MS = 20_000


async def test_an_operator_sees_the_system_health(
    console_light: Console, fake_processes: FakeProcesses, console_chromium: Any, tmp_path: Path
):
    populate(fake_processes, creates_ms=[20] * 97 + [300] * 3)
    env = {
        **console_env(console_light.database_url, console_light.api_url),
        "KEEPER_CONSOLE_METRICS_TARGETS": json.dumps(fake_processes.targets),
        "KEEPER_CONSOLE_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
    }
    async with streamlit_server(env, tmp_path / "console.log") as url:
        page = await console_chromium.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(url)
        await page.get_by_label("Username").fill("olga")
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.locator("h1").filter(has_text="Operator queue").wait_for(timeout=SHOWN_MS)
        await page.get_by_test_id("stSidebarNav").get_by_text("System health").click()
        await page.locator("h1").filter(has_text="System health").wait_for(timeout=SHOWN_MS)
        await page.get_by_text("Down: reconciler").wait_for(timeout=SHOWN_MS)
        await page.wait_for_load_state("networkidle")
        await page.wait_for_timeout(1500)  # tables draw after the script ends
        assert await page.locator("[data-testid='stException']").count() == 0
        assert await page.get_by_text("Queue depth").count() == 1
        assert await page.get_by_text("Callbacks dead").count() == 1
        SCREENS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENS / "console-health-live.png"), full_page=True)
