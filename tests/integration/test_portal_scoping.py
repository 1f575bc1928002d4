"""The partner portal's repository against a real PostgreSQL: every read and every action
is scoped to the signed-in user's partner. Partner A (``shop``) tries each one on partner
B's (``rival``'s) orders, ledger, deliveries, keys and secrets and gets nothing back, or the
refusal an unknown id gets, and B's rows stay as they were; each action on A's own objects
works and is audited with the partner user as actor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from db.crypto import SecretBox
from db.repositories import api_keys, callbacks, portal, portal_actions, users
from db.repositories.errors import InvalidInput, NotFound
from tests.fixtures.console import Console
from tests.fixtures.portal import RIVAL, SHOP, SHOP_USER, World
from tests.fixtures.system import PASSWORD

pytestmark = pytest.mark.integration


def audit_rows(console: Console, actor: str) -> list[Any]:
    return console.sql(
        "SELECT action, entity, entity_id, after FROM audit_log WHERE actor = :a ORDER BY id",
        a=actor,
    )


def test_the_scope_comes_from_an_active_partner_user_only(
    console_light: Console, portal_world: World
):
    with console_light.sessions() as s:
        assert portal.scope_of(s, SHOP_USER) == portal_world.shop.scope
        assert portal.scope_of(s, "  SAM ") == portal_world.shop.scope
        for staff in ("adam", "olga", "ann", "nobody"):
            assert portal.scope_of(s, staff) is None
    with console_light.sessions.begin() as s:
        users.set_user_active(s, SHOP_USER, False, actor="adam")
    with console_light.sessions() as s:
        assert portal.scope_of(s, SHOP_USER) is None


def test_reads_show_only_the_partners_own_rows(console_light: Console, portal_world: World):
    shop, rival = portal_world.shop, portal_world.rival
    with console_light.sessions() as s:
        listed = portal.orders(s, shop.scope)
        assert len(listed) == 5  # seed_history's five orders, none of rival's
        assert rival.order_uid not in {o.uid for o in listed}
        assert portal.orders(s, shop.scope, search=rival.partner_order_id) == []
        assert portal.orders(s, shop.scope, search=rival.order_uid[:8]) == []
        assert portal.order(s, shop.scope, rival.order_uid) is None
        assert portal.order_history(s, shop.scope, rival.order_uid) == []
        assert portal.order(s, shop.scope, "not-a-uuid") is None

        assert [b.partner_id for b in portal.partner_balances(s, shop.scope)] == [SHOP]
        ledger = portal.ledger(s, shop.scope)
        assert ledger
        assert {line.account for line in ledger} == {"partner:shop:available"}
        assert rival.order_uid not in {line.order_uid for line in ledger}

        assert {d.partner_id for d in portal.deliveries(s, shop.scope)} == {SHOP}
        assert portal.deliveries(s, shop.scope, order_uid=uuid.UUID(rival.order_uid)) == []
        assert portal.delivery(s, shop.scope, rival.delivery_id) is None
        assert portal.delivery_counts(s, shop.scope) == {"delivered": 1}

        assert [k.key_id for k in portal.partner_api_keys(s, shop.scope)] == [shop.key_id]
        secrets = portal.partner_callback_secrets(s, shop.scope)
        assert [c.secret_id for c in secrets] == [shop.secret_id]
        settings = portal.partner_settings(s, shop.scope)
        assert settings is not None
        assert (settings.partner_id, settings.deposit_fee_bp) == (SHOP, 250)


def test_own_rows_read_in_full(console_light: Console, portal_world: World):
    shop, rival = portal_world.shop, portal_world.rival
    with console_light.sessions() as s:
        mine = portal.order(s, shop.scope, shop.order_uid)
        assert mine is not None
        assert mine.partner_order_id == "inv-a1"
        assert mine.card == "411111******1111"
        assert [step.type for step in portal.order_history(s, shop.scope, shop.order_uid)][-1] == (
            "order.approved"
        )
        assert [o.status for o in portal.orders(s, shop.scope, statuses=["approved"])] == [
            "approved",
            "approved",
        ]
        assert portal.orders(s, shop.scope, direction="withdrawal")[0].payer_card_masked
        theirs = portal.order(s, rival.scope, rival.order_uid)
        assert theirs is not None
        assert theirs.fee_minor == 3_500
        # Each posting carries its transaction's fee: rival's 700.00 deposit credited 665.00.
        (line,) = portal.ledger(s, rival.scope)
        assert (line.amount_minor, line.fee_minor, line.partner_order_id) == (
            66_500,
            3_500,
            "rival-inv-1",
        )
        assert {(x.amount_minor + x.fee_minor) for x in portal.ledger(s, shop.scope)} == {
            100_000,
            50_000,
        }
        settings = portal.partner_settings(s, shop.scope)
        assert settings is not None
        ranges = [(r.currency, r.min_order_minor, r.max_order_minor) for r in settings.order_ranges]
        assert ranges == [("RUB", 100, 10**8)]


def test_actions_on_another_partners_objects_are_refused_like_unknown_ones(
    console_light: Console, portal_world: World
):
    shop, rival = portal_world.shop, portal_world.rival
    box = SecretBox.from_settings()
    attempts = [
        lambda s: portal_actions.rotate_api_key(s, box, shop.scope, rival.key_id),
        lambda s: portal_actions.revoke_api_key(s, shop.scope, rival.key_id),
        lambda s: portal_actions.revoke_callback_secret(s, shop.scope, rival.secret_id),
        lambda s: portal_actions.resend_delivery(s, shop.scope, rival.delivery_id),
    ]
    unknown = [
        lambda s: portal_actions.revoke_api_key(s, shop.scope, "kp_nosuchkey"),
        lambda s: portal_actions.revoke_callback_secret(s, shop.scope, "cbk_nosuchsecret"),
        lambda s: portal_actions.resend_delivery(s, shop.scope, uuid.uuid4()),
        lambda s: portal_actions.resend_delivery(s, shop.scope, "not-a-uuid"),
    ]
    for attempt in attempts + unknown:
        with pytest.raises(NotFound) as refused, console_light.sessions.begin() as s:
            attempt(s)
        assert (
            rival.key_id not in refused.value.message or "does not exist" in refused.value.message
        )

    with console_light.sessions() as s:
        assert [k.status for k in api_keys.list_api_keys(s, RIVAL)] == ["active"]
        assert [c.active for c in callbacks.list_callback_secrets(s, RIVAL)] == [True]
        view = callbacks.get_delivery(s, rival.delivery_id)
        assert view is not None
        assert view.status == "delivered"
    assert audit_rows(console_light, SHOP_USER) == []


def test_own_actions_work_and_are_audited(console_light: Console, portal_world: World):
    shop = portal_world.shop
    box = SecretBox.from_settings()
    with console_light.sessions.begin() as s:
        new_key, secret = portal_actions.rotate_api_key(s, box, shop.scope, shop.key_id)
        assert secret.startswith("ks_")
        issued_key, _ = portal_actions.issue_api_key(s, box, shop.scope)
        assert portal_actions.revoke_api_key(s, shop.scope, issued_key) is True
        assert portal_actions.revoke_api_key(s, shop.scope, issued_key) is False
        new_secret, _ = portal_actions.issue_callback_secret(s, box, shop.scope)
        assert portal_actions.revoke_callback_secret(s, shop.scope, shop.secret_id) is True
        resent = portal_actions.resend_delivery(s, shop.scope, shop.delivery_id)
        assert resent.status == "pending"
        terms = portal_actions.set_callback_url(
            s, shop.scope, "https://shop.example/v2/cb", expected_version=1
        )
        assert terms.callback_url == "https://shop.example/v2/cb"
        portal_actions.record_export(s, shop.scope, "orders", {"statuses": ["approved"]}, 2)
    with pytest.raises(InvalidInput), console_light.sessions.begin() as s:
        portal_actions.resend_delivery(s, shop.scope, shop.delivery_id)  # pending already

    with console_light.sessions() as s:
        keys = {k.key_id: k.status for k in api_keys.list_api_keys(s, SHOP)}
        assert keys == {shop.key_id: "revoked", new_key: "active", issued_key: "revoked"}
        secrets = {c.secret_id: c.active for c in callbacks.list_callback_secrets(s, SHOP)}
        assert secrets == {shop.secret_id: False, new_secret: True}
    actions = [row.action for row in audit_rows(console_light, SHOP_USER)]
    assert actions == [
        "api_key.issue",
        "api_key.revoke",
        "api_key.rotate",
        "api_key.issue",
        "api_key.revoke",
        "callback_secret.issue",
        "callback_secret.revoke",
        "callback.resend",
        "partner.update",
        "portal.export",
    ]
    export = audit_rows(console_light, SHOP_USER)[-1]
    assert (export.entity, export.entity_id) == ("orders", SHOP)
    assert export.after == {"partner_id": SHOP, "filters": {"statuses": ["approved"]}, "rows": 2}


def test_a_partner_user_is_bound_to_exactly_one_existing_partner(console_light: Console):
    with console_light.sessions.begin() as s:
        with pytest.raises(InvalidInput, match="needs the partner"):
            users.create_user(s, "pat", PASSWORD, "partner", "adam")
        with pytest.raises(InvalidInput, match="only a partner user"):
            users.create_user(s, "opal", PASSWORD, "operator", "adam", partner_id=SHOP)
        with pytest.raises(NotFound):
            users.create_user(s, "pat", PASSWORD, "partner", "adam", partner_id="ghost")
        made = users.create_user(s, "pat", PASSWORD, "partner", "adam", partner_id=SHOP)
        assert made.role == "partner"
        for username, role in (("pat", "operator"), ("olga", "partner")):
            with pytest.raises(InvalidInput, match="create a new user"):
                users.set_user_role(s, username, role, actor="adam")
    (row,) = console_light.sql(
        "SELECT after FROM audit_log WHERE action = 'user.create' AND after->>'username' = 'pat'"
    )
    assert row.after["partner_id"] == SHOP
    # The table itself refuses a partner user without a partner, and staff with one.
    for statement in (
        "UPDATE console_users SET partner_id = NULL WHERE username = 'pat'",
        "UPDATE console_users SET partner_id = 'shop' WHERE username = 'olga'",
        "UPDATE console_users SET role = 'admin' WHERE username = 'pat'",
    ):
        with pytest.raises(IntegrityError):
            console_light.execute(statement)
