"""The repositories against a real, migrated PostgreSQL (one throwaway database per test).

Each test commits like an edge would (``sessions.begin()``), then reads back through a fresh
session, so what is asserted is what PostgreSQL holds, not what the identity map remembers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, event, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import CardNumberChecksum, SecretBox
from db.engine import make_engine, session_factory
from db.models import (
    ApiNonce,
    AuditLog,
    BalanceSnapshot,
    Card,
    ConsoleSession,
    ConsoleUser,
    Order,
    OrderEvent,
    PartnerApiKey,
)
from db.repositories import (
    api_keys,
    balances,
    cards,
    nonces,
    orders,
    partners,
    sessions,
    users,
)
from db.repositories.errors import (
    AlreadyExists,
    DuplicateCard,
    InvalidInput,
    NotFound,
    PartnerBusy,
    StaleVersion,
)
from domain.api_keys import ApiKey
from domain.cards import CardStatus
from ingest_api.key_ring import KeyRing

pytestmark = pytest.mark.integration

ACTOR = "tester"
VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
T0 = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key().decode())


@pytest.fixture
def partner(db: sessionmaker[Session]) -> str:
    """Pool ``main`` and partner ``acme`` (deposit 250 bp, withdrawal 150 bp)."""
    with db.begin() as session:
        cards.create_pool(session, pool_id="main", name="Main pool", actor=ACTOR)
        partners.create_partner(
            session,
            partner_id="acme",
            name="Acme",
            deposit_fee_bp=250,
            withdrawal_fee_bp=150,
            pool_id="main",
            actor=ACTOR,
        )
    return "acme"


def audit_rows(db: sessionmaker[Session], entity: str, entity_id: str) -> list[AuditLog]:
    with db() as session:
        return list(
            session.scalars(
                select(AuditLog)
                .where(AuditLog.entity == entity, AuditLog.entity_id == entity_id)
                .order_by(AuditLog.id)
            )
        )


def everything_in_audit(db: sessionmaker[Session]) -> str:
    with db() as session:
        return " ".join(f"{row.before} {row.after}" for row in session.scalars(select(AuditLog)))


# --- partners -----------------------------------------------------------------------------


def test_partner_create_get_update_with_audit(db: sessionmaker[Session], partner: str) -> None:
    with db() as session:
        terms = partners.get_partner(session, partner)
    assert terms == partners.PartnerTerms(
        partner_id="acme",
        name="Acme",
        status="active",
        deposit_fee_bp=250,
        withdrawal_fee_bp=150,
        pool_id="main",
        callback_url=None,
        version=1,
    )

    with db.begin() as session:
        updated = partners.update_partner(
            session,
            partner,
            actor="alice",
            expected_version=1,
            deposit_fee_bp=300,
            callback_url="https://acme.example/cb",
        )
    assert (updated.deposit_fee_bp, updated.callback_url, updated.version) == (
        300,
        "https://acme.example/cb",
        2,
    )
    with db() as session:
        assert partners.get_partner(session, partner) == updated

    create, update = audit_rows(db, "partner", partner)
    assert (create.action, create.actor, create.before) == ("partner.create", ACTOR, None)
    assert create.after is not None
    assert create.after["deposit_fee_bp"] == 250
    assert (update.action, update.actor) == ("partner.update", "alice")
    assert update.before is not None
    assert update.after is not None
    assert (update.before["deposit_fee_bp"], update.after["deposit_fee_bp"]) == (250, 300)
    assert (update.before["version"], update.after["version"]) == (1, 2)


def test_partner_update_that_changes_nothing_writes_nothing(
    db: sessionmaker[Session], partner: str
) -> None:
    with db.begin() as session:
        same = partners.update_partner(session, partner, actor=ACTOR, deposit_fee_bp=250)
    assert same.version == 1
    assert len(audit_rows(db, "partner", partner)) == 1


def test_partner_update_refuses_a_stale_version(db: sessionmaker[Session], partner: str) -> None:
    with db.begin() as session:
        partners.update_partner(session, partner, actor=ACTOR, name="Acme Ltd")
    with db.begin() as session, pytest.raises(StaleVersion) as refused:
        partners.update_partner(session, partner, actor=ACTOR, expected_version=1, name="X")
    assert refused.value.code == "stale_version"


def test_partner_refusals(db: sessionmaker[Session], partner: str) -> None:
    base: dict[str, Any] = {"name": "B", "deposit_fee_bp": 0, "withdrawal_fee_bp": 0}
    with db.begin() as session:
        with pytest.raises(AlreadyExists):
            partners.create_partner(session, partner_id=partner, actor=ACTOR, **base)
        with pytest.raises(InvalidInput):
            partners.create_partner(
                session, partner_id="b", actor=ACTOR, **(base | {"deposit_fee_bp": 10_001})
            )
        with pytest.raises(InvalidInput):
            partners.create_partner(session, partner_id="Not A Slug", actor=ACTOR, **base)
        with pytest.raises(NotFound):
            partners.create_partner(session, partner_id="b", pool_id="nope", actor=ACTOR, **base)
        with pytest.raises(NotFound):
            partners.update_partner(session, "ghost", actor=ACTOR, name="x")
        # The savepoints kept the transaction usable after every refusal:
        partners.create_partner(session, partner_id="b", actor=ACTOR, **base)
    with db() as session:
        assert [t.partner_id for t in partners.list_partners(session)] == ["acme", "b"]


def test_partner_config_message(db: sessionmaker[Session], partner: str) -> None:
    with db() as session:
        (config,) = partners.all_partner_configs(session)
    assert config.partner_id == partner
    assert (config.deposit_fee_bp, config.withdrawal_fee_bp, config.pool_id) == (250, 150, "main")
    assert config.version == 1


# --- API keys -----------------------------------------------------------------------------


def test_issue_find_list_revoke_api_key(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    with db.begin() as session:
        key_id, secret = api_keys.issue_api_key(session, box, partner, ACTOR)
    assert key_id.startswith("kp_")
    assert secret.startswith("ks_")
    assert len(secret) >= 35

    with db() as session:
        found = api_keys.find_api_key(session, box, key_id)
        stored = session.get_one(PartnerApiKey, key_id).secret_encrypted
        listed = api_keys.list_api_keys(session, partner)
        assert api_keys.find_api_key(session, box, "kp_missing") is None
    assert found == ApiKey(partner_id=partner, secret=secret.encode(), active=True)
    assert secret.encode() not in stored
    assert [info.key_id for info in listed] == [key_id]
    assert secret not in repr(listed)

    with db.begin() as session:
        assert api_keys.revoke_api_key(session, key_id, ACTOR) is True
    with db.begin() as session:
        assert api_keys.revoke_api_key(session, key_id, ACTOR) is False
    with db() as session:
        revoked = api_keys.find_api_key(session, box, key_id)
        assert revoked is not None
        assert not revoked.active
        assert api_keys.list_api_keys(session, partner)[0].revoked_at is not None

    issue, revoke = audit_rows(db, "api_key", key_id)
    assert (issue.action, revoke.action) == ("api_key.issue", "api_key.revoke")
    assert revoke.before is not None
    assert revoke.after is not None
    assert (revoke.before["status"], revoke.after["status"]) == ("active", "revoked")
    assert secret not in everything_in_audit(db)


def test_keys_for_unknown_things_are_refused(db: sessionmaker[Session], box: SecretBox) -> None:
    with db.begin() as session:
        with pytest.raises(NotFound):
            api_keys.issue_api_key(session, box, "ghost", ACTOR)
        with pytest.raises(NotFound):
            api_keys.revoke_api_key(session, "kp_ghost", ACTOR)


async def test_pg_key_lookup_sees_revocation_at_once(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    with db.begin() as session:
        key_id, secret = api_keys.issue_api_key(session, box, partner, ACTOR)
    lookup = api_keys.PgKeyLookup(db, box)
    key = await lookup.get(key_id)
    assert key is not None
    assert (key.partner_id, key.secret, key.active) == (partner, secret.encode(), True)
    assert await lookup.get("kp_nothing") is None
    with db() as session:  # get() never writes
        assert session.get_one(PartnerApiKey, key_id).last_used_at is None

    with db.begin() as session:
        api_keys.revoke_api_key(session, key_id, ACTOR)
    revoked = await lookup.get(key_id)
    assert revoked is not None
    assert not revoked.active


async def test_mark_used_writes_at_most_once_per_interval(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    with db.begin() as session:
        key_id, _ = api_keys.issue_api_key(session, box, partner, ACTOR)
    lookup = api_keys.PgKeyLookup(db, box, touch_interval_s=3600)
    await lookup.mark_used(key_id)
    with db() as session:
        first = session.get_one(PartnerApiKey, key_id).last_used_at
    assert first is not None
    await lookup.mark_used(key_id)
    with db.begin() as session:  # another process within the interval: no write either
        assert not api_keys.touch_api_key(session, key_id, datetime.now(UTC), 3600)
        assert session.get_one(PartnerApiKey, key_id).last_used_at == first
        assert api_keys.touch_api_key(session, key_id, first + timedelta(hours=2), 3600)


class StepClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


async def test_key_ring_serves_from_memory_and_sees_revocation_once_stale(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    with db.begin() as session:
        key_id, secret = api_keys.issue_api_key(session, box, partner, ACTOR)
    clock = StepClock()
    ring = KeyRing(db, box, refresh_s=0.25, max_stale_s=1.0, clock=clock)
    await ring.refresh()  # what start() does first; no poller here: the clock decides
    key = await ring.get(key_id)
    assert key is not None
    assert (key.partner_id, key.secret, key.active) == (partner, secret.encode(), True)

    with db.begin() as session:
        api_keys.revoke_api_key(session, key_id, ACTOR)
    clock.now_s += 0.9  # within the bound, and the poller is stuck: memory answers
    held = await ring.get(key_id)
    assert held is not None
    assert held.active
    clock.now_s += 0.2  # past it: the lookup polls before answering
    revoked = await ring.get(key_id)
    assert revoked is not None
    assert not revoked.active
    assert ring.lookups == 0  # no per-key read: both answers came from the ring


async def test_key_ring_reads_a_key_issued_since_its_last_poll(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    ring = KeyRing(db, box, clock=StepClock())
    await ring.refresh()
    with db.begin() as session:
        key_id, secret = api_keys.issue_api_key(session, box, partner, ACTOR)

    key = await ring.get(key_id)
    assert key is not None
    assert key.secret == secret.encode()
    assert await ring.get("kp_nothing") is None
    assert ring.lookups == 2


async def test_key_ring_records_last_use_in_one_batched_update(
    engine: Engine, db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    with db.begin() as session:
        ids = [api_keys.issue_api_key(session, box, partner, ACTOR)[0] for _ in range(3)]
    ring = KeyRing(db, box, clock=StepClock())
    for _ in range(50):
        for key_id in ids:
            await ring.mark_used(key_id)
    with db() as session:  # noted, not written: no round trip per request
        assert all(session.get_one(PartnerApiKey, k).last_used_at is None for k in ids)

    updates: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE"):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        await ring.stop()  # flushes what was noted, as the poller does every refresh_s
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(updates) == 1
    with db() as session:
        assert all(session.get_one(PartnerApiKey, k).last_used_at is not None for k in ids)


# --- nonces -------------------------------------------------------------------------------


async def test_nonce_replay_is_refused_across_store_instances(db: sessionmaker[Session]) -> None:
    worker_a, worker_b = nonces.PgNonceStore(db), nonces.PgNonceStore(db)
    expires = (T0 + timedelta(minutes=5)).timestamp()
    nonce = "n0nce-0123456789abcdef"
    assert await worker_a.remember("kp_a", nonce, expires) is True
    assert await worker_b.remember("kp_a", nonce, expires) is False
    assert await worker_a.remember("kp_a", nonce, expires) is False
    assert await worker_b.remember("kp_b", nonce, expires) is True  # nonces are per key


async def test_concurrent_replays_let_exactly_one_through(db: sessionmaker[Session]) -> None:
    stores = [nonces.PgNonceStore(db) for _ in range(4)]
    expires = (T0 + timedelta(minutes=5)).timestamp()
    results = await asyncio.gather(
        *(stores[i % 4].remember("kp_a", "same-nonce-0123456789", expires) for i in range(12))
    )
    assert results.count(True) == 1


async def test_batched_stores_refuse_replays_across_workers_and_within_a_batch(
    db: sessionmaker[Session],
) -> None:
    worker_a, worker_b = nonces.BatchedNonceStore(db), nonces.BatchedNonceStore(db)
    expires = (T0 + timedelta(minutes=5)).timestamp()
    same = "same-nonce-0123456789"
    results = await asyncio.gather(
        *((worker_a, worker_b)[i % 2].remember("kp_a", same, expires) for i in range(20))
    )
    assert results.count(True) == 1  # one winner across both workers and within batches
    assert await worker_b.remember("kp_b", same, expires) is True  # nonces are per key
    assert await worker_a.remember("kp_b", same, expires) is False


async def test_batched_store_writes_a_burst_in_few_round_trips(db: sessionmaker[Session]) -> None:
    store = nonces.BatchedNonceStore(db, max_batch=50)
    expires = (T0 + timedelta(minutes=5)).timestamp()
    results = await asyncio.gather(
        *(store.remember("kp_a", f"burst-{i:04d}-0123456789", expires) for i in range(200))
    )
    assert all(results)
    assert store.nonces == 200
    assert store.batches <= 10  # group commit: 200 requests, a handful of INSERTs
    with db() as session:
        assert session.scalar(select(func.count()).select_from(ApiNonce)) == 200


async def test_batched_store_fails_every_request_of_a_failed_batch(
    db: sessionmaker[Session],
) -> None:
    store = nonces.BatchedNonceStore(db)
    expires = (T0 + timedelta(minutes=5)).timestamp()
    too_long = "k" * 500  # longer than the column allows: the INSERT fails
    results = await asyncio.gather(
        store.remember(too_long, "n-0123456789abcdef", expires),
        store.remember(too_long, "m-0123456789abcdef", expires),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results)
    assert await store.remember("kp_a", "after-0123456789abc", expires) is True


def test_prune_forgets_only_expired_nonces(db: sessionmaker[Session]) -> None:
    with db.begin() as session:
        assert nonces.remember_nonce(session, "kp_a", "old-nonce-0123456789", T0)
        assert nonces.remember_nonce(session, "kp_a", "new-nonce-0123456789", T0 + timedelta(1))
    with db.begin() as session:
        assert nonces.prune_nonces(session, T0 + timedelta(seconds=1)) == 1
    with db() as session:
        assert session.scalars(select(ApiNonce.nonce)).all() == ["new-nonce-0123456789"]


async def test_store_prunes_every_nth_call(db: sessionmaker[Session]) -> None:
    with db.begin() as session:
        yesterday = datetime.now(UTC) - timedelta(days=1)
        nonces.remember_nonce(session, "kp_a", "ancient-0123456789ab", yesterday)
    store = nonces.PgNonceStore(db, prune_every=2)
    future = (datetime.now(UTC) + timedelta(minutes=5)).timestamp()
    await store.remember("kp_a", "fresh-1-0123456789ab", future)
    await store.remember("kp_a", "fresh-2-0123456789ab", future)
    with db() as session:
        assert session.scalar(select(func.count()).select_from(ApiNonce)) == 2


# --- cards --------------------------------------------------------------------------------

LIMITS: dict[str, Any] = {
    "bank": "Test Bank",
    "holder": "A HOLDER",
    "currency": "EUR",
    "expires_on": date(2031, 12, 31),
    "daily_limit_minor": 1_000_000,
    "monthly_limit_minor": 10_000_000,
    "daily_count_limit": 20,
    "monthly_count_limit": 300,
    "min_order_minor": 1_000,
    "max_order_minor": 500_000,
}


def add(db: sessionmaker[Session], box: SecretBox, pan: str = VISA, **overrides: Any) -> uuid.UUID:
    with db.begin() as session:
        return cards.add_card(
            session, box, pool_id="main", pan=pan, actor=ACTOR, **(LIMITS | overrides)
        )


def test_add_card_stores_the_number_sealed(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    card_id = add(db, box, "4111 1111 1111 1111")
    with db() as session:
        row = session.get_one(Card, card_id)
        assert VISA.encode() not in row.pan_encrypted
        assert row.pan_fingerprint == bytes.fromhex(box.pan_fingerprint(VISA))
        assert cards.card_pan(session, box, card_id) == VISA
        assert cards.card_pan(session, box, str(card_id)) == VISA
        assert cards.card_pan(session, box, "not-a-uuid") is None
        public = cards.card_public(session, str(card_id))
    assert public is not None
    assert (public.pan_masked, public.bank, public.holder) == (
        "411111******1111",
        "Test Bank",
        "A HOLDER",
    )
    assert VISA not in repr(public)
    (create,) = audit_rows(db, "card", str(card_id))
    assert create.action == "card.create"
    assert VISA not in everything_in_audit(db)


def test_the_same_card_cannot_be_added_twice(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    add(db, box)
    with db.begin() as session:
        cards.create_pool(session, pool_id="other", name="Other", actor=ACTOR)
    with pytest.raises(DuplicateCard) as refused, db.begin() as session:
        cards.add_card(
            session, box, pool_id="other", pan="4111-1111-1111-1111", actor=ACTOR, **LIMITS
        )
    assert refused.value.code == "duplicate_card"
    assert VISA not in str(refused.value)
    assert "411111******1111" in str(refused.value)


def test_card_refusals(db: sessionmaker[Session], box: SecretBox, partner: str) -> None:
    with pytest.raises(CardNumberChecksum):
        add(db, box, "4111111111111112")
    with pytest.raises(NotFound), db.begin() as session:
        cards.add_card(session, box, pool_id="nope", pan=VISA, actor=ACTOR, **LIMITS)
    for bad in (
        {"min_order_minor": 0},
        {"min_order_minor": 600_000},
        {"daily_limit_minor": 20_000_000},
        {"currency": "eur"},
    ):
        with pytest.raises(InvalidInput):
            add(db, box, **bad)
    with pytest.raises(AlreadyExists), db.begin() as session:
        cards.create_pool(session, pool_id="main", name="again", actor=ACTOR)
    with db() as session:
        assert cards.list_cards(session) == []


def test_card_config_and_audited_changes(
    db: sessionmaker[Session], box: SecretBox, partner: str
) -> None:
    card_id = add(db, box)
    add(db, box, MASTERCARD)
    with db() as session:
        config = cards.card_config(session, card_id)
        everything = cards.all_card_configs(session)
    assert config is not None
    assert (config.card_id, config.pool_id, config.pan_masked) == (
        str(card_id),
        "main",
        "411111******1111",
    )
    assert (config.status, config.version, config.holiday_until_ms) == (CardStatus.ACTIVE, 1, None)
    assert {c.card_id for c in everything} == {str(card_id), everything[1].card_id}

    until = T0 + timedelta(hours=6)
    with db.begin() as session:
        on_holiday = cards.set_card_holiday(
            session, card_id, until, actor="ops", expected_version=1
        )
    assert on_holiday.holiday_until_ms == int(until.timestamp() * 1000)
    assert on_holiday.version == 2
    with db.begin() as session:
        blocked = cards.set_card_status(session, card_id, "blocked", actor="ops")
        same = cards.set_card_status(session, card_id, "blocked", actor="ops")
    assert (blocked.status, blocked.version, same.version) == (CardStatus.BLOCKED, 3, 3)
    with db.begin() as session:
        with pytest.raises(StaleVersion):
            cards.set_card_status(session, card_id, "active", actor="ops", expected_version=2)
        with pytest.raises(InvalidInput):
            cards.set_card_status(session, card_id, "lost", actor="ops")
        with pytest.raises(NotFound):
            cards.set_card_status(session, uuid.uuid4(), "active", actor="ops")

    _, holiday, status = audit_rows(db, "card", str(card_id))
    assert (holiday.action, status.action) == ("card.holiday", "card.status")
    assert holiday.before is not None
    assert holiday.after is not None
    assert holiday.before["holiday_until_ms"] is None
    assert holiday.after["holiday_until_ms"] == int(until.timestamp() * 1000)
    assert status.before is not None
    assert status.after is not None
    assert (status.before["status"], status.after["status"]) == ("active", "blocked")
    assert VISA not in everything_in_audit(db)


# --- users and sessions -------------------------------------------------------------------

PASSWORD = "correct horse battery"


@pytest.fixture
def alice(db: sessionmaker[Session]) -> users.ConsoleUser:
    with db.begin() as session:
        return users.create_user(session, "Alice", PASSWORD, "operator", ACTOR)


def test_users_are_stored_with_argon2id(
    db: sessionmaker[Session], alice: users.ConsoleUser
) -> None:
    assert (alice.username, alice.role) == ("alice", "operator")
    with db() as session:
        stored = session.get_one(ConsoleUser, alice.id).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    (create,) = audit_rows(db, "user", str(alice.id))
    assert create.after == {"username": "alice", "role": "operator", "is_active": True}
    assert "$argon2" not in everything_in_audit(db)


def test_authenticate(db: sessionmaker[Session], alice: users.ConsoleUser) -> None:
    with db.begin() as session:
        assert users.authenticate(session, "alice", PASSWORD) == alice
        assert users.authenticate(session, " ALICE ", PASSWORD) == alice
        assert users.authenticate(session, "alice", PASSWORD + "!") is None
        assert users.authenticate(session, "nobody", PASSWORD) is None
        session.get_one(ConsoleUser, alice.id).is_active = False
    with db() as session:
        assert users.authenticate(session, "alice", PASSWORD) is None


def test_user_refusals(db: sessionmaker[Session], alice: users.ConsoleUser) -> None:
    with db.begin() as session:
        with pytest.raises(AlreadyExists):
            users.create_user(session, "alice", PASSWORD, "admin", ACTOR)
        with pytest.raises(InvalidInput):
            users.create_user(session, "bob", "short", "admin", ACTOR)
        with pytest.raises(InvalidInput):
            users.create_user(session, "bob", PASSWORD, "root", ACTOR)
        with pytest.raises(InvalidInput):
            users.create_user(session, "bob smith", PASSWORD, "admin", ACTOR)


def test_session_lifecycle(db: sessionmaker[Session], alice: users.ConsoleUser) -> None:
    with db.begin() as session:
        token = sessions.open_session(session, alice.id, T0, idle_s=600, absolute_s=3600)
    assert len(token) >= 43
    with db() as session:
        (row,) = session.scalars(select(ConsoleSession)).all()
    assert row.token_sha256 == sessions.token_digest(token)
    assert token.encode() not in row.token_sha256
    assert row.expires_at == T0 + timedelta(hours=1)

    with db.begin() as session:
        assert sessions.session_user(session, token, T0 + timedelta(minutes=5), 600) == alice
    with db() as session:
        seen = session.scalars(select(ConsoleSession.last_seen_at)).one()
    assert seen == T0 + timedelta(minutes=5)

    with db.begin() as session:
        assert sessions.session_user(session, "wrong" + token, T0, 600) is None
        assert sessions.session_user(session, "x" * 500, T0, 600) is None
        assert sessions.close_session(session, token, T0 + timedelta(minutes=6)) is True
        assert sessions.close_session(session, token, T0 + timedelta(minutes=7)) is False
    with db() as session:
        assert sessions.session_user(session, token, T0 + timedelta(minutes=6), 600) is None


def test_idle_timeout(db: sessionmaker[Session], alice: users.ConsoleUser) -> None:
    with db.begin() as session:
        token = sessions.open_session(session, alice.id, T0, idle_s=600, absolute_s=3600)
    with db.begin() as session:
        assert sessions.session_user(session, token, T0 + timedelta(seconds=599), 600) == alice
    with db.begin() as session:  # idle measured from the last use, not from the login
        assert sessions.session_user(session, token, T0 + timedelta(seconds=1198), 600) == alice
    with db.begin() as session:
        assert sessions.session_user(session, token, T0 + timedelta(seconds=1798), 600) is None


def test_absolute_timeout_despite_activity(
    db: sessionmaker[Session], alice: users.ConsoleUser
) -> None:
    with db.begin() as session:
        token = sessions.open_session(session, alice.id, T0, idle_s=600, absolute_s=1800)
    for minute in (5, 10, 15, 20, 25):
        with db.begin() as session:
            moment = T0 + timedelta(minutes=minute)
            assert sessions.session_user(session, token, moment, 600) == alice
    with db.begin() as session:
        assert sessions.session_user(session, token, T0 + timedelta(minutes=30), 600) is None
    with db.begin() as session:
        assert sessions.prune_sessions(session, T0 + timedelta(minutes=31)) == 1


def test_password_change_revokes_sessions(
    db: sessionmaker[Session], alice: users.ConsoleUser
) -> None:
    with db.begin() as session:
        token = sessions.open_session(session, alice.id, T0, idle_s=600, absolute_s=3600)
    with db.begin() as session:
        assert not users.change_password(
            session, alice.id, "wrong password!", "new password 123", actor="alice"
        )
    with db.begin() as session:
        assert sessions.session_user(session, token, T0, 600) == alice
        assert users.change_password(
            session, alice.id, PASSWORD, "new password 123", actor="alice", now=T0
        )
    with db.begin() as session:
        assert sessions.session_user(session, token, T0 + timedelta(seconds=1), 600) is None
        assert users.authenticate(session, "alice", PASSWORD) is None
        assert users.authenticate(session, "alice", "new password 123") is not None
    assert audit_rows(db, "user", str(alice.id))[-1].action == "user.password_change"
    assert "new password 123" not in everything_in_audit(db)


def test_sessions_only_for_active_users(
    db: sessionmaker[Session], alice: users.ConsoleUser
) -> None:
    with db.begin() as session:
        token = sessions.open_session(session, alice.id, T0, idle_s=600, absolute_s=3600)
        session.get_one(ConsoleUser, alice.id).is_active = False
    with db.begin() as session:
        assert sessions.session_user(session, token, T0, 600) is None
        with pytest.raises(InvalidInput):
            sessions.open_session(session, alice.id, T0, idle_s=600, absolute_s=3600)
        with pytest.raises(NotFound):
            sessions.open_session(session, uuid.uuid4(), T0, idle_s=600, absolute_s=3600)


# --- orders and balances ------------------------------------------------------------------


def order_row(partner_id: str, minute: int, **overrides: Any) -> dict[str, Any]:
    created = T0 + timedelta(minutes=minute)
    row: dict[str, Any] = {
        "uid": uuid.uuid4(),
        "partner_id": partner_id,
        "partner_order_id": f"po-{minute}-{uuid.uuid4().hex[:6]}",
        "direction": "deposit",
        "status": "new",
        "amount_minor": 10_000 + minute,
        "fee_minor": 250,
        "currency": "EUR",
        "expires_at": created + timedelta(minutes=15),
        "created_at": created,
        "updated_at": created,
        "version": 1,
    }
    return row | overrides


@pytest.fixture
def order_rows(db: sessionmaker[Session], partner: str) -> list[dict[str, Any]]:
    """Seven acme orders (two share a created_at), and one of another partner."""
    with db.begin() as session:
        partners.create_partner(
            session,
            partner_id="other",
            name="O",
            deposit_fee_bp=0,
            withdrawal_fee_bp=0,
            actor=ACTOR,
        )
    rows = [
        order_row(partner, 0),
        order_row(partner, 1, status="approved"),
        order_row(partner, 2, direction="withdrawal", status="processing"),
        order_row(partner, 3),
        order_row(partner, 3, status="expired"),
        order_row(partner, 4, direction="withdrawal"),
        order_row(partner, 5),
        order_row("other", 2),
    ]
    with db.begin() as session:
        session.execute(insert(Order), rows)
    return rows


def page_through(db: sessionmaker[Session], limit: int, **filters: Any) -> list[list[uuid.UUID]]:
    pages, after = [], None
    while True:
        with db() as session:
            page = orders.list_orders(session, limit=limit, after=after, **filters)
        pages.append([item.uid for item in page.items])
        if page.next_after is None:
            return pages
        after = page.next_after


def newest_first(rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    ordered = sorted(rows, key=lambda row: (row["created_at"], row["uid"]), reverse=True)
    return [row["uid"] for row in ordered]


def test_list_orders_pages_newest_first_without_gaps_or_repeats(
    db: sessionmaker[Session], order_rows: list[dict[str, Any]]
) -> None:
    acme = [row for row in order_rows if row["partner_id"] == "acme"]
    pages = page_through(db, 2, partner_id="acme")
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [uid for page in pages for uid in page] == newest_first(acme)
    assert [uid for page in page_through(db, 7, partner_id="acme") for uid in page] == (
        newest_first(acme)
    )
    everyone = page_through(db, 500, partner_id=None)
    assert len(everyone) == 1
    assert len(everyone[0]) == 8


def test_list_orders_filters(db: sessionmaker[Session], order_rows: list[dict[str, Any]]) -> None:
    def uids(**filters: Any) -> set[uuid.UUID]:
        with db() as session:
            page = orders.list_orders(session, partner_id="acme", **filters)
        return {item.uid for item in page.items}

    def expected(keep: Any) -> set[uuid.UUID]:
        return {r["uid"] for r in order_rows if r["partner_id"] == "acme" and keep(r)}

    assert uids(status="new") == expected(lambda r: r["status"] == "new")
    assert uids(status=["new", "processing"]) == expected(
        lambda r: r["status"] in ("new", "processing")
    )
    assert uids(direction="withdrawal") == expected(lambda r: r["direction"] == "withdrawal")
    start, end = T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)
    assert uids(created_from=start, created_to=end) == expected(
        lambda r: start <= r["created_at"] < end
    )
    assert uids(status="new", direction="deposit", created_from=start) == expected(
        lambda r: r["status"] == "new" and r["direction"] == "deposit" and r["created_at"] >= start
    )
    with db() as session:
        assert orders.list_orders(session, partner_id="ghost").items == []


@pytest.mark.parametrize(
    "cursor", ["", "garbage", "1_2", "123_" + "g" * 32, "9" * 30 + "_" + "a" * 32]
)
def test_list_orders_refuses_a_forged_cursor(
    db: sessionmaker[Session], order_rows: list[dict[str, Any]], cursor: str
) -> None:
    with db() as session, pytest.raises(orders.InvalidCursor) as refused:
        orders.list_orders(session, partner_id="acme", after=cursor)
    assert refused.value.code == "invalid_cursor"


def test_list_orders_refuses_silly_limits(db: sessionmaker[Session]) -> None:
    with db() as session:
        for limit in (0, -1, orders.MAX_PAGE + 1):
            with pytest.raises(InvalidInput):
                orders.list_orders(session, partner_id="acme", limit=limit)


def test_get_order_and_its_events(
    db: sessionmaker[Session], box: SecretBox, order_rows: list[dict[str, Any]]
) -> None:
    first = order_rows[0]
    with db() as session:
        view = orders.get_order(session, first["uid"])
        assert orders.get_order(session, str(first["uid"]), partner_id="acme") == view
        assert orders.get_order(session, first["uid"], partner_id="other") is None
        assert orders.get_order(session, uuid.uuid4()) is None
        assert orders.get_order(session, "nonsense") is None
    assert view is not None
    assert (view.partner_id, view.amount_minor, view.currency, view.status) == (
        "acme",
        first["amount_minor"],
        "EUR",
        "new",
    )

    uid = first["uid"]
    events = [
        {"event_id": uuid.uuid4(), "order_uid": uid, "seq": seq, "type": kind, "occurred_at": T0}
        for seq, kind in ((2, "order.created"), (1, "order.opened"))
    ]
    with db.begin() as session:
        session.execute(insert(OrderEvent), events)
    with db() as session:
        history = orders.order_events(session, uid)
        assert orders.order_events(session, "nonsense") == []
    assert [(e.seq, e.type) for e in history] == [(1, "order.opened"), (2, "order.created")]


def test_order_payer_card_opens_only_the_sealed_withdrawal_card(
    db: sessionmaker[Session], box: SecretBox, order_rows: list[dict[str, Any]]
) -> None:
    withdrawal = order_rows[5]
    with db.begin() as session:
        row = session.get_one(Order, withdrawal["uid"])
        row.payer_card_masked = "555555******4444"
        row.payer_card_encrypted = box.seal(MASTERCARD)
    with db() as session:
        assert orders.order_payer_card(session, box, withdrawal["uid"]) == MASTERCARD
        assert orders.order_payer_card(session, box, order_rows[0]["uid"]) is None
        view = orders.get_order(session, withdrawal["uid"])
    assert view is not None
    assert view.payer_card_masked == "555555******4444"
    assert MASTERCARD not in repr(view)


def test_partner_balances(db: sessionmaker[Session], partner: str) -> None:
    with db.begin() as session:
        session.execute(
            insert(BalanceSnapshot),
            [
                {
                    "partner_id": partner,
                    "currency": "USD",
                    "available_minor": 5,
                    "held_minor": 0,
                    "version": 3,
                },
                {
                    "partner_id": partner,
                    "currency": "EUR",
                    "available_minor": 100,
                    "held_minor": 25,
                    "version": 7,
                },
            ],
        )
    with db() as session:
        rows = balances.partner_balances(session, partner)
        assert balances.partner_balances(session, "ghost") == []
    assert [(r.currency, r.available_minor, r.held_minor, r.version) for r in rows] == [
        ("EUR", 100, 25, 7),
        ("USD", 5, 0, 3),
    ]


def test_a_partner_moves_to_another_pool_only_with_no_money_and_no_open_order(
    db: sessionmaker[Session], partner: str
) -> None:
    """Its balance lives at its pool's desk (ADR 0005): moving would split its money."""
    with db.begin() as session:
        cards.create_pool(session, pool_id="spare", name="Spare", actor=ACTOR)
    opened = order_row(partner, 0)
    with db.begin() as session:
        session.execute(insert(Order), [opened])
    with db.begin() as session, pytest.raises(PartnerBusy, match="1 open orders"):
        partners.update_partner(session, partner, actor=ACTOR, pool_id="spare")

    balance = {"partner_id": partner, "currency": "EUR", "held_minor": 0, "version": 1}
    with db.begin() as session:
        session.execute(update(Order).values(status="expired").where(Order.uid == opened["uid"]))
        session.execute(insert(BalanceSnapshot), [balance | {"available_minor": 100}])
    with db.begin() as session, pytest.raises(PartnerBusy, match="balance in 1 currencies"):
        partners.update_partner(session, partner, actor=ACTOR, pool_id="spare")

    with db.begin() as session:
        session.execute(update(BalanceSnapshot).values(available_minor=0))
    with db.begin() as session:
        moved = partners.update_partner(session, partner, actor=ACTOR, pool_id="spare")
        same = partners.update_partner(session, partner, actor=ACTOR, pool_id="spare", name="A")
    assert (moved.pool_id, same.name) == ("spare", "A")
