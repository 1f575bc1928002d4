"""Repository functions the console added: key rotation, card updates, user roles and
activation; each audited, each refusing bad input without changing anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from db.crypto import SecretBox
from db.engine import make_engine, session_factory
from db.models import AuditLog
from db.repositories import api_keys, cards, partners, sessions, users
from db.repositories.errors import InvalidInput, NotFound, StaleVersion

pytestmark = pytest.mark.integration

ACTOR = "root"
PASSWORD = "correct horse battery staple"
LIMITS = {
    "daily_limit_minor": 1_000_000,
    "monthly_limit_minor": 10_000_000,
    "daily_count_limit": 10,
    "monthly_count_limit": 100,
    "min_order_minor": 100,
    "max_order_minor": 500_000,
}


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
def card(db: sessionmaker[Session], box: SecretBox) -> str:
    with db.begin() as s:
        cards.create_pool(s, pool_id="main", name="Main", actor=ACTOR)
        partners.create_partner(
            s, partner_id="acme", name="Acme", deposit_fee_bp=250, withdrawal_fee_bp=150,
            pool_id="main", actor=ACTOR,
        )  # fmt: skip
        card_id = cards.add_card(
            s, box, pool_id="main", pan="4111111111111111", bank="Bank", holder="A HOLDER",
            currency="EUR", expires_on=date(2030, 12, 31), actor=ACTOR, **LIMITS,
        )  # fmt: skip
    return str(card_id)


def actions(db: sessionmaker[Session]) -> list[str]:
    with db() as s:
        return list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_rotate_replaces_a_key_at_once(db: sessionmaker[Session], box: SecretBox, card: str):
    with db.begin() as s:
        old, _ = api_keys.issue_api_key(s, box, "acme", ACTOR)
    with db.begin() as s:
        new, secret = api_keys.rotate_api_key(s, box, old, ACTOR)
    with db() as s:
        assert api_keys.find_api_key(s, box, old).active is False  # type: ignore[union-attr]
        fresh = api_keys.find_api_key(s, box, new)
        assert fresh is not None
        assert fresh.active
        assert fresh.secret == secret.encode()
        assert [k.key_id for k in api_keys.list_all_api_keys(s) if k.status == "active"] == [new]
    assert actions(db)[-3:] == ["api_key.issue", "api_key.revoke", "api_key.rotate"]
    with db.begin() as s, pytest.raises(InvalidInput):
        api_keys.rotate_api_key(s, box, old, ACTOR)
    with db.begin() as s, pytest.raises(NotFound):
        api_keys.rotate_api_key(s, box, "kp_nope", ACTOR)


def test_update_card_limits_and_expiry(db: sessionmaker[Session], card: str):
    changed = {**LIMITS, "daily_limit_minor": 2_000_000}
    with db.begin() as s:
        config = cards.update_card(
            s, card, actor=ACTOR, expected_version=1, expires_on=date(2031, 6, 30), **changed
        )
    assert (config.daily_limit_minor, config.expires_on, config.version) == (
        2_000_000, date(2031, 6, 30), 2,
    )  # fmt: skip
    with db() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.action == "card.update")).one()
    assert row.before is not None
    assert row.after is not None
    assert (row.before["daily_limit_minor"], row.after["daily_limit_minor"]) == (
        1_000_000, 2_000_000,
    )  # fmt: skip
    assert "4111111111111111" not in str(row.before) + str(row.after)

    for bad in ({**changed, "daily_limit_minor": -1}, {**changed, "min_order_minor": 10**9}):
        with db.begin() as s, pytest.raises(InvalidInput):
            cards.update_card(s, card, actor=ACTOR, expires_on=date(2031, 6, 30), **bad)
    with db.begin() as s, pytest.raises(StaleVersion):
        cards.update_card(s, card, actor=ACTOR, expected_version=1, expires_on=date(2031, 6, 30),
                          **changed)  # fmt: skip
    with db() as s:
        assert cards.card_config(s, card).version == 2  # type: ignore[union-attr]


def test_roles_and_deactivation(db: sessionmaker[Session]):
    with db.begin() as s:
        users.create_user(s, "olga", PASSWORD, "operator", ACTOR)
        token = sessions.open_session(
            s,
            users.get_user(s, "olga").id,
            datetime.now(UTC),
            600,
            3600,  # type: ignore[union-attr]
        )
    with db.begin() as s:
        assert users.set_user_role(s, "olga", "analyst", actor=ACTOR) is True
        assert users.set_user_role(s, "olga", "analyst", actor=ACTOR) is False
    with db.begin() as s, pytest.raises(InvalidInput):
        users.set_user_role(s, "olga", "root", actor=ACTOR)
    with db.begin() as s:
        assert sessions.session_user(s, token, datetime.now(UTC), 600).role == "analyst"  # type: ignore[union-attr]
        assert users.set_user_active(s, "olga", False, actor=ACTOR) is True
    with db.begin() as s:
        assert sessions.session_user(s, token, datetime.now(UTC), 600) is None
        assert users.authenticate(s, "olga", PASSWORD) is None
        [info] = users.list_users(s)
        assert (info.username, info.role, info.is_active) == ("olga", "analyst", False)
        assert users.set_user_active(s, "olga", True, actor=ACTOR) is True
    with db.begin() as s, pytest.raises(NotFound):
        users.set_user_role(s, "nobody", "admin", actor=ACTOR)
    assert actions(db) == ["user.create", "user.role", "user.deactivate", "user.activate"]


def test_peek_does_not_extend_a_session(db: sessionmaker[Session]):
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with db.begin() as s:
        user = users.create_user(s, "ann", PASSWORD, "analyst", ACTOR)
        token = sessions.open_session(s, user.id, t0, 600, 3600)
    later = t0.replace(minute=9)
    with db.begin() as s:
        assert sessions.peek_session_user(s, token, later, 600) is not None
    with db.begin() as s:  # the peek did not count as activity: idle since t0
        assert sessions.peek_session_user(s, token, t0.replace(minute=11), 600) is None
        assert sessions.peek_session_user(s, "not-a-token", later, 600) is None
