"""The migrations build the schema the models describe, and its constraints really bite.

Every refusal is asserted by constraint (or trigger) name, so a test cannot pass because the
row was rejected for some unrelated reason; each refusal also has an accepted twin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, Table, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.orm import selectinload

from db.engine import make_engine, session_factory
from db.migrate import alembic_config, downgrade, upgrade
from db.models import (
    ApiNonce,
    AuditLog,
    BalanceSnapshot,
    Base,
    Card,
    CardPool,
    ConsoleSession,
    ConsoleUser,
    LedgerPosting,
    LoginChallenge,
    Order,
    OrderEvent,
    Partner,
    RecoveryCode,
    SecondFactor,
)

pytestmark = pytest.mark.integration

PARTNER = "acme"
KEEPER_FUNCTIONS = {"keeper_reject_mutation", "keeper_ledger_transaction_balanced"}


def table(model: type[Base]) -> Table:
    return model.__table__  # type: ignore[return-value]


def insert(engine: Engine, model: type[Base], **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(table(model).insert().values(**values))


def refused(engine: Engine, constraint: str, model: type[Base], **values: Any) -> None:
    with pytest.raises(IntegrityError, match=constraint):
        insert(engine, model, **values)


def order_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uid": uuid.uuid4(),
        "partner_id": PARTNER,
        "partner_order_id": f"po-{uuid.uuid4().hex[:8]}",
        "direction": "deposit",
        "status": "new",
        "amount_minor": 10_000,
        "fee_minor": 150,
        "currency": "USD",
        "expires_at": datetime.now(UTC) + timedelta(minutes=15),
        "version": 1,
    }
    return row | overrides


def leg(order_uid: uuid.UUID, account: str, amount_minor: int, **overrides: Any) -> dict[str, Any]:
    partner = account.split(":")[1] if account.startswith("partner:") else None
    row: dict[str, Any] = {
        "posting_id": uuid.uuid4(),
        "order_uid": order_uid,
        "kind": "hold",
        "account": account,
        "partner_id": partner,
        "currency": "USD",
        "amount_minor": amount_minor,
    }
    return row | overrides


def hold(order_uid: uuid.UUID, amount_minor: int = 1_000) -> list[dict[str, Any]]:
    return [
        leg(order_uid, f"partner:{PARTNER}:available", -amount_minor),
        leg(order_uid, f"partner:{PARTNER}:held", amount_minor),
    ]


def card_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "pool_id": "main",
        "pan_encrypted": b"ciphertext",
        "pan_masked": "411111******1111",
        "pan_fingerprint": uuid.uuid4().bytes,
        "bank": "Test Bank",
        "holder": "A HOLDER",
        "currency": "USD",
        "expires_on": date(2030, 12, 31),
        "daily_limit_minor": 1_000_000,
        "monthly_limit_minor": 10_000_000,
        "daily_count_limit": 20,
        "monthly_count_limit": 300,
        "min_order_minor": 1_000,
        "max_order_minor": 500_000,
    }
    return row | overrides


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    """Engine on a migrated database holding one pool and one partner."""
    engine = make_engine(migrated_database_url)
    insert(engine, CardPool, id="main", name="Main pool")
    insert(
        engine,
        Partner,
        id=PARTNER,
        name="Acme",
        deposit_fee_bp=150,
        withdrawal_fee_bp=200,
        pool_id="main",
    )
    yield engine
    engine.dispose()


# --- migrations ---------------------------------------------------------------------------


def schema_objects(url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            functions = set(
                conn.scalars(text("SELECT proname FROM pg_proc WHERE proname LIKE 'keeper\\_%'"))
            )
    finally:
        engine.dispose()
    return tables, functions


def test_upgrade_downgrade_upgrade_round_trip(fresh_database_url: str) -> None:
    model_tables = set(Base.metadata.tables)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    upgrade(fresh_database_url)
    assert schema_objects(fresh_database_url) == (
        model_tables | {"alembic_version"},
        KEEPER_FUNCTIONS,
    )

    downgrade(fresh_database_url, "base")
    assert schema_objects(fresh_database_url) == ({"alembic_version"}, set())

    upgrade(fresh_database_url)
    assert schema_objects(fresh_database_url) == (
        model_tables | {"alembic_version"},
        KEEPER_FUNCTIONS,
    )
    engine = make_engine(fresh_database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
    engine.dispose()


def test_revision_0002_downgrades_to_0001(fresh_database_url: str) -> None:
    upgrade(fresh_database_url, "head")
    downgrade(fresh_database_url, "0001")
    tables, _ = schema_objects(fresh_database_url)
    assert not tables & {"console_sessions", "api_nonces"}
    engine = make_engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            columns = {column["name"] for column in inspect(conn).get_columns("orders")}
    finally:
        engine.dispose()
    assert "payer_card_encrypted" not in columns
    assert "payer_card_masked" in columns


def schema_diff(url: str, metadata: MetaData) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_migrated_schema_matches_models(migrated_database_url: str) -> None:
    assert schema_diff(migrated_database_url, Base.metadata) == []


def test_schema_comparison_is_not_vacuous(migrated_database_url: str) -> None:
    removed = {
        diff[1].name
        for diff in schema_diff(migrated_database_url, MetaData())
        if diff[0] == "remove_table"
    }
    assert removed == set(Base.metadata.tables)


# --- the models map onto the migrated schema ----------------------------------------------


def test_orm_bumps_version_and_refuses_lazy_loads(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions.begin() as session:
        partner = session.get_one(Partner, PARTNER)
        assert partner.version == 1
        partner.name = "Acme Ltd"
    assert partner.version == 2  # optimistic lock: a concurrent editor would now conflict

    with sessions() as session:
        partner = session.get_one(Partner, PARTNER)
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = partner.pool
        loaded = session.scalars(
            select(Partner).options(selectinload(Partner.pool)).where(Partner.id == PARTNER)
        ).one()
        assert loaded.pool is not None
        assert loaded.pool.id == "main"


# --- orders and partners ------------------------------------------------------------------


def test_valid_order_is_accepted(engine: Engine) -> None:
    insert(engine, Order, **order_row())


@pytest.mark.parametrize("amount_minor", [0, -1, -10_000])
def test_order_amount_must_be_positive(engine: Engine, amount_minor: int) -> None:
    refused(engine, "ck_orders_amount_positive", Order, **order_row(amount_minor=amount_minor))


def test_order_fee_cannot_be_negative(engine: Engine) -> None:
    refused(engine, "ck_orders_fee_non_negative", Order, **order_row(fee_minor=-1))


@pytest.mark.parametrize("currency", ["usd", "US1"])
def test_order_currency_must_be_iso4217(engine: Engine, currency: str) -> None:
    refused(engine, "ck_orders_currency_iso4217", Order, **order_row(currency=currency))


def test_order_status_must_be_known(engine: Engine) -> None:
    refused(engine, "ck_orders_status", Order, **order_row(status="paid"))


def test_partner_order_id_is_unique_per_partner(engine: Engine) -> None:
    insert(engine, Order, **order_row(partner_order_id="po-1"))
    refused(
        engine,
        "uq_orders_partner_id_partner_order_id",
        Order,
        **order_row(partner_order_id="po-1"),
    )


@pytest.mark.parametrize("column", ["deposit_fee_bp", "withdrawal_fee_bp"])
@pytest.mark.parametrize("fee_bp", [10_001, -1])
def test_partner_fee_bp_range(engine: Engine, column: str, fee_bp: int) -> None:
    values = {"name": "P", "deposit_fee_bp": 0, "withdrawal_fee_bp": 10_000}
    insert(engine, Partner, id="edge", **values)
    refused(engine, f"ck_partners_{column}_range", Partner, id="bad", **(values | {column: fee_bp}))


# --- cards and users ----------------------------------------------------------------------


def test_card_fingerprint_is_unique(engine: Engine) -> None:
    fingerprint = uuid.uuid4().bytes
    insert(engine, Card, **card_row(pan_fingerprint=fingerprint))
    refused(engine, "uq_cards_pan_fingerprint", Card, **card_row(pan_fingerprint=fingerprint))


def test_card_min_order_cannot_exceed_max(engine: Engine) -> None:
    refused(engine, "ck_cards_order_range", Card, **card_row(min_order_minor=10, max_order_minor=9))


def test_card_masked_pan_never_holds_a_full_pan(engine: Engine) -> None:
    refused(engine, "ck_cards_pan_masked_format", Card, **card_row(pan_masked="4111111111111111"))


def test_console_password_must_be_argon2id(engine: Engine) -> None:
    user = {"username": "ops", "role": "operator"}
    insert(
        engine, ConsoleUser, password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", **user
    )
    refused(
        engine,
        "ck_console_users_password_hash_argon2id",
        ConsoleUser,
        **(user | {"username": "ops2", "password_hash": "hunter2"}),
    )


def test_console_session_stores_a_32_byte_digest(engine: Engine) -> None:
    user_id = uuid.uuid4()
    insert(
        engine,
        ConsoleUser,
        id=user_id,
        username="ops",
        role="operator",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    )
    now = datetime.now(UTC)
    row = {"user_id": user_id, "expires_at": now + timedelta(hours=1)}
    insert(engine, ConsoleSession, token_sha256=bytes(32), **row)
    refused(
        engine,
        "ck_console_sessions_token_sha256_length",
        ConsoleSession,
        token_sha256=b"a-raw-token",
        **row,
    )
    refused(
        engine,
        "ck_console_sessions_expires_after_created",
        ConsoleSession,
        token_sha256=bytes([1] * 32),
        **(row | {"expires_at": now - timedelta(hours=1)}),
    )


def test_second_factor_rows_hold_nothing_usable_in_clear(engine: Engine) -> None:
    """Recovery codes only as argon2id hashes, one lookup per user; challenges only as a
    32-byte digest; a step is never negative."""
    user_id = uuid.uuid4()
    hashed = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    insert(engine, ConsoleUser, id=user_id, username="ops", role="admin", password_hash=hashed)
    insert(engine, SecondFactor, user_id=user_id, secret_sealed="gAAAA-sealed", last_step=1)
    code = {"user_id": user_id, "lookup": "abcd"}
    insert(engine, RecoveryCode, code_hash=hashed, **code)
    refused(
        engine, "uq_console_recovery_codes_user_id_lookup", RecoveryCode, code_hash=hashed, **code
    )
    refused(
        engine,
        "ck_console_recovery_codes_code_hash_argon2id",
        RecoveryCode,
        code_hash="abcd-efgh-jkmn",
        **(code | {"lookup": "efgh"}),
    )
    now = datetime.now(UTC)
    challenge = {"user_id": user_id, "expires_at": now + timedelta(minutes=5)}
    refused(
        engine,
        "ck_login_challenges_token_sha256_length",
        LoginChallenge,
        token_sha256=b"a-raw-token",
        **challenge,
    )
    with engine.begin() as conn:
        conn.execute(table(ConsoleUser).delete())  # a user's factor, codes go with the user
        left = conn.execute(select(func.count()).select_from(table(RecoveryCode))).scalar_one()
    assert left == 0


def test_a_nonce_is_recorded_once_per_key(engine: Engine) -> None:
    row = {"key_id": "kp_1", "nonce": "n" * 16, "expires_at": datetime.now(UTC)}
    insert(engine, ApiNonce, **row)
    insert(engine, ApiNonce, **(row | {"key_id": "kp_2"}))
    refused(engine, "pk_api_nonces", ApiNonce, **row)
    refused(engine, "ck_api_nonces_nonce_length", ApiNonce, **(row | {"nonce": "n" * 65}))


# --- balances -----------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["available_minor", "held_minor"])
def test_balance_snapshot_cannot_go_negative(engine: Engine, column: str) -> None:
    base = {"partner_id": PARTNER, "available_minor": 0, "held_minor": 0, "version": 1}
    insert(engine, BalanceSnapshot, currency="USD", **base)
    refused(
        engine,
        f"ck_balance_snapshots_{column.removesuffix('_minor')}_non_negative",
        BalanceSnapshot,
        currency="EUR",
        **(base | {column: -1}),
    )


# --- events -------------------------------------------------------------------------------


def event_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "order_uid": uuid.uuid4(),
        "seq": 1,
        "type": "OrderCreated",
        "payload": {"amount_minor": 10_000},
        "occurred_at": datetime.now(UTC),
    }
    return row | overrides


def test_duplicate_event_id_is_refused(engine: Engine) -> None:
    event = event_row()
    insert(engine, OrderEvent, **event)
    refused(engine, "pk_order_events", OrderEvent, **(event | {"seq": 2}))


def test_redelivered_event_is_a_no_op_with_on_conflict(engine: Engine) -> None:
    event = event_row()
    statement = table(OrderEvent).insert().values(**event)
    with engine.begin() as conn:
        conn.execute(statement)
        duplicate = conn.execute(
            text(
                "INSERT INTO order_events (event_id, order_uid, seq, type, occurred_at)"
                " VALUES (:event_id, :order_uid, :seq, :type, now())"
                " ON CONFLICT (event_id) DO NOTHING"
            ),
            {k: event[k] for k in ("event_id", "order_uid", "seq", "type")},
        )
        assert duplicate.rowcount == 0


def test_one_history_per_order(engine: Engine) -> None:
    event = event_row()
    insert(engine, OrderEvent, **event)
    refused(
        engine, "uq_order_events_order_uid_seq", OrderEvent, **(event | {"event_id": uuid.uuid4()})
    )


# --- ledger -------------------------------------------------------------------------------


def post(engine: Engine, legs: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(table(LedgerPosting).insert(), legs)


def posting_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table(LedgerPosting))) or 0


def test_balanced_transaction_commits(engine: Engine) -> None:
    order_uid = uuid.uuid4()
    post(engine, hold(order_uid))
    post(
        engine,
        [
            leg(order_uid, f"partner:{PARTNER}:held", -1_000, kind="capture"),
            leg(order_uid, "system:fees", 15, kind="capture"),
            leg(order_uid, "external:settlement", 985, kind="capture"),
        ],
    )
    assert posting_count(engine) == 5


@pytest.mark.parametrize(
    "legs",
    [
        pytest.param(
            lambda o: [leg(o, "system:fees", 100), leg(o, "external:settlement", -90)],
            id="off-by-10",
        ),
        pytest.param(lambda o: [leg(o, "system:fees", 100)], id="single-leg"),
        pytest.param(
            lambda o: [
                leg(o, "system:fees", 100, currency="USD"),
                leg(o, "external:settlement", -100, currency="EUR"),
            ],
            id="cross-currency",
        ),
    ],
)
def test_unbalanced_transaction_is_refused_at_commit(
    engine: Engine, legs: Callable[[uuid.UUID], list[dict[str, Any]]]
) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(table(LedgerPosting).insert(), legs(uuid.uuid4()))  # accepted for now...
        with pytest.raises(IntegrityError, match="does not balance"):
            transaction.commit()  # ...but not at COMMIT
    assert posting_count(engine) == 0


def test_two_transactions_of_one_kind_per_order_are_refused(engine: Engine) -> None:
    order_uid = uuid.uuid4()
    post(engine, hold(order_uid))
    with pytest.raises(IntegrityError, match="uq_ledger_postings_order_uid_kind_account"):
        post(engine, hold(order_uid))
    assert posting_count(engine) == 2


def test_zero_leg_is_refused(engine: Engine) -> None:
    order_uid = uuid.uuid4()
    with pytest.raises(IntegrityError, match="ck_ledger_postings_amount_non_zero"):
        post(engine, [*hold(order_uid), leg(order_uid, "system:fees", 0)])


def test_partner_account_must_match_partner_id(engine: Engine) -> None:
    order_uid = uuid.uuid4()
    legs = hold(order_uid)
    legs[1]["account"] = "partner:other:held"
    with pytest.raises(IntegrityError, match="ck_ledger_postings_partner_matches_account"):
        post(engine, legs)


# --- append-only tables -------------------------------------------------------------------


@pytest.fixture
def history(engine: Engine) -> Engine:
    """One row in each append-only table."""
    post(engine, hold(uuid.uuid4()))
    insert(engine, OrderEvent, **event_row())
    insert(
        engine,
        AuditLog,
        actor="admin",
        action="partner.create",
        entity="partner",
        entity_id=PARTNER,
        after={"id": PARTNER},
    )
    return engine


APPEND_ONLY = ["audit_log", "ledger_postings", "order_events"]
MUTATIONS = {
    "update": "UPDATE {table} SET {column} = {column}",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
}
SOME_COLUMN = {"audit_log": "actor", "ledger_postings": "account", "order_events": "type"}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("table_name", APPEND_ONLY)
def test_history_is_append_only(history: Engine, table_name: str, mutation: str) -> None:
    statement = MUTATIONS[mutation].format(table=table_name, column=SOME_COLUMN[table_name])
    with pytest.raises(IntegrityError, match="append-only"), history.begin() as conn:
        conn.execute(text(statement))
    with history.connect() as conn:
        assert conn.scalar(text(f"SELECT count(*) FROM {table_name}")) >= 1
