"""The console's bank-notification pages with ``AppTest`` against a real PostgreSQL: devices
(secret shown once, revoked), the template editor (tried, saved, refused), the notifications
page (filters, dismiss, attach to an expired order for disputes), device health on card
monitoring, and a suggested match approved from the queue in one click."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from db.crypto import SecretBox
from db.repositories import devices, notifications
from domain.bank_messages import MessageKind, Parsed
from stream_agents.card_projector import CardProjectorSettings, run_card_projector
from tests.fixtures.console import Console, seed_history, sign_in
from tests.fixtures.system import System, stop_quietly

pytestmark = pytest.mark.integration


def page(console: Console, user: str, name: str) -> AppTest:
    at = sign_in(console.app(), user)
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "success") for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def card_of(console: Console) -> str:
    [(card_id,)] = console.sql("SELECT id::text FROM cards LIMIT 1")
    return str(card_id)


def test_the_devices_page_registers_a_device_showing_its_secret_once(console_light: Console):
    seed_history(console_light, datetime.now(UTC) - timedelta(hours=3))
    at = page(console_light, "adam", "devices")
    at.text_input(key="dev_id").input("phone-4417")
    at = click(at, "Register")
    assert not at.exception, at.exception
    [code] = at.code
    assert "secret: ds_" in code.value
    assert "Device phone-4417 registered." in texts(at)
    at.run()  # the next run shows it no more
    assert not at.code
    [(status,)] = console_light.sql("SELECT status FROM devices WHERE id = 'phone-4417'")
    assert status == "active"
    at = click(at, "Revoke")
    [(status,)] = console_light.sql("SELECT status FROM devices WHERE id = 'phone-4417'")
    assert status == "revoked"
    actions = {a for (a,) in console_light.sql("SELECT action FROM audit_log")}
    assert {"device.register", "device.revoke"} <= actions


def test_the_template_editor_tries_saves_and_refuses(console_light: Console):
    at = page(console_light, "adam", "bank_templates")
    at.selectbox(key="tpl_pick").set_value("alfa-credit-en").run()
    at.text_area(key="tpl_sample").input(
        "Card *4417: credit RUB 1500.00 from IVAN. Balance: RUB 1.00"
    )
    at.text_input(key="tpl_sample_sender").input("Alfa-Bank")
    at = click(at, "Try")
    assert "amount_minor=150000" in texts(at), texts(at)

    pattern_box = at.text_area(key="tpl_pattern_alfa-credit-en")
    pattern_box.input(r"(?P<amount>(\d)\2)")  # a back-reference: refused
    at = click(at, "Save")
    assert "Refused" in texts(at)
    [(pattern, version)] = console_light.sql(
        "SELECT pattern, version FROM bank_templates WHERE template_id = 'alfa-credit-en'"
    )
    assert (r"\2" in pattern, version) == (False, 1)

    at.text_area(key="tpl_pattern_alfa-credit-en").input(r"credit RUB (?P<amount>[\d.]+)")
    at = click(at, "Save")
    assert "Template alfa-credit-en saved." in texts(at), texts(at)
    [(version,)] = console_light.sql(
        "SELECT version FROM bank_templates WHERE template_id = 'alfa-credit-en'"
    )
    assert version == 2


def _unmatched(console: Console, card_id: str, amount_minor: int) -> uuid.UUID:
    with console.sessions.begin() as s:
        if s.get(devices.Device, "phone-1") is None:  # type: ignore[attr-defined]
            devices.register_device(s, SecretBox.from_settings(), "phone-1", card_id, "test")
        stored = notifications.store(
            s,
            notifications.NewNotification(
                device_id="phone-1",
                card_id=card_id,
                device_notification_id=uuid.uuid4().hex,
                text=f"Card *4417: credit RUB {amount_minor // 100}.00. Balance: RUB 1.00",
                sender="Alfa-Bank",
                received_at=datetime.now(UTC),
                parsed=Parsed(
                    template_id="alfa-credit-en",
                    kind=MessageKind.CREDIT,
                    amount_minor=amount_minor,
                    currency="RUB",
                ),
            ),
        )
    console.execute(
        "UPDATE notifications SET outcome = 'unmatched', reason = 'no_open_order' WHERE id = :id",
        id=stored.notification_id,
    )
    return stored.notification_id


def test_an_unmatched_notification_is_dismissed_or_attached_to_an_expired_order(
    console_light: Console,
):
    uids = seed_history(console_light, datetime.now(UTC) - timedelta(hours=3))
    card_id = card_of(console_light)
    first = _unmatched(console_light, card_id, 12_300)
    second = _unmatched(console_light, card_id, 30_000)  # the expired deposit "a4"

    at = page(console_light, "olga", "notifications")
    at.selectbox(key="nt_outcome").set_value("unmatched").run()
    [table] = at.dataframe
    assert len(table.value) == 2
    at.selectbox(key="nt_pick").set_value(str(first)).run()
    at = click(at, "Dismiss")  # no reason: refused
    assert "needs a reason" in texts(at)
    at.text_input(key="nt_reason").input("a refund from the bank, not a payer")
    at = click(at, "Dismiss")
    assert "Dismissed." in texts(at)

    at.selectbox(key="nt_pick").set_value(str(second)).run()
    at.text_input(key="nt_uid").input(uids["a4"])
    at = click(at, "Attach to this order")
    assert "settled as a dispute" in texts(at), texts(at)
    rows = dict(console_light.sql("SELECT id, outcome FROM notifications"))
    assert (rows[first], rows[second]) == ("dismissed", "attached")
    with console_light.sessions() as s:
        assert notifications.attached_to_closed(s) == [(second, uuid.UUID(uids["a4"]))]
    # the hand-over: a dispute on the expired deposit, the notification its evidence
    [(opened_by, evidence, status)] = console_light.sql(
        "SELECT opened_by, notification_id, status FROM disputes WHERE order_uid = :u",
        u=uids["a4"],
    )
    assert (opened_by, evidence, status) == ("operator", second, "open")
    at.switch_page("views/disputes.py").run()
    dispute_id = console_light.sql("SELECT id FROM disputes")[0][0]
    at.button(key=f"open_dispute_{dispute_id}").click().run()
    assert not at.exception, at.exception
    assert "Card *4417: credit RUB 300.00. Balance: RUB 1.00" in [t.value for t in at.text]


def test_the_queue_alerts_an_opted_in_operator_to_a_credit_that_matched_no_order(
    console_light: Console,
):
    seed_history(console_light, datetime.now(UTC) - timedelta(hours=3))
    console_light.execute("UPDATE console_users SET notify_desktop = true WHERE username = 'olga'")
    at = page(console_light, "olga", "queue")  # the first look: nothing is news
    assert not [t for t in at.toast if "bank credit" in t.value]
    notice = _unmatched(console_light, card_of(console_light), 45_600)
    at.run()  # what the fragment's next tick does
    assert "1 bank credit(s) matched no order: see Bank notifications" in [
        t.value for t in at.toast
    ]
    scripts = [h.proto.body for h in at.get("html") if "matched no order" in h.proto.body]
    [script] = scripts
    assert f"Bank notification {notice.hex[:8]}" in script
    assert "456" not in script  # neither the amount nor the text's card digits
    assert "4417" not in script
    at.run()  # seen already: no second alert
    assert not [h for h in at.get("html") if "matched no order" in h.proto.body]


def test_card_monitoring_shows_a_silent_device_and_its_card_out_of_rotation(
    console_light: Console,
):
    seed_history(console_light, datetime.now(UTC) - timedelta(hours=3))
    card_id = card_of(console_light)
    with console_light.sessions.begin() as s:
        devices.register_device(s, SecretBox.from_settings(), "phone-9", card_id, "test")
    console_light.execute("UPDATE devices SET silent_since = now() WHERE id = 'phone-9'")
    at = page(console_light, "olga", "card_monitoring")
    cards_table, health = at.dataframe[0].value, at.dataframe[1].value
    assert list(cards_table["state"]) == ["device silent"]
    assert list(health["health"]) == ["silent: card out of rotation"]


async def test_the_queue_shows_a_suggested_match_and_one_click_approves(
    console_system: tuple[System, Console],
):
    s, console = console_system
    stop = asyncio.Event()
    projector = asyncio.create_task(
        run_card_projector(
            CardProjectorSettings(
                kafka_bootstrap_servers=s.kafka_bootstrap,
                database_url=s.database_url,
                topic_prefix=s.topic_prefix,
                max_wait_ms=100,
                metadata_max_age_ms=1000,
                expiry_sweep_interval_s=0,
                device_sweep_interval_s=0,
            ),
            stop,
        )
    )
    try:
        from tests.integration.test_notifications import credit, deposit, note, register

        uid, card_id = await deposit(s, 77_700)
        phone = register(s, "phone-q", card_id)
        answer = await phone.post("/v1/devices/notifications", json=note(card_id, credit(77_700)))
        assert answer.status_code == 201, answer.text
        await s.row(uid, "processing")

        def suggested() -> bool:
            with s.sessions() as session:
                return bool(notifications.suggestions(session, [uuid.UUID(uid)]))

        await s.eventually(suggested, "the suggestion recorded")
        at = await asyncio.to_thread(sign_in, console.app(), "olga")
        assert ":green-badge[bank notification matches]" in [m.value for m in at.markdown]
        next(b for b in at.button if b.label == "Approve match").click()
        at = await asyncio.to_thread(at.run)
        row = await s.row(uid, "approved")
        assert row.decided_by == "olga"
        assert answer.json()["id"] in row.decision_reason
        await phone.aclose()
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await stop_quietly(projector, "card projector")
