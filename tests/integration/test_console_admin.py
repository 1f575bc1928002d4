"""The admin pages with ``AppTest`` against a real PostgreSQL: each change is audited with
actor, before and after; bad input is refused with a clear message and changes nothing; the
changed configuration reaches the config topics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from streamlit.testing.v1 import AppTest

from tests.fixtures.console import CARD_PAN, Console, sign_in

pytestmark = pytest.mark.integration

GOOD_PAN = "5555 5555 5555 4444"


def admin_page(console: Console, page: str) -> AppTest:
    at = sign_in(console.app(), "adam")
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def audit(console: Console, action: str) -> list[tuple[str, object, object]]:
    return console.sql(
        "SELECT actor, before, after FROM audit_log WHERE action = :a ORDER BY id", a=action
    )


def count(console: Console, table: str) -> int:
    [(n,)] = console.sql(f"SELECT count(*) FROM {table}")
    return int(n)


def submit(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


# --- partners -------------------------------------------------------------------------------


def test_partner_fee_change_is_audited(console_light: Console):
    at = admin_page(console_light, "partners")
    at.number_input(key="edit_shop_deposit").set_value(300)
    submit(at, "Save")
    assert not errors(at), errors(at)
    assert "Partner shop saved (version 2)." in [s.value for s in at.success]
    [(actor, before, after)] = audit(console_light, "partner.update")
    assert actor == "adam"
    assert (before["deposit_fee_bp"], after["deposit_fee_bp"]) == (250, 300)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://shop.example/cb", "callback_url must be an http(s) URL"),
        ("url", "https://shop example/cb", "callback_url must be an http(s) URL"),
        ("deposit", -1, "fee"),
        ("withdrawal", 10_001, "fee"),
    ],
)
def test_partner_bad_input_changes_nothing(
    console_light: Console, field: str, value: object, message: str
):
    at = admin_page(console_light, "partners")
    widget = (
        at.text_input(key=f"edit_shop_{field}")
        if field == "url"
        else at.number_input(key=f"edit_shop_{field}")
    )
    widget.set_value(value)
    submit(at, "Save")
    assert any(e.startswith("Refused:") and message in e for e in errors(at)), errors(at)
    assert console_light.sql(
        "SELECT version, deposit_fee_bp, callback_url FROM partners WHERE id = 'shop'"
    ) == [(1, 250, "https://shop.example/callback")]
    assert audit(console_light, "partner.update") == []


def test_create_partner(console_light: Console):
    at = admin_page(console_light, "partners")
    at.text_input(key="new_partner_id").input("game")
    at.text_input(key="new_partner_name").input("Game Co")
    at.number_input(key="new_partner_deposit").set_value(100)
    at.number_input(key="new_partner_withdrawal").set_value(50)
    at.text_input(key="new_partner_url").input("http://game.example/hook")
    submit(at, "Create partner")
    assert not errors(at), errors(at)
    assert console_light.sql(
        "SELECT name, deposit_fee_bp, withdrawal_fee_bp, callback_url, pool_id FROM partners"
        " WHERE id = 'game'"
    ) == [("Game Co", 100, 50, "http://game.example/hook", None)]
    [(actor, before, after)] = audit(console_light, "partner.create")[-1:]
    assert (actor, before, after["partner_id"]) == ("adam", None, "game")


# --- API keys -------------------------------------------------------------------------------


def test_key_secret_is_shown_once_then_rotate_and_revoke(console_light: Console):
    at = admin_page(console_light, "api_keys")
    at.button(key="issue_key").click().run()
    [shown] = [c.value for c in at.code]
    key_id = shown.split("KEEPER_KEY_ID=")[1].split("\n")[0]
    assert "KEEPER_KEY_SECRET=ks_" in shown
    at.run()
    assert not at.code, "the secret is never shown again"
    assert list(at.dataframe[0].value["key_id"]) == [key_id]

    at.selectbox(key="keys_pick").select(key_id)
    at.button(key="rotate_key").click().run()
    [rotated] = [c.value for c in at.code]
    new_id = rotated.split("KEEPER_KEY_ID=")[1].split("\n")[0]
    assert new_id != key_id
    assert dict(console_light.sql("SELECT key_id, status FROM partner_api_keys")) == {
        key_id: "revoked",
        new_id: "active",
    }

    at.selectbox(key="keys_pick").select(new_id)
    at.button(key="revoke_key").click().run()
    assert f"Key {new_id} revoked: it signs nothing any more." in [s.value for s in at.success]
    assert {s for (s,) in console_light.sql("SELECT status FROM partner_api_keys")} == {"revoked"}
    actions = [
        a for (a,) in console_light.sql("SELECT action FROM audit_log WHERE entity = 'api_key'")
    ]
    assert actions == ["api_key.issue", "api_key.issue", "api_key.revoke", "api_key.rotate",
                       "api_key.revoke"]  # fmt: skip
    secrets = console_light.sql("SELECT before::text || after::text FROM audit_log")
    assert not any("ks_" in row for (row,) in secrets)


# --- cards ----------------------------------------------------------------------------------


def fill_card(at: AppTest, pan: str, **limits: int) -> None:
    at.text_input(key="card_pan").input(pan)
    at.text_input(key="card_bank").input("Test Bank")
    at.text_input(key="card_holder").input("TEST HOLDER")
    values = {
        "daily_limit_minor": 1_000_000,
        "monthly_limit_minor": 10_000_000,
        "daily_count_limit": 10,
        "monthly_count_limit": 100,
        "min_order_minor": 100,
        "max_order_minor": 500_000,
        **limits,
    }
    for name, value in values.items():
        at.number_input(key=f"card_new_{name}").set_value(value)


def test_add_card_shows_it_masked_only(console_light: Console):
    at = admin_page(console_light, "cards")
    fill_card(at, GOOD_PAN)
    submit(at, "Add card")
    assert not errors(at), errors(at)
    [(masked, status)] = console_light.sql("SELECT pan_masked, status FROM cards")
    assert (masked, status) == ("555555******4444", "active")
    frames = [d.value for d in at.dataframe]
    [listed] = [f for f in frames if "pan_masked" in f.columns]
    assert listed["pan_masked"].tolist() == ["555555******4444"]
    text = " ".join(f.to_csv() for f in frames) + " ".join(str(w.value) for w in at.text_input)
    assert "5555555555554444" not in text.replace(" ", "")
    [(actor, before, after)] = audit(console_light, "card.create")
    assert (actor, before, after["pan_masked"]) == ("adam", None, "555555******4444")


@pytest.mark.parametrize(
    ("pan", "limits", "message"),
    [
        ("4111 1111 1111 1112", {}, "Luhn"),
        ("4111-abcd-1111-1111", {}, "only digits"),
        ("4111", {}, "13-19 digits"),
        (CARD_PAN, {"daily_limit_minor": -5}, ""),
        (CARD_PAN, {"min_order_minor": 600_000}, ""),
    ],
)
def test_bad_card_input_changes_nothing(
    console_light: Console, pan: str, limits: dict[str, int], message: str
):
    at = admin_page(console_light, "cards")
    fill_card(at, pan, **limits)
    submit(at, "Add card")
    assert any(e.startswith("Refused:") and message in e for e in errors(at)), errors(at)
    assert count(console_light, "cards") == 0
    assert audit(console_light, "card.create") == []


def test_card_limits_status_and_holiday(console_light: Console):
    at = admin_page(console_light, "cards")
    fill_card(at, GOOD_PAN)
    submit(at, "Add card")
    [(card_id,)] = console_light.sql("SELECT id::text FROM cards")
    at.run()

    at.number_input(key=f"edit_{card_id}_daily_limit_minor").set_value(-1)
    submit(at, "Save limits")
    assert any("Refused:" in e for e in errors(at))
    assert console_light.sql("SELECT daily_limit_minor, version FROM cards") == [(1_000_000, 1)]

    at.number_input(key=f"edit_{card_id}_daily_limit_minor").set_value(2_000_000)
    submit(at, "Save limits")
    assert not errors(at), errors(at)
    assert console_light.sql("SELECT daily_limit_minor, version FROM cards") == [(2_000_000, 2)]

    at.selectbox(key=f"status_{card_id}_value").select("blocked")
    submit(at, "Set status")
    submit(at, "Start holiday")
    assert console_light.sql("SELECT status, holiday_until IS NOT NULL FROM cards") == [
        ("blocked", True)
    ]
    submit(at, "End holiday")
    assert console_light.sql("SELECT holiday_until FROM cards") == [(None,)]
    actions = [
        a for (a,) in console_light.sql("SELECT action FROM audit_log WHERE entity = 'card'")
    ]
    assert actions == ["card.create", "card.update", "card.status", "card.holiday", "card.holiday"]


def test_create_pool(console_light: Console):
    at = admin_page(console_light, "cards")
    at.text_input(key="pool_id").input("Bad Pool!")
    at.text_input(key="pool_name").input("Reserve")
    submit(at, "Create pool")
    assert any("slug" in e for e in errors(at))
    at.text_input(key="pool_id").input("reserve")
    at.text_input(key="pool_name").input("Reserve")
    submit(at, "Create pool")
    assert [p for (p,) in console_light.sql("SELECT id FROM card_pools ORDER BY id")] == [
        "main",
        "reserve",
    ]


# --- users and the audit log ----------------------------------------------------------------


def test_users_role_change_disable_and_create(console_light: Console):
    at = admin_page(console_light, "users")
    assert "adam" not in at.selectbox(key="user_pick").options  # no self-demotion
    at.selectbox(key="user_pick").select("ann")
    at.selectbox(key="user_role").select("operator")
    at.button(key="save_role").click().run()
    assert "ann is now operator." in [s.value for s in at.success]
    at.selectbox(key="user_pick").select("ann")
    at.button(key="toggle_user").click().run()
    assert console_light.sql(
        "SELECT role, is_active FROM console_users WHERE username = 'ann'"
    ) == [("operator", False)]

    at.text_input(key="new_username").input("zoe")
    at.text_input(key="new_password").input("short")
    submit(at, "Create user")
    assert any("password must be" in e for e in errors(at))
    at.text_input(key="new_username").input("zoe")
    at.text_input(key="new_password").input("a long enough password")
    submit(at, "Create user")
    assert console_light.sql("SELECT role FROM console_users WHERE username = 'zoe'") == [
        ("operator",)
    ]
    [(actor, before, after)] = audit(console_light, "user.role")
    assert (actor, before["role"], after["role"]) == ("adam", "analyst", "operator")


def test_audit_page_lists_changes_with_before_and_after(console_light: Console):
    at = admin_page(console_light, "partners")
    at.number_input(key="edit_shop_withdrawal").set_value(175)
    submit(at, "Save")
    at.switch_page("views/audit.py").run()
    log = at.dataframe[0].value
    row = log[log["action"] == "partner.update"].iloc[0]
    assert row["actor"] == "adam"
    assert json.loads(row["before"])["withdrawal_fee_bp"] == 150
    assert json.loads(row["after"])["withdrawal_fee_bp"] == 175
    at.text_input(key="audit_actor").input("test").run()
    assert set(at.dataframe[0].value["actor"]) == {"test"}
    assert at.download_button(key="audit_csv")


# --- publishing -----------------------------------------------------------------------------


@pytest.fixture
def publishing(
    console_light: Console, kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Console, str, str]]:
    prefix = f"{unique_name}."
    monkeypatch.setenv("KEEPER_CONSOLE_PUBLISH_CONFIG", "true")
    monkeypatch.setenv("KEEPER_CONSOLE_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KEEPER_CONSOLE_TOPIC_PREFIX", prefix)
    yield console_light, kafka_bootstrap, prefix
    from tests.fixtures.system import drop_topics

    asyncio.run(drop_topics(kafka_bootstrap, prefix))


async def _read_all(bootstrap: str, topic: str) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        return [json.loads(m.value) for ms in batches.values() for m in ms]
    finally:
        await consumer.stop()


def test_changes_are_published_to_the_agents(publishing: tuple[Console, str, str]):
    console, bootstrap, prefix = publishing
    at = admin_page(console, "partners")
    at.number_input(key="edit_shop_deposit").set_value(320)
    submit(at, "Save")
    assert not at.warning, [w.value for w in at.warning]
    at.switch_page("views/cards.py").run()
    fill_card(at, GOOD_PAN)
    submit(at, "Add card")
    assert not at.warning, [w.value for w in at.warning]

    partners = asyncio.run(_read_all(bootstrap, f"{prefix}config-partners"))
    assert [(m["payload"]["partner_id"], m["payload"]["deposit_fee_bp"]) for m in partners] == [
        ("shop", 320)
    ]
    card_messages = asyncio.run(_read_all(bootstrap, f"{prefix}config-cards"))
    assert [m["payload"]["pan_masked"] for m in card_messages] == ["555555******4444"]
