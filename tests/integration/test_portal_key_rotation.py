"""Key rotation from the partner portal on the whole pipeline: a partner user rotates its API
key on the portal's keys page (``AppTest``, the page's own code path), and the running API,
which serves keys from memory (ADR 0006), refuses the old key within ``key_max_stale_s``
(1 s) of the revocation, and accepts the new one.

The API app of ``system`` is served in the test's event loop, so ``AppTest`` runs on a
worker thread while a probe signs a request with the old key every 20 ms.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from streamlit.testing.v1 import AppTest

from db.repositories import users
from tests.fixtures.console import Console, api_app, sign_in
from tests.fixtures.system import PARTNER, PASSWORD, System, signed_client

pytestmark = pytest.mark.integration

BOUND_S = 1.0  # ApiSettings.key_max_stale_s: the revocation bound of ADR 0006


async def first_refusal(s: System, stop: asyncio.Event) -> datetime | None:
    """When the old key was first refused (``401 revoked_api_key``), probing every 20 ms."""
    while not stop.is_set():
        answer = await s.partner.get("/v1/balance")
        if answer.status_code == 401:
            assert answer.json()["error"]["code"] == "revoked_api_key", answer.text
            return datetime.now(UTC)
        assert answer.status_code == 200, answer.text
        await asyncio.sleep(0.02)
    return None


async def test_a_key_rotated_in_the_portal_stops_working_within_the_bound(
    console_system: tuple[System, Console],
):
    s, console = console_system
    with s.sessions.begin() as session:
        users.create_user(session, "sam", PASSWORD, "partner", "test", partner_id=PARTNER)
    old_key = s.credentials[PARTNER][0]
    assert (await s.partner.get("/v1/balance")).status_code == 200

    at: AppTest = await asyncio.to_thread(sign_in, console.app(), "sam")
    at.switch_page("views/portal_keys.py")
    at = await asyncio.to_thread(at.run)
    assert not at.exception, at.exception
    at.selectbox(key="pk_pick").select(old_key)
    at.button(key="pk_rotate").click()

    stop = asyncio.Event()
    probe = asyncio.create_task(first_refusal(s, stop))
    at = await asyncio.to_thread(at.run)  # the rotation commits in this run
    assert not at.exception, at.exception
    try:
        refused_at = await asyncio.wait_for(asyncio.shield(probe), timeout=BOUND_S + 1.0)
    finally:
        stop.set()
        await probe
    [row] = s.sql("SELECT status, revoked_at FROM partner_api_keys WHERE key_id = :k", k=old_key)
    assert row.status == "revoked"
    assert refused_at is not None
    refused_after_s = (refused_at - row.revoked_at).total_seconds()
    print(f"old key refused {refused_after_s * 1000:.0f} ms after its revocation")
    assert refused_after_s <= BOUND_S, refused_after_s

    [shown] = at.code
    values = dict(line.split("=", 1) for line in shown.value.splitlines())
    new_key, secret = values["KEEPER_KEY_ID"], values["KEEPER_KEY_SECRET"]
    async with signed_client(api_app(s), f"{new_key}:{secret}") as client:
        deadline = time.monotonic() + BOUND_S
        while (answer := await client.get("/v1/balance")).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            await asyncio.sleep(0.02)
    [entry] = s.sql(
        "SELECT actor, after FROM audit_log WHERE action = 'api_key.rotate' AND entity_id = :k",
        k=old_key,
    )
    assert (entry.actor, entry.after["key_id"]) == ("sam", new_key)
