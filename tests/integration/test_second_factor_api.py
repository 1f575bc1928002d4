"""Two-factor sign-in, forced password reset and the end of sessions, through the API on a
real PostgreSQL: the two-step login, replay refused, wrong codes throttled like passwords,
recovery codes single use, admin reset (audited), admins held to enrolment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.orm import sessionmaker

from db.repositories import second_factor, users
from domain import totp
from tests.fixtures.light_api import Db, client, light_app, login, seeded
from tests.fixtures.second_factor import RECOVERY, code_at_step, enrol
from tests.fixtures.system import PASSWORD

pytestmark = pytest.mark.integration

QUEUE = "/v1/operator/queue"
SECOND = "/v1/auth/login/second-factor"


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Db]:
    with seeded(migrated_database_url) as database:  # adam (admin), olga, ann
        with sessionmaker(bind=database.engine).begin() as s:
            enrol(s, "olga")
        yield database


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def code_of(answer: httpx.Response) -> str:
    assert answer.status_code in (401, 403, 429), answer.text
    return str(answer.json()["error"]["code"])


def now_step() -> int:
    return totp.step_of(time.time())


async def test_two_steps_and_no_replay(db: Db, migrated_database_url: str):
    async with client(light_app(migrated_database_url)) as api:
        first = await login(api, "olga")
        assert first.status_code == 200
        body = first.json()
        assert set(body) == {"second_factor", "challenge", "expires_at"}  # no session yet
        assert db.sql("SELECT count(*) FROM console_sessions") == [(0,)]
        code = code_at_step("olga", now_step())
        opened = await api.post(SECOND, json={"challenge": body["challenge"], "code": code})
        assert opened.status_code == 200, opened.text
        assert opened.json()["username"] == "olga"
        assert (await api.get(QUEUE, headers=bearer(opened.json()["token"]))).status_code == 200
        # the same challenge again: closed by its success
        again = await api.post(SECOND, json={"challenge": body["challenge"], "code": code})
        assert code_of(again) == "invalid_challenge"
        # the same code with a fresh challenge: a replay within its window, refused
        fresh = (await login(api, "olga")).json()["challenge"]
        replay = await api.post(SECOND, json={"challenge": fresh, "code": code})
        assert code_of(replay) == "invalid_code"
        # an older code (the step before, still inside the drift window) is refused too
        older = code_at_step("olga", now_step() - 1)
        if older != code:
            refused = await api.post(SECOND, json={"challenge": fresh, "code": older})
            assert code_of(refused) == "invalid_code"


async def test_a_code_is_accepted_once_when_two_processes_race(db: Db, migrated_database_url):
    one, two = light_app(migrated_database_url), light_app(migrated_database_url)
    async with client(one) as a, client(two, "198.51.100.23") as b:
        challenges = [(await login(c, "olga")).json()["challenge"] for c in (a, b)]
        code = code_at_step("olga", now_step())
        answers = await asyncio.gather(
            a.post(SECOND, json={"challenge": challenges[0], "code": code}),
            b.post(SECOND, json={"challenge": challenges[1], "code": code}),
        )
    assert sorted(r.status_code for r in answers) == [200, 401]


async def test_wrong_codes_are_throttled_like_passwords(db: Db, migrated_database_url: str):
    """The password's attempt stays counted until the code is right: with 5 allowed, the
    password and 4 wrong codes lock the user, and the right code is refused while locked."""
    app = light_app(migrated_database_url, login_max_failures_user=5, login_lock_base_s=30)
    async with client(app) as api:
        challenge = (await login(api, "olga")).json()["challenge"]
        wrong = [
            await api.post(SECOND, json={"challenge": challenge, "code": "000000"})
            for _ in range(4)
        ]
        assert [code_of(a) for a in wrong] == ["invalid_code"] * 4
        right = code_at_step("olga", now_step())
        locked = await api.post(SECOND, json={"challenge": challenge, "code": right})
        assert code_of(locked) == "too_many_attempts"
        assert int(locked.headers["Retry-After"]) >= 1
        assert code_of(await login(api, "olga")) == "too_many_attempts"  # the password too
    [(actor, entity)] = db.sql(
        "SELECT actor, entity_id FROM audit_log WHERE action = 'auth.lock' AND "
        "entity_id LIKE 'user:%'"
    )
    assert (actor, entity) == ("olga", "user:olga")


async def test_a_right_code_clears_the_count(db: Db, migrated_database_url: str):
    app = light_app(migrated_database_url, login_max_failures_user=5)
    async with client(app) as api:
        challenge = (await login(api, "olga")).json()["challenge"]
        for _ in range(3):
            await api.post(SECOND, json={"challenge": challenge, "code": "000000"})
        right = code_at_step("olga", now_step())
        assert (await api.post(SECOND, json={"challenge": challenge, "code": right})).is_success
    assert db.sql("SELECT count(*) FROM login_throttle WHERE scope = 'user'") == [(0,)]
    [(failures,)] = db.sql("SELECT failures FROM login_throttle WHERE scope = 'address'")
    assert failures == 3  # the wrong codes stay counted against the address, nothing else


async def test_recovery_code_is_single_use(db: Db, migrated_database_url: str):
    code = RECOVERY["olga"][0]
    async with client(light_app(migrated_database_url)) as api:
        challenge = (await login(api, "olga")).json()["challenge"]
        typed = code.upper().replace("-", " ")  # as a person might type it
        opened = await api.post(SECOND, json={"challenge": challenge, "code": typed})
        assert opened.status_code == 200, opened.text
        challenge = (await login(api, "olga")).json()["challenge"]
        again = await api.post(SECOND, json={"challenge": challenge, "code": code})
        assert code_of(again) == "invalid_code"
        other = await api.post(SECOND, json={"challenge": challenge, "code": RECOVERY["olga"][1]})
        assert other.status_code == 200
    hashes = db.sql("SELECT code_hash, used_at IS NOT NULL FROM console_recovery_codes")
    assert len(hashes) == second_factor.RECOVERY_CODES
    assert all(h.startswith("$argon2id$") for h, _ in hashes)
    assert sum(used for _, used in hashes) == 2
    assert db.sql("SELECT count(*) FROM audit_log WHERE action = 'user.recovery_code_use'") == [
        (2,)
    ]


async def test_unknown_and_expired_challenges(db: Db, migrated_database_url: str):
    async with client(light_app(migrated_database_url)) as api:
        unknown = await api.post(SECOND, json={"challenge": "x" * 43, "code": "123456"})
        assert code_of(unknown) == "invalid_challenge"
        challenge = (await login(api, "olga")).json()["challenge"]
        db.execute("UPDATE login_challenges SET created_at = now() - interval '10 minutes', "
                   "expires_at = now() - interval '1 second'")  # fmt: skip
        code = code_at_step("olga", now_step())
        late = await api.post(SECOND, json={"challenge": challenge, "code": code})
        assert code_of(late) == "invalid_challenge"


async def test_the_secret_is_sealed_at_rest(db: Db):
    from tests.fixtures.second_factor import SECRETS

    [(sealed,)] = db.sql("SELECT secret_sealed FROM console_second_factors")
    assert SECRETS["olga"] not in sealed


async def test_an_admin_without_a_second_factor_may_only_enrol(db: Db, migrated_database_url):
    async with client(light_app(migrated_database_url)) as api:
        answer = await login(api, "adam")
        assert answer.status_code == 200
        assert answer.json()["second_factor_enrolment_required"] is True
        token = answer.json()["token"]
        refused = await api.get(QUEUE, headers=bearer(token))
        assert refused.status_code == 403
        assert code_of(refused) == "second_factor_enrolment_required"
        assert (await api.post("/v1/auth/logout", headers=bearer(token))).status_code == 204
    # another role is held to it only when the setting names it
    strict = light_app(migrated_database_url, totp_required_roles="operator")
    async with client(strict) as api:
        assert (await login(api, "olga")).json().get("challenge")  # olga has one: fine
    with sessionmaker(bind=db.engine).begin() as s:
        second_factor.reset(s, "olga", actor="adam", now=datetime.now(UTC))
    async with client(strict) as api:
        token = (await login(api, "olga")).json()["token"]
        assert code_of(await api.get(QUEUE, headers=bearer(token))) == (
            "second_factor_enrolment_required"
        )


async def test_admin_reset_is_audited_and_ends_sessions(db: Db, migrated_database_url: str):
    async with client(light_app(migrated_database_url, session_cache_s=0)) as api:
        challenge = (await login(api, "olga")).json()["challenge"]
        code = code_at_step("olga", now_step())
        token = (await api.post(SECOND, json={"challenge": challenge, "code": code})).json()[
            "token"
        ]
        with sessionmaker(bind=db.engine).begin() as s:
            assert second_factor.reset(s, "olga", actor="adam", now=datetime.now(UTC))
            assert not second_factor.reset(s, "olga", actor="adam", now=datetime.now(UTC))
        assert code_of(await api.get(QUEUE, headers=bearer(token))) == "session_expired"
        after = await login(api, "olga")  # an operator: no second factor needed any more
        assert "token" in after.json()
    rows = db.sql(
        "SELECT actor, before->>'second_factor', after->>'second_factor' FROM audit_log "
        "WHERE action = 'user.second_factor_reset'"
    )
    assert [tuple(r) for r in rows] == [("adam", "totp", None)]
    assert db.sql("SELECT count(*) FROM console_recovery_codes") == [(0,)]


async def test_forced_reset_then_password_change(db: Db, migrated_database_url: str):
    temporary = "a temporary passphrase"
    async with client(light_app(migrated_database_url, session_cache_s=0)) as api:
        token = (await login(api, "ann")).json()["token"]
        with sessionmaker(bind=db.engine).begin() as s:
            users.force_password_reset(s, "ann", actor="adam", temporary_password=temporary)
        assert code_of(await api.get(QUEUE, headers=bearer(token))) == "session_expired"
        assert code_of(await login(api, "ann")) == "invalid_credentials"  # the old password
        signed = (await login(api, "ann", temporary)).json()
        assert signed["password_change_required"] is True
        held = await api.get("/v1/operator/queue", headers=bearer(signed["token"]))
        assert code_of(held) == "password_change_required"
        same = await api.post(
            "/v1/auth/password",
            json={"current_password": temporary, "new_password": temporary},
            headers=bearer(signed["token"]),
        )
        assert same.status_code == 422
        changed = await api.post(
            "/v1/auth/password",
            json={"current_password": temporary, "new_password": "my very own passphrase"},
            headers=bearer(signed["token"]),
        )
        assert changed.status_code == 204
        fresh = (await login(api, "ann", "my very own passphrase")).json()
        assert fresh["password_change_required"] is False
    rows = db.sql(
        "SELECT actor, after->>'temporary_password_set' FROM audit_log "
        "WHERE action = 'user.password_reset'"
    )
    assert [tuple(r) for r in rows] == [("adam", "true")]
    assert not db.sql("SELECT 1 FROM audit_log WHERE after::text LIKE '%temporary passphrase%'")


async def test_password_change_ends_sessions_in_another_process_within_the_cache(
    db: Db, migrated_database_url: str
):
    """Process B checked the session a moment ago (cached for ``session_cache_s``); the
    change on process A ends it there within that bound, and at once on A."""
    cache_s = 1.0
    a_app = light_app(migrated_database_url, session_cache_s=cache_s)
    b_app = light_app(migrated_database_url, session_cache_s=cache_s)
    async with client(a_app) as a, client(b_app) as b:
        token = (await login(a, "ann")).json()["token"]
        other = (await login(a, "ann")).json()["token"]
        assert code_of(await b.get(QUEUE, headers=bearer(other))) == "forbidden"  # B caches it
        changed_at = time.monotonic()
        changed = await a.post(
            "/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
            headers=bearer(token),
        )
        assert changed.status_code == 204
        assert code_of(await a.get(QUEUE, headers=bearer(other))) == "session_expired"
        while code_of(await b.get(QUEUE, headers=bearer(other))) != "session_expired":
            assert time.monotonic() - changed_at < cache_s + 0.5, "B kept the session too long"
            await asyncio.sleep(0.05)
