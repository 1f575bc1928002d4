"""Sign-in throttling on a real PostgreSQL: per username and per address, shared by API
processes, audited, and blind to whether a username exists."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.light_api import Db, client, light_app, login, seeded
from tests.fixtures.system import PASSWORD

pytestmark = pytest.mark.integration

WRONG = "not the password at all"
HOME = "203.0.113.7"
ELSEWHERE = "198.51.100.23"


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Db]:
    with seeded(migrated_database_url) as database:
        yield database


def statuses(answers: list[httpx.Response]) -> list[int]:
    return [a.status_code for a in answers]


def assert_throttled(answer: httpx.Response) -> int:
    """The 429 shape; its Retry-After in seconds."""
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["code"] == "too_many_attempts"
    retry_after = int(answer.headers["Retry-After"])
    assert retry_after >= 1
    assert f"try again in {retry_after} s" in answer.json()["error"]["message"]
    return retry_after


def lock_audit(db: Db) -> list[tuple[Any, ...]]:
    rows = db.sql(
        "SELECT actor, entity_id, after->>'address', (after->>'level')::int FROM audit_log "
        "WHERE action = 'auth.lock' ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def test_thirty_wrong_passwords_then_the_right_one(db: Db, migrated_database_url: str):
    """The regression of issue 15: the right password right after 30 wrong ones is refused
    while the lock lasts, and accepted once it has passed."""
    app = light_app(
        migrated_database_url,
        login_max_failures_user=5,
        login_max_failures_address=100,
        login_lock_base_s=3,
        login_lock_max_s=3,
    )
    async with client(app, HOME) as api:
        answers = [await login(api, "olga", WRONG) for _ in range(30)]
        assert statuses(answers) == [401] * 5 + [429] * 25
        for refused in answers[5:]:
            assert_throttled(refused)
        right = await login(api, "olga")
        retry_after = assert_throttled(right)
        assert retry_after <= 3
        assert db.sql("SELECT count(*) FROM console_sessions") == [(0,)]

        await asyncio.sleep(retry_after + 0.2)
        accepted = await login(api, "olga")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["username"] == "olga"
    assert lock_audit(db) == [("olga", "user:olga", HOME, 1)]
    # a success starts the user's count afresh
    assert db.sql("SELECT count(*) FROM login_throttle WHERE scope = 'user'") == [(0,)]


@pytest.mark.parametrize("username", ["olga", "nobody"])
async def test_known_and_unknown_usernames_lock_alike(
    db: Db, migrated_database_url: str, username: str
):
    app = light_app(migrated_database_url, login_max_failures_user=5, login_lock_base_s=60)
    async with client(app, HOME) as api:
        answers = [await login(api, username, WRONG) for _ in range(6)]
    assert statuses(answers) == [401] * 5 + [429]
    assert_throttled(answers[5])
    assert answers[0].json() == answers[4].json()
    assert lock_audit(db) == [(username, f"user:{username}", HOME, 1)]


async def test_locks_grow(db: Db, migrated_database_url: str):
    app = light_app(
        migrated_database_url,
        login_max_failures_user=2,
        login_lock_base_s=1,
        login_lock_max_s=900,
    )
    async with client(app, HOME) as api:
        for _ in range(2):
            await login(api, "olga", WRONG)
        await asyncio.sleep(1.1)  # the first lock (1 s) passes
        for _ in range(2):
            assert (await login(api, "olga", WRONG)).status_code == 401
        retry_after = assert_throttled(await login(api, "olga"))
    assert retry_after == 2
    assert [level for *_, level in lock_audit(db)] == [1, 2]


async def test_an_address_is_throttled_across_usernames(db: Db, migrated_database_url: str):
    app = light_app(
        migrated_database_url,
        login_max_failures_user=100,
        login_max_failures_address=4,
        login_lock_base_s=60,
    )
    async with client(app, HOME) as home, client(app, ELSEWHERE) as elsewhere:
        sprayed = [await login(home, name, WRONG) for name in ("adam", "olga", "eve", "mallory")]
        assert statuses(sprayed) == [401] * 4
        assert_throttled(await login(home, "ann"))  # right password, locked address
        assert (await login(elsewhere, "ann")).status_code == 200
    assert lock_audit(db) == [("mallory", f"address:{HOME}", HOME, 1)]


async def test_the_lock_is_shared_by_api_processes(db: Db, migrated_database_url: str):
    settings: dict[str, Any] = {"login_max_failures_user": 3, "login_lock_base_s": 60}
    first = light_app(migrated_database_url, **settings)
    second = light_app(migrated_database_url, **settings)
    async with client(first, HOME) as one, client(second, ELSEWHERE) as two:
        assert statuses([await login(one, "adam", WRONG) for _ in range(3)]) == [401] * 3
        assert_throttled(await login(two, "adam"))


async def test_a_session_is_no_way_around_the_throttle(db: Db, migrated_database_url: str):
    """Wrong current passwords on the password change count against the user's scope."""
    app = light_app(migrated_database_url, login_max_failures_user=3, login_lock_base_s=60)
    async with client(app, HOME) as api:
        token = (await login(api, "ann")).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"current_password": WRONG, "new_password": "a brand new passphrase"}
        answers = [
            await api.post("/v1/auth/password", json=body, headers=headers) for _ in range(4)
        ]
        assert statuses(answers) == [401, 401, 401, 429]
        assert answers[0].json()["error"]["code"] == "invalid_credentials"
        assert_throttled(answers[3])
        assert_throttled(await login(api, "ann"))


async def test_unknown_user_answers_like_a_wrong_password(db: Db, migrated_database_url: str):
    """Same status and body; about the same time (the dummy hash runs). A loose bound, not a
    benchmark: an answer without hashing would be tens of times faster."""
    app = light_app(migrated_database_url, login_max_failures_user=1000)
    known: list[float] = []
    unknown: list[float] = []
    async with client(app, HOME) as api:
        await login(api, "olga", WRONG)  # warm-up
        for round_ in range(7):
            for name, times in (("olga", known), (f"ghost{round_}", unknown)):
                started = time.perf_counter()
                answer = await login(api, name, WRONG)
                times.append(time.perf_counter() - started)
                assert answer.status_code == 401
                assert answer.json() == {
                    "error": {
                        "code": "invalid_credentials",
                        "message": "wrong username or password",
                        "details": [],
                    }
                }
    known_s, unknown_s = statistics.median(known), statistics.median(unknown)
    assert known_s / 3 <= unknown_s <= known_s * 3, (known_s, unknown_s)


async def test_client_address_behind_a_trusted_proxy(db: Db, migrated_database_url: str):
    app = light_app(
        migrated_database_url, trusted_proxies="10.0.0.5", login_max_failures_address=100
    )
    forwarded = {"X-Forwarded-For": "192.0.2.1, 192.0.2.44"}
    body = {"username": "olga", "password": WRONG}
    async with client(app, "10.0.0.5") as proxy, client(app, HOME) as direct:
        assert (await proxy.post("/v1/auth/login", json=body, headers=forwarded)).status_code == 401
        assert (
            await direct.post("/v1/auth/login", json=body, headers=forwarded)
        ).status_code == 401
    keys = db.sql("SELECT key FROM login_throttle WHERE scope = 'address' ORDER BY key")
    assert [k for (k,) in keys] == ["192.0.2.44", HOME]  # the proxy's entry; a client's ignored


async def test_right_password_resets_the_users_count(db: Db, migrated_database_url: str):
    app = light_app(migrated_database_url, login_max_failures_user=3, login_lock_base_s=60)
    async with client(app, HOME) as api:
        for _ in range(2):
            assert (await login(api, "olga", WRONG)).status_code == 401
        assert (await login(api, "olga", PASSWORD)).status_code == 200
        for _ in range(2):
            assert (await login(api, "olga", WRONG)).status_code == 401
        assert (await login(api, "olga", PASSWORD)).status_code == 200
