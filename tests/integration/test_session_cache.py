"""Console sessions from the session cache: a stated bound across API processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from ingest_api.session_cache import SessionCache
from tests.fixtures.light_api import Db, client, light_app, login, seeded

pytestmark = pytest.mark.integration


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Db]:
    with seeded(migrated_database_url) as database:
        yield database


async def test_calls_within_the_bound_cost_no_round_trip_and_sign_out_elsewhere_ends_it(
    db: Db, migrated_database_url: str
):
    first, second = light_app(migrated_database_url), light_app(migrated_database_url)
    first.state.services.session_cache = SessionCache(1.0)
    engine = first.state.services.sessions.kw["bind"]
    async with client(first) as api_a, client(second) as api_b:
        token = (await login(api_a, "olga")).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await api_a.get("/v1/operator/queue", headers=headers)).status_code == 200

        checks: list[str] = []

        def record(_c: object, _k: object, statement: str, *_: object) -> None:
            if "console_sessions" in statement:
                checks.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            for _ in range(5):  # within the second: answered from the cache
                assert (await api_a.get("/v1/operator/queue", headers=headers)).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert checks == []

        assert (await api_b.post("/v1/auth/logout", headers=headers)).status_code == 204
        signed_out = time.monotonic()
        while (answer := await api_a.get("/v1/operator/queue", headers=headers)).status_code == 200:
            assert time.monotonic() - signed_out <= 1.0
            await asyncio.sleep(0.05)
        assert answer.json()["error"]["code"] == "session_expired"
        assert time.monotonic() - signed_out <= 1.0 + 0.5  # the bound, plus one call's time


async def test_sign_out_in_the_same_process_ends_the_session_at_once(
    db: Db, migrated_database_url: str
):
    app = light_app(migrated_database_url)
    app.state.services.session_cache = SessionCache(60.0)  # only forgetting can end it
    async with client(app) as api:
        token = (await login(api, "olga")).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await api.get("/v1/operator/queue", headers=headers)).status_code == 200
        assert (await api.post("/v1/auth/logout", headers=headers)).status_code == 204
        after = await api.get("/v1/operator/queue", headers=headers)

    assert after.status_code == 401
