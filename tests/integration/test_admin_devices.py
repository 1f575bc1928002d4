"""The admin CLI's device commands: register (secret shown once, sealed at rest), list with
health, revoke; a pool's match policy; the shipped templates seeded once."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from db.engine import session_factory
from db.models import AuditLog, BankTemplate, Card, CardPool, Device
from domain.bank_templates import SHIPPED
from tests.integration.test_admin_cli import CARD_ARGS, Cli, cli, engine  # noqa: F401

pytestmark = pytest.mark.integration


def test_a_device_is_registered_listed_and_revoked(cli: Cli, engine: Engine) -> None:  # noqa: F811
    assert cli("create-pool", "main", "--name", "Main").code == 0
    assert cli(*CARD_ARGS, "--no-publish", stdin="4000056655665556\n").code == 0
    with session_factory(engine)() as session:
        card_id = str(session.scalars(select(Card.id)).one())

    registered = cli("register-device", "phone-1", "--card", card_id)
    assert registered.code == 0, registered.err
    lines = dict(l.strip().split(": ", 1) for l in registered.out.splitlines() if ": " in l)  # noqa: E741
    key_id, secret = lines["key id"], lines["secret"]
    assert key_id.startswith("kd_")
    assert secret.startswith("ds_")
    assert "shown this once" in registered.out
    with session_factory(engine)() as session:
        row = session.get(Device, "phone-1")
        assert row is not None
        assert secret.encode() not in row.secret_encrypted  # sealed, not stored in clear

    second = cli("register-device", "phone-2", "--card", card_id)
    assert second.code == 1
    assert "already has an active device" in second.err
    assert cli("register-device", "phone-3", "--card", "not-a-card").code == 1

    listed = cli("list-devices")
    assert "phone-1" in listed.out
    assert "400005******5556" in listed.out
    assert secret not in listed.text
    assert cli("revoke-device", "phone-1").out.strip() == "device phone-1 revoked"
    assert "already revoked" in cli("revoke-device", "phone-1").out
    # a revoked device frees its card for a new one
    assert cli("register-device", "phone-2", "--card", card_id).code == 0

    assert cli("set-match-policy", "main", "auto").code == 0
    with session_factory(engine)() as session:
        assert session.get(CardPool, "main").match_policy == "auto"  # type: ignore[union-attr]
        actions = set(session.scalars(select(AuditLog.action)))
    assert {"device.register", "device.revoke", "pool.match_policy"} <= actions


def test_the_shipped_templates_are_seeded_by_the_migration(cli: Cli, engine: Engine) -> None:  # noqa: F811
    with session_factory(engine)() as session:
        stored = set(session.scalars(select(BankTemplate.template_id)))
    assert stored == {t.template_id for t in SHIPPED}
    seeded = cli("seed-templates")
    assert seeded.code == 0, seeded.err
    assert f"0 bank template(s) added, {len(SHIPPED)} already there" in seeded.out
