"""The console's forms and the admin CLI apply the same text rule as the API (domain/text.py):
a bad field is named, refused before anything is written, and nothing changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from db.engine import make_engine
from db.models import Card, CardPool, ConsoleUser, Partner
from ops_console import admin_cli
from tests.fixtures.console import Console, sign_in
from tests.integration.test_admin_cli import CARD_ARGS, VISA_DEBIT, Cli, count
from tests.integration.test_console_admin import (
    GOOD_PAN,
    admin_page,
    audit,
    errors,
    fill_card,
    submit,
)
from tests.integration.test_console_admin import count as rows

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(
    migrated_database_url: str,
    kafka_bootstrap: str,
    unique_name: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    monkeypatch.setenv("KEEPER_ENV", "development")
    monkeypatch.setenv("KEEPER_DATA_KEY", Fernet.generate_key().decode())
    for role in admin_cli.DEMO_USERS:
        monkeypatch.delenv(f"KEEPER_DEMO_{role.upper()}_PASSWORD", raising=False)
    return Cli(migrated_database_url, kafka_bootstrap, f"{unique_name}.", "", capsys, monkeypatch)


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


def refused(at_errors: list[str], label: str, reason: str) -> bool:
    return any(e.startswith(f"Refused: {label} ") and f"({reason})" in e for e in at_errors)


# --- console --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "label", "reason"),
    [
        ("new_partner_id", "ga\x00me", "Partner id", "control_character"),
        ("new_partner_id", "game\u200f", "Partner id", "format_character"),
        ("new_partner_name", "Game\x85Co", "Name", "control_character"),
        ("new_partner_name", "Cafe\u0301", "Name", "not_normalized"),
        ("new_partner_url", "http://game.example/\x00", "Callback URL", "control_character"),
    ],
    ids=ascii,
)
def test_new_partner_form_refuses_bad_text(
    console_light: Console, key: str, value: str, label: str, reason: str
):
    created = len(audit(console_light, "partner.create"))
    at = admin_page(console_light, "partners")
    at.text_input(key="new_partner_id").input("game")
    at.text_input(key="new_partner_name").input("Game Co")
    at.text_input(key=key).input(value)
    submit(at, "Create partner")
    assert refused(errors(at), label, reason), errors(at)
    assert not at.exception
    assert rows(console_light, "partners") == 1  # only the seeded shop
    assert len(audit(console_light, "partner.create")) == created


def test_edit_partner_form_refuses_a_nul_in_the_name(console_light: Console):
    at = admin_page(console_light, "partners")
    at.text_input(key="edit_shop_name").input("Shop\x00")
    submit(at, "Save")
    assert refused(errors(at), "Name", "control_character"), errors(at)
    assert console_light.sql("SELECT name, version FROM partners") == [("Shop", 1)]


def test_pool_and_card_forms_refuse_bad_text(console_light: Console):
    at = admin_page(console_light, "cards")
    at.text_input(key="pool_id").input("reserve")
    at.text_input(key="pool_name").input("Re\x7fserve")
    submit(at, "Create pool")
    assert refused(errors(at), "Name", "control_character"), errors(at)
    assert rows(console_light, "card_pools") == 1

    fill_card(at, GOOD_PAN)
    at.text_input(key="card_holder").input("TEST\x00HOLDER")
    submit(at, "Add card")
    assert refused(errors(at), "Holder", "control_character"), errors(at)
    pan_with_nul = GOOD_PAN.replace(" ", "\x00", 1)
    fill_card(at, pan_with_nul)
    submit(at, "Add card")
    assert refused(errors(at), "Card number", "control_character"), errors(at)
    assert not any(GOOD_PAN.replace(" ", "")[:12] in e.replace(" ", "") for e in errors(at))
    assert rows(console_light, "cards") == 0
    assert audit(console_light, "card.create") == []


@pytest.mark.parametrize(
    ("username", "password", "label", "reason"),
    [
        ("zo\x00e", "a long enough password", "Username", "control_character"),
        (" zoe", "a long enough password", "Username", "padded"),
        ("zoe", "a long enough\x7fpassword", "Initial password", "control_character"),
    ],
    ids=ascii,
)
def test_new_user_form_refuses_bad_text(
    console_light: Console, username: str, password: str, label: str, reason: str
):
    at = admin_page(console_light, "users")
    at.text_input(key="new_username").input(username)
    at.text_input(key="new_password").input(password)
    submit(at, "Create user")
    assert refused(errors(at), label, reason), errors(at)
    assert console_light.sql("SELECT count(*) FROM console_users WHERE username LIKE '%zo%'") == [
        (0,)
    ]


def test_search_filters_refuse_a_nul_instead_of_crashing(console_light: Console):
    at = sign_in(console_light.app(), "adam")
    at.switch_page("views/orders.py").run()
    at.text_input(key="f_search").input("po-\x00").run()
    assert not at.exception, at.exception
    assert refused(errors(at), "Order id", "control_character"), errors(at)

    at.switch_page("views/audit.py").run()
    at.text_input(key="audit_actor").input("ad\x00am").run()
    assert not at.exception, at.exception
    assert refused(errors(at), "Actor", "control_character"), errors(at)


# --- admin CLI ------------------------------------------------------------------------------


def usage_error(cli: Cli, *args: str) -> str:
    with pytest.raises(SystemExit) as exited:
        cli(*args)
    assert exited.value.code == 2
    return cli.capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "argument", "reason"),
    [
        (["create-partner", "ac\x01me"], "partner_id", "control_character"),
        (["create-partner", " acme"], "partner_id", "padded"),
        (["create-partner", "acme\udcff"], "partner_id", "lone_surrogate"),  # undecodable argv
        (["create-partner", "acme", "--name", "Ac\x00me"], "--name", "control_character"),
        (
            ["create-pool", "main", "--name", "Main", "--description", "e\u0301"],
            "--description",
            "not_normalized",
        ),
        (["create-user", "   ", "--role", "operator"], "username", "blank"),
        (["revoke-key", "kp_\u200b1"], "key_id", "format_character"),
    ],
    ids=ascii,
)
def test_cli_refuses_bad_text_arguments(
    cli: Cli, engine: Engine, args: list[str], argument: str, reason: str
) -> None:
    full = list(args)
    if args[0] == "create-partner":
        full += ["--deposit-fee-bp", "1", "--withdrawal-fee-bp", "1"]
        full += [] if "--name" in args else ["--name", "Acme"]
    err = usage_error(cli, *full)
    assert f"argument {argument}: {reason}:" in err, err
    assert count(engine, Partner) == 0
    assert count(engine, CardPool) == 0
    assert count(engine, ConsoleUser) == 0


def test_cli_refuses_bad_secrets_with_exit_1(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("create-pool", "main", "--name", "Main").code == 0
    card = cli(*CARD_ARGS, stdin=VISA_DEBIT[:6] + "\x00" + VISA_DEBIT[6:] + "\n")
    assert card.code == 1
    assert card.err == "error: card number holds a control character at position 6\n"
    assert count(engine, Card) == 0

    monkeypatch.setenv("ZOE_PW", "a long enough\x1bpassword")
    user = cli("create-user", "zoe", "--role", "operator", "--password-env", "ZOE_PW")
    assert user.code == 1
    assert user.err == "error: the password in ZOE_PW holds a control character at position 13\n"
    assert count(engine, ConsoleUser) == 0
