"""The console's bank-notification pages with ``AppTest`` against a real PostgreSQL: devices
(secret shown once, revoked), the template editor (tried, saved, refused), the notifications
page (filters, dismiss, attach to an expired order for disputes, attach to an open deposit
which approves it, and the refusals), device health on card monitoring, and a suggested match
approved from the queue in one click."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from db.crypto import SecretBox
from db.repositories import devices, notifications
from stream_agents.card_projector import CardProjectorSettings, run_card_projector
from tests.fixtures.console import Console, seed_history, sign_in
from tests.fixtures.device import unmatched_credit
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
        return unmatched_credit(s, card_id, amount_minor)


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
    assert "Card *4417: credit RUB 300.00. Balance: RUB 24,210.44" in [t.value for t in at.text]


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


@contextlib.asynccontextmanager
async def card_projector(s: System) -> AsyncIterator[None]:
    """The card projector, which writes the desks' decisions about notifications."""
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
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await stop_quietly(projector, "card projector")


async def test_the_queue_shows_a_suggested_match_and_one_click_approves(
    console_system: tuple[System, Console],
):
    from tests.integration.test_notifications import credit, deposit, note, register

    s, console = console_system
    async with card_projector(s):
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


async def _late_credit(
    s: System,
    phones: dict[str, Any],
    card_id: str,
    amount_minor: int,
    reason: str = "outside_window",
) -> str:
    """A credit the card's phone saw with its clock 10 minutes slow: before the open order of
    its amount was created, so the desk leaves it ``unmatched`` (``reason``); its id."""
    from tests.integration.test_notifications import credit, note, register

    if card_id not in phones:
        phones[card_id] = register(s, f"phone-{len(phones)}", card_id)
    slow = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    answer = await phones[card_id].post(
        "/v1/devices/notifications", json=note(card_id, credit(amount_minor), received_at=slow)
    )
    assert answer.status_code == 201, answer.text
    notice = str(answer.json()["id"])

    def unmatched() -> Any:
        found = s.sql("SELECT outcome, reason FROM notifications WHERE id = :id", id=notice)
        return found[0] if found and found[0].outcome != "received" else None

    settled = await s.eventually(unmatched, "the desk's outcome for the late credit")
    assert (settled.outcome, settled.reason) == ("unmatched", reason)
    return notice


async def _attach(at: AppTest, notice: str, uid: str) -> AppTest:
    await asyncio.to_thread(at.selectbox(key="nt_pick").set_value(notice).run)
    at.text_input(key="nt_uid").input(uid)
    next(b for b in at.button if b.label == "Attach to this order").click()
    return await asyncio.to_thread(at.run)


async def test_an_unmatched_credit_attached_to_an_open_deposit_approves_it(
    console_system: tuple[System, Console],
):
    """A deposit still ``new`` (the payer never pressed "I have paid") is confirmed on the
    operator's word and approved; one ``processing`` is approved; each with one ledger credit,
    the notification attached, and the operator in the audit log. Refused, changing nothing:
    the same notification attached again (from a second operator's page open on it) and a
    credit attached to a withdrawal."""
    from tests.integration.test_notifications import deposit

    s, console = console_system
    phones: dict[str, Any] = {}
    async with card_projector(s):
        fresh, fresh_card = await deposit(s, 61_100)
        paid, paid_card = await deposit(s, 62_200)
        confirmed = await s.api.post(f"/v1/pay/{paid}/confirm", json={})
        assert confirmed.status_code == 200, confirmed.text
        await s.row(paid, "processing")
        fresh_notice = await _late_credit(s, phones, fresh_card, 61_100)
        paid_notice = await _late_credit(s, phones, paid_card, 62_200)

        olga = await asyncio.to_thread(page, console, "olga", "notifications")
        ivan = await asyncio.to_thread(page, console, "ivan", "notifications")
        await asyncio.to_thread(ivan.selectbox(key="nt_pick").set_value(fresh_notice).run)

        olga = await _attach(olga, fresh_notice, fresh)
        assert not olga.exception, olga.exception
        assert f"Order {fresh} approved." in texts(olga), texts(olga)
        olga = await _attach(olga, paid_notice, paid)
        assert f"Order {paid} approved." in texts(olga), texts(olga)

        for uid, notice in ((fresh, fresh_notice), (paid, paid_notice)):
            row = await s.row(uid, "approved")
            assert (row.decided_by, row.decision_reason) == ("olga", f"bank notification {notice}")
            [(outcome, matched, resolved_by)] = s.sql(
                "SELECT outcome, matched_uid::text, resolved_by FROM notifications WHERE id = :n",
                n=notice,
            )
            assert (outcome, matched, resolved_by) == ("attached", uid, "olga")
        credits = "SELECT COUNT(*) FROM ledger_postings WHERE order_uid = :u AND kind = " + (
            "'deposit_credit' AND account LIKE 'partner:%'"
        )
        for uid in (fresh, paid):
            await s.eventually(lambda u=uid: s.sql(credits, u=u)[0][0] == 1, "the ledger credit")
        audited = {
            (a.action, a.entity_id)
            for a in s.sql("SELECT action, entity_id FROM audit_log WHERE actor = 'olga'")
        }
        assert {
            ("notification.attach", fresh_notice),
            ("order.confirm_payment", fresh),
            ("order.decide", fresh),
            ("notification.attach", paid_notice),
            ("order.decide", paid),
        } <= audited
        assert ("order.confirm_payment", paid) not in audited  # the payer had confirmed it

        # the second operator still has the first notification picked: refused, with why
        before = s.sql("SELECT COUNT(*) FROM audit_log")[0][0]
        ivan = await _attach(ivan, fresh_notice, fresh)
        assert not ivan.exception, ivan.exception
        assert f"Refused: notification {fresh_notice} is attached, not unmatched" in texts(ivan)

        # a credit attached to a withdrawal: refused, with why
        withdrawal = await s.partner.post(
            "/v1/orders",
            json={
                "direction": "withdrawal",
                "amount_minor": 10_000,
                "currency": "RUB",
                "partner_order_id": f"po-{uuid.uuid4().hex[:10]}",
            },
        )
        assert withdrawal.status_code == 201, withdrawal.text
        out = str(withdrawal.json()["uid"])
        await s.row(out, "new")
        stray = await _late_credit(s, phones, fresh_card, 10_000, "no_open_order")
        await asyncio.to_thread(ivan.run)  # the page again: the new notification listed
        ivan = await _attach(ivan, stray, out)
        assert f"Refused: order {out} is a withdrawal: a bank credit pays a deposit" in texts(ivan)

        assert s.sql("SELECT COUNT(*) FROM audit_log")[0][0] == before
        [(outcome,)] = s.sql("SELECT outcome FROM notifications WHERE id = :n", n=stray)
        assert outcome == "unmatched"
        assert s.sql("SELECT status FROM orders WHERE uid = :u", u=out)[0][0] == "new"
        assert s.sql(credits, u=fresh)[0][0] == 1
        for phone in phones.values():
            await phone.aclose()
