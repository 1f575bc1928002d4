"""The callback pages with ``AppTest`` against a real PostgreSQL: the delivery log (filters,
one delivery in full, *Resend* as the repository and the CLI resend, audited) and the
callback secrets (shown once, sealed at rest, rotation, revoke); who may open which; bad
input refused with a clear message and nothing changed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from db.crypto import SecretBox
from db.repositories import callbacks as repo
from db.repositories import partners
from ops_console import deliveries
from schemas.callbacks import NewDelivery
from tests.fixtures.console import Console, sign_in

pytestmark = pytest.mark.integration

SHOP_URL = "https://shop.example/callback"


@dataclass(frozen=True)
class Seeded:
    dead: uuid.UUID
    delivered: uuid.UUID
    pending: uuid.UUID
    skipped: uuid.UUID
    orders: dict[uuid.UUID, uuid.UUID]  # delivery id -> order uid


def facts(partner_id: str, event: str) -> NewDelivery:
    delivery_id, order_uid = uuid.uuid4(), uuid.uuid4()
    body = json.dumps(
        {"delivery_id": str(delivery_id), "event": event, "order": {"uid": str(order_uid)}},
        separators=(",", ":"),
    )
    return NewDelivery(delivery_id, order_uid, event, 4, partner_id, body)


@pytest.fixture
def seeded(console_light: Console) -> Seeded:
    """Four deliveries, one in each status: shop's dead and delivered, game's pending (a
    retry due in ten minutes) and skipped."""
    now = datetime.now(UTC)
    made = {
        "dead": facts("shop", "order.failed"),
        "delivered": facts("shop", "order.approved"),
        "pending": facts("game", "order.expired"),
        "skipped": facts("game", "order.declined"),
    }
    with console_light.sessions.begin() as s:
        partners.create_partner(
            s, partner_id="game", name="Game", deposit_fee_bp=0, withdrawal_fee_bp=0, actor="test"
        )
        assert repo.record_deliveries(s, made.values(), now, repo.DEFAULT_WINDOW_S) == 4
        ids = {name: f.delivery_id for name, f in made.items()}
        repo.mark_failed(
            s, ids["dead"], now, retry_at=None, status_code=503, error="HTTP 503", url=SHOP_URL
        )
        repo.mark_delivered(s, ids["delivered"], now, 200, SHOP_URL)
        repo.mark_failed(
            s,
            ids["pending"],
            now,
            retry_at=now + timedelta(minutes=10),
            status_code=None,
            error="ConnectTimeout",
            url="https://bot:hunter2@game.example/hook",
        )
        repo.mark_skipped(s, ids["skipped"], now, "no callback URL")
    return Seeded(**ids, orders={f.delivery_id: f.order_uid for f in made.values()})


def open_page(console: Console, username: str, page: str) -> AppTest:
    at = sign_in(console.app(), username)
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "success") for e in at.get(kind)]
    parts += [e.value for e in at.caption] + [e.value for e in at.markdown]
    return "\n".join(str(p) for p in parts)


def listed(at: AppTest) -> set[str]:
    return set(at.dataframe[0].value["delivery_id"])


def detail(at: AppTest) -> dict[str, str]:
    [shown] = at.table
    return dict(zip(shown.value["field"], shown.value["value"], strict=True))


def resend_audit(console: Console) -> list[tuple[str, str, Any, Any]]:
    return console.sql(
        "SELECT actor, entity_id, before, after FROM audit_log WHERE action = 'callback.resend'"
        " ORDER BY id"
    )


def row(console: Console, delivery_id: uuid.UUID) -> Any:
    [found] = console.sql(
        "SELECT status, attempts, next_attempt_at, give_up_at, delivered_at, parked_at,"
        " last_status_code, last_error FROM callback_deliveries WHERE delivery_id = :d",
        d=delivery_id,
    )
    return found


def open_delivery(at: AppTest, delivery_id: uuid.UUID) -> AppTest:
    at.selectbox(key="cb_pick").select(str(delivery_id)).run()
    assert not at.exception, at.exception
    return at


# --- who may open the pages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "page", "opens"),
    [
        ("ann", "callbacks", False),
        ("ann", "callback_secrets", False),
        ("olga", "callbacks", True),
        ("olga", "callback_secrets", False),
        ("adam", "callbacks", True),
        ("adam", "callback_secrets", True),
    ],
)
def test_who_may_open_the_callback_pages(
    console_light: Console, username: str, page: str, opens: bool
):
    at = open_page(console_light, username, page)
    refused = "may not open this page" in texts(at)
    assert refused is not opens
    assert bool(at.dataframe) is opens  # a refused page shows nothing of the data


# --- the delivery log -----------------------------------------------------------------------


def test_deliveries_are_listed_and_filtered(console_light: Console, seeded: Seeded):
    at = open_page(console_light, "olga", "callbacks")
    everything = {str(d) for d in (seeded.dead, seeded.delivered, seeded.pending, seeded.skipped)}
    assert listed(at) == everything
    assert "body" not in at.dataframe[0].value.columns
    assert {m.label: m.value for m in at.metric} == {
        "pending": "1",
        "delivered": "1",
        "dead": "1",
        "skipped": "1",
    }

    at.selectbox(key="cb_status").select("dead").run()
    assert listed(at) == {str(seeded.dead)}
    assert list(at.dataframe[0].value["dead_lettered"]) == [True]

    at.selectbox(key="cb_status").select("any").run()
    at.selectbox(key="cb_partner").select("game").run()
    assert listed(at) == {str(seeded.pending), str(seeded.skipped)}
    assert {m.label: m.value for m in at.metric}["dead"] == "0"

    at.selectbox(key="cb_partner").select("any").run()
    at.text_input(key="cb_order").input(str(seeded.orders[seeded.delivered])).run()
    assert listed(at) == {str(seeded.delivered)}


def test_a_malformed_order_uid_is_refused_clearly(console_light: Console, seeded: Seeded):
    at = open_page(console_light, "olga", "callbacks")
    at.text_input(key="cb_order").input("inv-123").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"The order uid must be a UUID such as {deliveries.UUID_EXAMPLE}."
    ]
    assert not at.dataframe


def test_one_delivery_in_full_never_a_secret(console_light: Console, seeded: Seeded):
    with console_light.sessions.begin() as s:
        _, secret = repo.issue_callback_secret(s, SecretBox.from_settings(), "game", "test")
    at = open_page(console_light, "olga", "callbacks")

    shown = detail(open_delivery(at, seeded.dead))
    assert shown["delivery id"] == str(seeded.dead)
    assert shown["status"].startswith("dead")
    assert (shown["attempts"], shown["last HTTP status"], shown["last error"]) == (
        "1",
        "503",
        "HTTP 503",
    )
    assert (shown["dead-lettered"], shown["next attempt"]) == ("yes", "— (not pending)")
    assert shown["last URL"] == SHOP_URL
    assert not at.button(key="cb_resend").disabled

    shown = detail(open_delivery(at, seeded.pending))
    assert shown["status"].startswith("pending")
    assert (shown["last HTTP status"], shown["last error"]) == ("—", "ConnectTimeout")
    assert shown["next attempt"].endswith(" UTC")  # ten minutes ahead: not due yet
    assert shown["dead-lettered"] == "no"
    assert shown["last URL"] == "https://bot:***@game.example/hook"
    assert at.button(key="cb_resend").disabled
    assert "nothing to resend" in texts(at)

    page = texts(at) + " ".join(str(e.value) for e in (*at.table, *at.code, *at.dataframe))
    assert secret not in page
    assert "hunter2" not in page


def test_an_unknown_or_malformed_delivery_id_is_refused_clearly(
    console_light: Console, seeded: Seeded
):
    at = open_page(console_light, "olga", "callbacks")
    unknown = uuid.uuid4()
    at.text_input(key="cb_pick_id").input(str(unknown)).run()
    assert [w.value for w in at.warning] == [
        f"Unknown delivery {unknown}: no callback delivery has this id."
    ]
    assert not at.table
    at.text_input(key="cb_pick_id").input("not-an-id").run()
    assert [e.value for e in at.error] == [
        f"A delivery id must be a UUID such as {deliveries.UUID_EXAMPLE}."
    ]
    at.text_input(key="cb_pick_id").input(f"  {seeded.skipped}  ").run()
    assert detail(at)["delivery id"] == str(seeded.skipped)
    assert resend_audit(console_light) == []


@pytest.mark.parametrize("which", ["dead", "delivered", "skipped"])
def test_resend_makes_a_finished_delivery_pending_and_is_audited(
    console_light: Console, seeded: Seeded, which: str
):
    delivery_id: uuid.UUID = getattr(seeded, which)
    at = open_delivery(open_page(console_light, "olga", "callbacks"), delivery_id)
    before = datetime.now(UTC)
    at.button(key="cb_resend").click().run()
    assert not at.exception, at.exception

    [message] = [s.value for s in at.success]
    assert message.startswith(f"Resent: delivery {delivery_id} (")
    now = row(console_light, delivery_id)
    assert (now.status, now.attempts, now.delivered_at, now.parked_at) == ("pending", 0, None, None)
    assert before <= now.next_attempt_at <= datetime.now(UTC)
    assert now.give_up_at - now.next_attempt_at == timedelta(seconds=repo.DEFAULT_WINDOW_S)
    [(actor, entity_id, was, became)] = resend_audit(console_light)
    assert (actor, entity_id) == ("olga", str(delivery_id))
    assert (was["status"], became["status"]) == (which, "pending")
    assert became["attempts"] == 0
    assert "body" not in was
    assert "body" not in became
    # The page shows the fresh state: pending, so nothing more to resend.
    assert detail(at)["status"].startswith("pending")
    assert at.button(key="cb_resend").disabled


def test_resend_uses_the_callbacks_retry_window(
    console_light: Console, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KEEPER_CALLBACKS_RETRY_WINDOW_S", "3600")
    at = open_delivery(open_page(console_light, "adam", "callbacks"), seeded.dead)
    at.button(key="cb_resend").click().run()
    now = row(console_light, seeded.dead)
    assert now.give_up_at - now.next_attempt_at == timedelta(hours=1)


def test_a_resend_racing_another_changes_nothing(console_light: Console, seeded: Seeded):
    """The delivery was dead on screen; another operator resent it meanwhile: the click
    reaches the repository, which refuses, and the page says there was nothing to resend."""
    at = open_delivery(open_page(console_light, "olga", "callbacks"), seeded.dead)
    with console_light.sessions.begin() as s:
        repo.resend(s, seeded.dead, "ivan")
    untouched = row(console_light, seeded.dead)
    at.button(key="cb_resend").click().run()
    assert not at.exception, at.exception
    [warning] = [w.value for w in at.warning]
    assert warning.startswith(f"Nothing to resend: delivery {seeded.dead} is pending already")
    assert warning.endswith("Nothing changed.")
    assert not at.success
    assert row(console_light, seeded.dead) == untouched
    assert [actor for actor, *_ in resend_audit(console_light)] == ["ivan"]


def test_a_resend_clicked_after_losing_the_role_does_nothing(
    console_light: Console, seeded: Seeded
):
    at = open_delivery(open_page(console_light, "olga", "callbacks"), seeded.dead)
    console_light.execute("UPDATE console_users SET role = 'analyst' WHERE username = 'olga'")
    at.button(key="cb_resend").click().run()
    assert not at.exception, at.exception
    assert "may not open this page" in texts(at)
    assert row(console_light, seeded.dead).status == "dead"
    assert resend_audit(console_light) == []


def test_resend_outcomes_of_the_helper(console_light: Console, seeded: Seeded):
    unknown = uuid.uuid4()
    outcome = deliveries.resend(console_light.sessions, unknown, "olga")
    assert (outcome.kind, outcome.message) == (
        "error",
        f"Unknown delivery {unknown}: nothing was resent.",
    )
    assert deliveries.resend(console_light.sessions, "garbage", "olga").kind == "error"
    assert deliveries.resend(console_light.sessions, seeded.pending, "olga").kind == "warning"
    assert resend_audit(console_light) == []
    assert deliveries.resend(console_light.sessions, seeded.dead, "olga").kind == "success"
    assert len(resend_audit(console_light)) == 1


# --- callback secrets -----------------------------------------------------------------------


def issue(at: AppTest) -> tuple[str, str]:
    at.button(key="issue_callback_secret").click().run()
    assert not at.exception, at.exception
    [shown] = [c.value for c in at.code]
    secret_id = shown.split("KEEPER_CALLBACK_SECRET_ID=")[1].split("\n")[0]
    secret = shown.split("KEEPER_CALLBACK_SECRET=")[1].strip()
    return secret_id, secret


def secret_audit(console: Console) -> list[tuple[str, str, Any, Any]]:
    return console.sql(
        "SELECT action, actor, before, after FROM audit_log WHERE entity = 'callback_secret'"
        " ORDER BY id"
    )


def test_a_secret_is_shown_once_and_stored_sealed(console_light: Console):
    at = open_page(console_light, "adam", "callback_secrets")
    assert "shop has no active callback secret" in texts(at)
    secret_id, secret = issue(at)
    assert secret.startswith("cs_")
    assert len(secret) == 46
    assert f"Callback secret {secret_id} issued for shop." in [s.value for s in at.success]
    assert "shown this once" in texts(at)

    at.run()
    assert not at.code, "the secret is never shown again"
    listed_secrets = at.dataframe[0].value
    assert list(listed_secrets["secret_id"]) == [secret_id]
    assert list(listed_secrets["active"]) == [True]
    assert secret not in listed_secrets.to_csv()

    [(sealed,)] = console_light.sql("SELECT secret_encrypted FROM callback_secrets")
    assert secret.encode() not in bytes(sealed)
    assert SecretBox.from_settings().open(bytes(sealed).decode("ascii")) == secret
    with console_light.sessions() as s:
        assert repo.active_callback_secrets(s, SecretBox.from_settings(), "shop") == [
            secret.encode()
        ]
    [(action, actor, before, after)] = secret_audit(console_light)
    assert (action, actor, before) == ("callback_secret.issue", "adam", None)
    assert after == {"secret_id": secret_id, "partner_id": "shop", "active": True}
    assert not any(secret in str(r) for r in console_light.sql("SELECT * FROM audit_log"))


def test_rotation_keeps_both_active_until_the_old_one_is_revoked(console_light: Console):
    at = open_page(console_light, "adam", "callback_secrets")
    old_id, _ = issue(at)
    new_id, new_secret = issue(at)
    at.run()
    assert dict(console_light.sql("SELECT secret_id, active FROM callback_secrets")) == {
        old_id: True,
        new_id: True,
    }
    assert "2 active" in texts(at)

    at.selectbox(key="cbs_pick").select(old_id)
    at.button(key="revoke_callback_secret").click().run()
    assert not at.exception, at.exception
    assert f"Callback secret {old_id} revoked: callbacks are no longer signed with it." in [
        s.value for s in at.success
    ]
    assert console_light.sql(
        "SELECT secret_id, active, revoked_at IS NOT NULL FROM callback_secrets ORDER BY active"
    ) == [(old_id, False, True), (new_id, True, False)]
    with console_light.sessions() as s:
        assert repo.active_callback_secrets(s, SecretBox.from_settings(), "shop") == [
            new_secret.encode()
        ]
    assert at.selectbox(key="cbs_pick").options == [new_id]
    assert "only active secret" in texts(at)

    at.button(key="revoke_callback_secret").click().run()
    assert "shop has no active callback secret" in texts(at)
    actions = [(action, actor) for action, actor, *_ in secret_audit(console_light)]
    assert actions == [
        ("callback_secret.issue", "adam"),
        ("callback_secret.issue", "adam"),
        ("callback_secret.revoke", "adam"),
        ("callback_secret.revoke", "adam"),
    ]
    *_, (_, _, before, after) = secret_audit(console_light)
    assert (before["active"], after["active"]) == (True, False)


def test_revoking_a_secret_revoked_meanwhile_changes_nothing(console_light: Console):
    """Two active secrets, the second on screen; someone revokes it meanwhile. The click
    is for the secret that was on screen: refused as revoked already, never redirected to
    the other one (which the refreshed list would now offer first)."""
    at = open_page(console_light, "adam", "callback_secrets")
    first_id, _ = issue(at)
    second_id, _ = issue(at)
    at.run()
    at.selectbox(key="cbs_pick").select(second_id).run()
    with console_light.sessions.begin() as s:
        assert repo.revoke_callback_secret(s, second_id, "someone")
    before = console_light.sql("SELECT secret_id, active, revoked_at FROM callback_secrets")
    at.button(key="revoke_callback_secret").click().run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == [
        f"Callback secret {second_id} was revoked already: nothing changed."
    ]
    assert not at.success
    assert console_light.sql("SELECT secret_id, active, revoked_at FROM callback_secrets") == (
        before
    )
    assert dict(console_light.sql("SELECT secret_id, active FROM callback_secrets")) == {
        first_id: True,
        second_id: False,
    }
    revokes = [actor for a, actor, *_ in secret_audit(console_light) if a.endswith("revoke")]
    assert revokes == ["someone"]


def test_issuing_for_a_partner_that_vanished_is_refused(console_light: Console):
    with console_light.sessions.begin() as s:
        partners.create_partner(
            s, partner_id="gone", name="Gone", deposit_fee_bp=0, withdrawal_fee_bp=0, actor="t"
        )
    at = open_page(console_light, "adam", "callback_secrets")
    at.selectbox(key="cbs_partner").select("gone").run()
    console_light.execute("DELETE FROM partners WHERE id = 'gone'")
    at.button(key="issue_callback_secret").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["Refused: partner 'gone' does not exist"]
    assert not at.code
    assert console_light.sql("SELECT count(*) FROM callback_secrets") == [(0,)]
    assert secret_audit(console_light) == []
