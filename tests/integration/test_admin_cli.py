"""``python -m ops_console.admin_cli`` against a migrated PostgreSQL and the real broker.

Topics carry a per-test prefix, so what is read back from ``<prefix>config-cards`` is exactly
what this test published. Every test also checks what the CLI printed: a card number or a
secret may appear only where the CLI shows a freshly issued key secret, once.
"""

from __future__ import annotations

import asyncio
import io
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, select, text

from db.crypto import SecretBox
from db.engine import make_engine, session_factory
from db.models import AuditLog, Card, CardPool, ConsoleUser, Partner, PartnerApiKey
from db.repositories import api_keys, cards
from ops_console import admin_cli
from schemas.cards import CardConfigured, PartnerConfigured
from schemas.registry import decode

pytestmark = pytest.mark.integration

DEMO_PANS = [pan for pan, _, _ in admin_cli.DEMO_CARDS]
VISA_DEBIT = "4000056655665556"
CARD_ARGS = [
    "add-card",
    "--pool",
    "main",
    "--bank",
    "Bank",
    "--holder",
    "A HOLDER",
    "--currency",
    "EUR",
    "--expires",
    "12/31",
    "--daily-limit-minor",
    "100000",
    "--monthly-limit-minor",
    "1000000",
    "--daily-count-limit",
    "10",
    "--monthly-count-limit",
    "100",
    "--min-order-minor",
    "100",
    "--max-order-minor",
    "50000",
]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Cli:
    database_url: str
    bootstrap: str
    prefix: str
    key: str
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def __call__(self, *args: str, stdin: str = "") -> Result:
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        argv = [
            "--database-url",
            self.database_url,
            "--kafka",
            self.bootstrap,
            "--topic-prefix",
            self.prefix,
            "--actor",
            "test",
            *args,
        ]
        code = admin_cli.main(argv)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(
    migrated_database_url: str,
    kafka_bootstrap: str,
    unique_name: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("KEEPER_ENV", "development")
    monkeypatch.setenv("KEEPER_DATA_KEY", key)
    for role in admin_cli.DEMO_USERS:
        monkeypatch.delenv(f"KEEPER_DEMO_{role.upper()}_PASSWORD", raising=False)
    return Cli(migrated_database_url, kafka_bootstrap, f"{unique_name}.", key, capsys, monkeypatch)


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


def count(engine: Engine, model: type) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def read_topic(bootstrap: str, topic: str, at_least: int, timeout_s: float = 20.0) -> list:
    """Every record of ``topic`` from the beginning, once at least ``at_least`` arrived."""
    return asyncio.run(_read_topic(bootstrap, topic, at_least, timeout_s))


async def _read_topic(bootstrap: str, topic: str, at_least: int, timeout_s: float) -> list:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records: list = []
        deadline = time.monotonic() + timeout_s
        while len(records) < at_least and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def assert_no_secrets(text: str, *secrets: str) -> None:
    for pan in [*DEMO_PANS, VISA_DEBIT]:
        assert pan not in text
    for secret in secrets:
        assert secret not in text


# --- seed-demo ----------------------------------------------------------------------------


def test_seed_demo_is_idempotent_and_publishes_card_configs(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    env_file = tmp_path / "demo-partner.env"
    first = cli("seed-demo", "--env-file", str(env_file))
    assert first.code == 0, first.err
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    key_id, secret = values["KEEPER_KEY_ID"], values["KEEPER_SECRET"]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"API key {key_id}: issued" in first.out
    assert "admin-demo-password" in first.out  # development defaults are printed
    assert "demo data is in place" in first.out
    assert_no_secrets(first.text, secret)

    second = cli("seed-demo", "--env-file", str(env_file))
    assert second.code == 0, second.err
    assert f"API key {key_id}: kept" in second.out
    assert "created" not in second.out
    assert "added" not in second.out
    assert_no_secrets(second.text, secret)
    assert env_file.read_text().count(secret) == 1

    assert [count(engine, m) for m in (CardPool, Partner, Card, ConsoleUser, PartnerApiKey)] == [
        1,
        1,
        3,
        3,
        1,
    ]
    with session_factory(engine)() as session:
        partner = session.get_one(Partner, admin_cli.DEMO_PARTNER)
        assert (partner.deposit_fee_bp, partner.withdrawal_fee_bp) == (250, 150)
        key = api_keys.find_api_key(session, SecretBox(cli.key), key_id)
        assert key is not None
        assert key.secret == secret.encode()
        hashes = session.scalars(select(ConsoleUser.password_hash)).all()
        assert all(h.startswith("$argon2id$") for h in hashes)

    records = read_topic(cli.bootstrap, f"{cli.prefix}config-cards", at_least=6)
    decoded = [decode(record.value) for record in records]
    configs = {env.key: message for env, message in decoded}
    assert len(configs) == 3
    assert all(isinstance(message, CardConfigured) for message in configs.values())
    assert {record.key.decode() for record in records} == set(configs)
    masked = sorted(message.pan_masked for message in configs.values())  # type: ignore[attr-defined]
    assert masked == sorted(cards.mask_pan(pan) for pan in DEMO_PANS)
    # Re-publishing the same versions re-sends the same message ids.
    assert len({env.message_id for env, _ in decoded}) == 3
    assert all(pan not in record.value.decode() for record in records for pan in DEMO_PANS)

    partner_records = read_topic(cli.bootstrap, f"{cli.prefix}config-partners", 1)
    _, message = decode(partner_records[0].value)
    assert isinstance(message, PartnerConfigured)
    assert (message.partner_id, message.deposit_fee_bp) == ("demo-shop", 250)


def test_seed_demo_replaces_a_key_it_cannot_verify(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    env_file = tmp_path / "demo.env"
    assert cli("seed-demo", "--env-file", str(env_file), "--no-publish").code == 0
    old = env_file.read_text()
    env_file.write_text(old.replace("KEEPER_SECRET=ks_", "KEEPER_SECRET=ks_tampered"))
    again = cli("seed-demo", "--env-file", str(env_file), "--no-publish")
    assert again.code == 0, again.err
    assert ": issued" in again.out
    assert env_file.read_text() != old
    assert count(engine, PartnerApiKey) == 2


def test_seed_demo_passwords_outside_development(
    cli: Cli, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEPER_ENV", "test")
    refused = cli("seed-demo", "--env-file", str(tmp_path / "x.env"), "--no-publish")
    assert refused.code == 1
    assert "KEEPER_DEMO_ADMIN_PASSWORD" in refused.err
    assert count(engine, Partner) == 0  # refused before anything was committed

    for role in admin_cli.DEMO_USERS:
        monkeypatch.setenv(f"KEEPER_DEMO_{role.upper()}_PASSWORD", f"{role}-from-the-env-123")
    accepted = cli("seed-demo", "--env-file", str(tmp_path / "x.env"), "--no-publish")
    assert accepted.code == 0, accepted.err
    assert "password from env" in accepted.out
    assert "from-the-env" not in accepted.out

    monkeypatch.setenv("KEEPER_ENV", "production")
    production = cli("seed-demo", "--env-file", str(tmp_path / "x.env"), "--no-publish")
    assert production.code == 1
    assert "production" in production.err


# --- single commands ----------------------------------------------------------------------


def test_partner_pool_key_lifecycle(cli: Cli, engine: Engine) -> None:
    assert cli("create-pool", "main", "--name", "Main").code == 0
    created = cli(
        "create-partner",
        "acme",
        "--name",
        "Acme",
        "--deposit-fee-bp",
        "200",
        "--withdrawal-fee-bp",
        "100",
        "--pool",
        "main",
        "--no-publish",
    )
    assert created.code == 0, created.err
    duplicate = cli(
        "create-partner", "acme", "--name", "A", "--deposit-fee-bp", "1", "--withdrawal-fee-bp",
        "1", "--no-publish",
    )  # fmt: skip
    assert duplicate.code == 1
    assert "already exists" in duplicate.err

    issued = cli("issue-key", "acme")
    assert issued.code == 0, issued.err
    lines = dict(line.strip().split(": ", 1) for line in issued.out.splitlines() if ": " in line)
    key_id, secret = lines["key id"], lines["secret"]
    assert issued.out.count(secret) == 1
    assert "shown this once" in issued.out

    listed = cli("list-keys", "acme")
    assert key_id in listed.out
    assert secret not in listed.text
    assert cli("revoke-key", key_id).out.strip() == f"API key {key_id} revoked"
    assert "already revoked" in cli("revoke-key", key_id).out
    missing = cli("revoke-key", "kp_nothing")
    assert missing.code == 1
    assert "does not exist" in missing.err
    with session_factory(engine)() as session:
        actors = set(session.scalars(select(AuditLog.actor)))
        audited = " ".join(str(row.after) for row in session.scalars(select(AuditLog)))
    assert actors == {"test"}
    assert secret not in audited


def test_add_card_reads_the_number_from_stdin_and_shows_it_masked(cli: Cli, engine: Engine) -> None:
    assert cli("create-pool", "main", "--name", "Main").code == 0
    added = cli(*CARD_ARGS, "--no-publish", stdin="4000 0566 5566 5556\n")
    assert added.code == 0, added.err
    assert "400005******5556" in added.out
    assert_no_secrets(added.text)
    with session_factory(engine)() as session:
        card = session.scalars(select(Card)).one()
        assert str(card.expires_on) == "2031-12-31"
        assert cards.card_pan(session, SecretBox(cli.key), card.id) == VISA_DEBIT

    duplicate = cli(*CARD_ARGS, "--no-publish", stdin=VISA_DEBIT + "\n")
    assert duplicate.code == 1
    assert "already registered" in duplicate.err
    assert_no_secrets(duplicate.text)

    mistyped = cli(*CARD_ARGS, "--no-publish", stdin="4000056655665557\n")
    assert mistyped.code == 1
    assert "Luhn" in mistyped.err
    assert "4000056655665557" not in mistyped.text

    empty = cli(*CARD_ARGS, "--no-publish", stdin="")
    assert empty.code == 1
    assert count(engine, Card) == 1


def test_create_user_from_env_or_stdin(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEW_USER_PW", "a long enough password")
    from_env = cli("create-user", "Carol", "--role", "analyst", "--password-env", "NEW_USER_PW")
    assert from_env.code == 0, from_env.err
    assert "user carol created with role analyst" in from_env.out
    from_stdin = cli("create-user", "dave", "--role", "admin", stdin="another long password\n")
    assert from_stdin.code == 0, from_stdin.err
    short = cli("create-user", "eve", "--role", "admin", stdin="short\n")
    assert short.code == 1
    assert "password must be" in short.err
    unset = cli("create-user", "frank", "--role", "admin", "--password-env", "NOPE_NOT_SET")
    assert unset.code == 1
    for result in (from_env, from_stdin, short):
        assert "long enough" not in result.text
        assert "another long" not in result.text
    assert count(engine, ConsoleUser) == 2


def test_create_user_of_role_partner_names_its_partner(cli: Cli, engine: Engine) -> None:
    assert cli("create-pool", "main", "--name", "Main").code == 0
    made = cli(
        "create-partner", "acme", "--name", "Acme", "--deposit-fee-bp", "100",
        "--withdrawal-fee-bp", "100", "--no-publish",
    )  # fmt: skip
    assert made.code == 0, made.err
    password = "a long enough password\n"
    bound = cli("create-user", "acme-ops", "--role", "partner", "--partner", "acme", stdin=password)
    assert bound.code == 0, bound.err
    assert "user acme-ops created with role partner of partner acme" in bound.out
    unbound = cli("create-user", "pat", "--role", "partner", stdin=password)
    assert unbound.code == 1
    assert "needs the partner it belongs to" in unbound.err
    staff = cli("create-user", "opal", "--role", "operator", "--partner", "acme", stdin=password)
    assert staff.code == 1
    ghost = cli("create-user", "gus", "--role", "partner", "--partner", "ghost", stdin=password)
    assert ghost.code == 1
    assert "partner 'ghost' does not exist" in ghost.err
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT username, role, partner_id FROM console_users")).all()
    assert [tuple(row) for row in rows] == [("acme-ops", "partner", "acme")]


def test_reset_second_factor_and_force_a_new_password(cli: Cli, engine: Engine) -> None:
    """The way back in for an admin who lost both phone and recovery codes: audited."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from db.crypto import SecretBox
    from db.models import AuditLog
    from tests.fixtures.second_factor import enrol

    assert cli("create-user", "dave", "--role", "admin", stdin="another long password\n").code == 0
    with Session(engine) as s, s.begin():
        enrol(s, "dave", SecretBox(cli.key))
    reset = cli("reset-second-factor", "dave")
    assert reset.code == 0, reset.err
    assert "second factor of dave removed" in reset.out
    assert cli("reset-second-factor", "dave").out.strip() == "dave has no second factor"
    forced = cli("force-password-reset", "dave", "--temporary", stdin="a temporary password\n")
    assert forced.code == 0, forced.err
    assert "a temporary password" not in forced.text
    with engine.connect() as conn:
        must = conn.execute(
            text("SELECT must_change_password FROM console_users WHERE username = 'dave'")
        ).scalar_one()
        actions = conn.execute(
            text("SELECT action FROM audit_log WHERE entity = 'user' ORDER BY id")
        ).scalars()
        assert must is True
        assert list(actions)[-2:] == ["user.second_factor_reset", "user.password_reset"]
    assert count(engine, AuditLog) >= 3


def test_publish_config_sends_every_partner_and_card(cli: Cli) -> None:
    assert cli("create-pool", "main", "--name", "Main").code == 0
    assert cli(*CARD_ARGS, "--no-publish", stdin=VISA_DEBIT).code == 0
    for partner in ("p1", "p2"):
        result = cli(
            "create-partner", partner, "--name", partner, "--deposit-fee-bp", "1",
            "--withdrawal-fee-bp", "2", "--no-publish",
        )  # fmt: skip
        assert result.code == 0, result.err
    published = cli("publish-config")
    assert published.code == 0, published.err
    assert "published 2 partner config(s)" in published.out
    assert "1 card config(s)" in published.out
    partner_records = read_topic(cli.bootstrap, f"{cli.prefix}config-partners", 2)
    assert sorted(record.key.decode() for record in partner_records) == ["p1", "p2"]
    (card_record,) = read_topic(cli.bootstrap, f"{cli.prefix}config-cards", 1)
    assert VISA_DEBIT not in card_record.value.decode()


# --- failures -----------------------------------------------------------------------------


def test_production_refuses_the_development_data_key(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("create-pool", "main", "--name", "Main").code == 0
    monkeypatch.setenv("KEEPER_ENV", "production")
    monkeypatch.delenv("KEEPER_DATA_KEY")
    refused = cli(*CARD_ARGS, "--no-publish", stdin=VISA_DEBIT)
    assert refused.code == 1
    assert "KEEPER_DATA_KEY must be set" in refused.err
    assert count(engine, Card) == 0


def test_unreachable_services_fail_clearly(cli: Cli, engine: Engine) -> None:
    cli.database_url = "postgresql+psycopg2://keeper:keeper@127.0.0.1:1/keeper"
    no_db = cli("create-pool", "main", "--name", "Main")
    assert no_db.code == 1
    assert no_db.err.startswith("error: cannot use the database")
    assert "Traceback" not in no_db.err

    cli.database_url = str(engine.url.render_as_string(hide_password=False))
    cli.bootstrap = "127.0.0.1:1"
    no_kafka = cli("create-pool", "main", "--name", "Main")
    assert no_kafka.code == 0  # needs no broker
    published = cli("publish-config")
    assert published.code == 1
    assert "cannot publish to Kafka at 127.0.0.1:1" in published.err
    assert "publish-config" in published.err


def test_bad_usage_exits_2(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("add-card", "--pool", "main")
    assert exited.value.code == 2
