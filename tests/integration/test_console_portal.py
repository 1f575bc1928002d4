"""The partner portal in the console with ``AppTest`` against a real PostgreSQL: a partner
user is offered the portal pages only; every page shows its own partner's data and nothing
of the other partner's, whatever is typed or searched; every action (issue, rotate, revoke,
resend, callback URL, CSV export) works on its own objects and is audited; staff cannot
open the portal, and admins create partner users on the users page."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ops_console.nav import visible_keys
from ops_console.roles import PAGE_ROLES, page_title
from tests.fixtures.console import Console, sign_in
from tests.fixtures.portal import RIVAL, RIVAL_ORDER_ID, SHOP, SHOP_USER, World
from tests.fixtures.system import PASSWORD

pytestmark = pytest.mark.integration

PORTAL_PAGES = [key for key in PAGE_ROLES if key.startswith("portal_")]


def texts(at: AppTest) -> str:
    """Everything a page wrote, tables and code blocks included."""
    parts: list[Any] = [
        e.value for kind in ("error", "warning", "info", "success") for e in at.get(kind)
    ]
    parts += [e.value for e in at.caption] + [e.value for e in at.markdown]
    parts += [e.value for e in at.code] + [m.value for m in at.metric]
    parts += [frame.value.to_csv() for frame in at.dataframe]
    parts += [str(t.value) for t in at.table]
    parts += [str(option) for box in at.selectbox for option in box.options]
    return "\n".join(str(p) for p in parts)


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def submit(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def audit(console: Console, actor: str) -> list[Any]:
    return console.sql(
        "SELECT action, entity_id, after FROM audit_log WHERE actor = :a ORDER BY id", a=actor
    )


def test_a_partner_user_is_offered_the_portal_only(console_light: Console, portal_world: World):
    at = sign_in(console_light.app(), SHOP_USER)
    assert not at.exception
    assert titles(at) == ["My orders"]
    assert visible_keys("partner") == [*PORTAL_PAGES, "account"]
    for page in PAGE_ROLES:
        open_page(at, page)
        refused = "may not open this page" in texts(at)
        assert refused is (page not in {*PORTAL_PAGES, "account"}), page
        if refused:
            assert not at.dataframe, page  # a refused page shows nothing of the data


def test_staff_cannot_open_the_portal(console_light: Console):
    for username in ("adam", "olga", "ann"):
        at = sign_in(console_light.app(), username)
        for page in PORTAL_PAGES:
            open_page(at, page)
            assert "may not open this page" in texts(at), (username, page)
            assert page_title(page) not in titles(at)


def test_every_page_shows_only_the_partners_own_data(console_light: Console, portal_world: World):
    shop, rival = portal_world.shop, portal_world.rival
    theirs = [RIVAL, rival.order_uid, RIVAL_ORDER_ID, rival.key_id, rival.secret_id]
    theirs.append(str(rival.delivery_id))
    at = sign_in(console_light.app(), SHOP_USER)
    for page in PORTAL_PAGES:
        open_page(at, page)
        shown = texts(at)
        assert page_title(page) in titles(at)
        assert not [ident for ident in theirs if ident in shown], page
    open_page(at, "portal_orders")
    assert set(at.dataframe[0].value["partner_order_id"]) == {f"inv-a{i}" for i in range(1, 6)}
    at.selectbox(key="po_pick").select(shop.order_uid).run()  # one order in full
    assert not at.exception
    assert {m.label: m.value for m in at.metric} == {
        "Amount": "1,000.00 RUB",
        "Fee": "25.00 RUB",
        "Status": "approved",
        "Card": "411111******1111",
    }
    history = at.dataframe[1].value
    assert list(history["type"])[-1] == "order.approved"
    assert "operator" not in history.columns  # who decided stays inside Keeper
    assert "olga" not in texts(at)
    open_page(at, "portal_keys")
    assert list(at.dataframe[0].value["key_id"]) == [shop.key_id]
    open_page(at, "portal_secrets")
    assert list(at.dataframe[0].value["secret_id"]) == [shop.secret_id]
    open_page(at, "portal_callbacks")
    assert list(at.dataframe[0].value["delivery_id"]) == [str(shop.delivery_id)]
    open_page(at, "portal_balance")
    ledger = at.dataframe[1].value
    assert set(ledger["fee"]) == {"25.00 RUB", "12.50 RUB"}  # each posting's fee
    open_page(at, "portal_settings")
    assert {m.label: m.value for m in at.metric}["Deposit fee"] == "2.50 %"

    # Typed or searched ids of the other partner's objects find nothing.
    open_page(at, "portal_orders")
    for typed in (RIVAL_ORDER_ID, rival.order_uid):
        at.text_input(key="po_search").input(typed).run()
        assert at.dataframe[0].value.empty
    at = open_page(at, "portal_callbacks")
    at.text_input(key="pc_order").input(rival.order_uid).run()
    assert at.dataframe[0].value.empty
    at.text_input(key="pc_pick_id").input(str(rival.delivery_id)).run()
    assert f"Unknown delivery {rival.delivery_id}" in texts(at)
    assert not [b for b in at.button if b.key == "pc_resend"]


def test_keys_and_callback_secrets_are_issued_once_rotated_and_revoked(
    console_light: Console, portal_world: World
):
    shop = portal_world.shop
    at = open_page(sign_in(console_light.app(), SHOP_USER), "portal_keys")
    at.button(key="pk_rotate").click().run()
    assert not at.exception
    [shown] = at.code
    new_key = shown.value.split("KEEPER_KEY_ID=")[1].split("\n")[0]
    assert "KEEPER_KEY_SECRET=ks_" in shown.value
    statuses = dict(
        console_light.sql("SELECT key_id, status FROM partner_api_keys WHERE partner_id = 'shop'")
    )
    assert statuses == {shop.key_id: "revoked", new_key: "active"}
    at.run()
    assert not at.code  # shown once
    at.button(key="pk_issue").click().run()
    [shown] = at.code
    issued = shown.value.split("KEEPER_KEY_ID=")[1].split("\n")[0]
    at.selectbox(key="pk_pick").select(issued).run()
    at.button(key="pk_revoke").click().run()
    assert f"Key {issued} revoked" in texts(at)
    actions = [(row.action, row.entity_id) for row in audit(console_light, SHOP_USER)]
    assert actions == [
        ("api_key.issue", new_key),
        ("api_key.revoke", shop.key_id),
        ("api_key.rotate", shop.key_id),
        ("api_key.issue", issued),
        ("api_key.revoke", issued),
    ]
    rival_keys = console_light.sql("SELECT status FROM partner_api_keys WHERE partner_id = 'rival'")
    assert [row.status for row in rival_keys] == ["active"]

    open_page(at, "portal_secrets")
    at.button(key="ps_issue").click().run()
    [shown] = at.code
    assert "KEEPER_CALLBACK_SECRET=cs_" in shown.value
    at.selectbox(key="ps_pick").select(shop.secret_id).run()
    at.button(key="ps_revoke").click().run()
    assert not at.exception
    active = console_light.sql(
        "SELECT partner_id, active FROM callback_secrets ORDER BY partner_id, created_at"
    )
    assert [(row.partner_id, row.active) for row in active] == [
        (RIVAL, True),
        (SHOP, False),
        (SHOP, True),
    ]
    assert [row.action for row in audit(console_light, SHOP_USER)][-2:] == [
        "callback_secret.issue",
        "callback_secret.revoke",
    ]


def test_resend_callback_url_and_exports_are_audited(console_light: Console, portal_world: World):
    shop = portal_world.shop
    at = open_page(sign_in(console_light.app(), SHOP_USER), "portal_callbacks")
    at.selectbox(key="pc_pick").select(str(shop.delivery_id)).run()
    at.button(key="pc_resend").click().run()
    assert not at.exception
    assert f"Resent: delivery {shop.delivery_id}" in texts(at)
    [row] = console_light.sql(
        "SELECT status FROM callback_deliveries WHERE delivery_id = :d", d=shop.delivery_id
    )
    assert row.status == "pending"
    [entry] = audit(console_light, SHOP_USER)
    assert (entry.action, entry.entity_id) == ("callback.resend", str(shop.delivery_id))

    open_page(at, "portal_settings")
    assert [t.key for t in at.text_input] == ["ps_url"]  # the only input on the page
    at.text_input(key="ps_url").input("https://shop.example/v2/callback")
    at.button[0].click().run()
    assert not at.exception
    assert "Callback URL saved: https://shop.example/v2/callback." in texts(at)
    urls = dict(console_light.sql("SELECT id, callback_url FROM partners"))
    assert urls == {
        SHOP: "https://shop.example/v2/callback",
        RIVAL: "https://rival.example/callback",
    }
    at.text_input(key="ps_url").input("javascript:alert(1)")
    at.button[0].click().run()
    assert "Refused" in texts(at)
    [_, entry] = audit(console_light, SHOP_USER)
    assert entry.action == "partner.update"
    assert entry.after["callback_url"] == "https://shop.example/v2/callback"

    open_page(at, "portal_orders")
    at.multiselect(key="po_status").select("approved").run()
    assert len(at.dataframe[0].value) == 2
    at.get("download_button")[0].click().run()
    assert not at.exception
    at = open_page(at, "portal_balance")
    at.get("download_button")[0].click().run()
    rows = audit(console_light, SHOP_USER)[2:]
    assert [(r.action, r.after["rows"], r.after["partner_id"]) for r in rows] == [
        ("portal.export", 2, SHOP),
        ("portal.export", 2, SHOP),
    ]
    assert rows[0].after["filters"]["statuses"] == ["approved"]


def test_a_disabled_partner_user_acts_no_more(console_light: Console, portal_world: World):
    """A click that arrives after the user was disabled does nothing (the callback takes the
    scope afresh from PostgreSQL) and the page that follows is refused."""
    at = open_page(sign_in(console_light.app(), SHOP_USER), "portal_keys")
    console_light.execute("UPDATE console_users SET is_active = false WHERE username = 'sam'")
    at.button(key="pk_rotate").click().run()
    assert not at.exception
    rows = console_light.sql("SELECT status FROM partner_api_keys WHERE partner_id = 'shop'")
    assert [row.status for row in rows] == ["active"]
    assert audit(console_light, SHOP_USER) == []


def test_an_admin_creates_a_partner_user(console_light: Console):
    at = sign_in(console_light.app(), "adam")
    open_page(at, "users")
    at.text_input(key="new_username").input("acme-ops")
    at.selectbox(key="new_role").select("partner")
    at.selectbox(key="new_partner").select(SHOP)
    at.text_input(key="new_password").input(PASSWORD)
    submit(at, "Create user")
    assert not at.exception
    assert "User acme-ops (partner of shop) created." in texts(at)
    [row] = console_light.sql(
        "SELECT role, partner_id FROM console_users WHERE username = 'acme-ops'"
    )
    assert (row.role, row.partner_id) == ("partner", SHOP)
    at.text_input(key="new_username").input("no-partner")
    at.selectbox(key="new_role").select("partner")
    at.text_input(key="new_password").input(PASSWORD)
    submit(at, "Create user")
    assert "Refused: a partner user needs the partner it belongs to" in texts(at)
    partner_user = sign_in(console_light.app(), "acme-ops")
    assert titles(partner_user) == ["My orders"]
    assert "Partner **shop**" in texts(partner_user)
