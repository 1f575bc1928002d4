"""Pure parts of the callback pages: ids typed by people, URLs with a password, the list and
the detail of a delivery, the resend's retry window, and who may open the pages (no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.repositories.callbacks import DEFAULT_WINDOW_S, DeliveryView
from ops_console import deliveries
from ops_console.nav import visible_keys
from ops_console.roles import PAGE_ROLES, SECTIONS, may_open

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def view(status: str, **changes: object) -> DeliveryView:
    values: dict[str, object] = {
        "delivery_id": uuid.UUID(int=1),
        "order_uid": uuid.UUID(int=2),
        "event_type": "order.approved",
        "partner_id": "shop",
        "status": status,
        "attempts": 3,
        "next_attempt_at": NOW + timedelta(seconds=40),
        "give_up_at": NOW + timedelta(days=1),
        "last_attempt_at": NOW - timedelta(seconds=30),
        "last_status_code": 503,
        "last_error": "HTTP 503",
        "last_url": "https://shop.example/cb",
        "created_at": NOW - timedelta(minutes=5),
        "delivered_at": None,
        "parked_at": None,
        "body": '{"delivery_id":"00000000-0000-0000-0000-000000000001"}',
    }
    values.update(changes)
    return DeliveryView(**values)  # type: ignore[arg-type]


def test_parse_uuid():
    ident = uuid.uuid4()
    assert deliveries.parse_uuid(f"  {ident} ", "x") == ident
    assert deliveries.parse_uuid("   ", "x") is None
    with pytest.raises(ValueError, match=r"^The order uid must be a UUID such as "):
        deliveries.parse_uuid("inv-1", "The order uid")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://shop.example/cb?x=1", "https://shop.example/cb?x=1"),
        ("https://bot:hunter2@shop.example/cb", "https://bot:***@shop.example/cb"),
        ("https://bot:a:b@c@shop.example:8443", "https://bot:***@shop.example:8443"),
        ("https://bot@shop.example/cb", "https://bot@shop.example/cb"),
        ("https://shop.example/a@b:c", "https://shop.example/a@b:c"),
        (None, None),
    ],
)
def test_redact_url(url: str | None, shown: str | None):
    assert deliveries.redact_url(url) == shown


def test_table_has_state_but_no_body():
    shown = deliveries.table([view("pending"), view("dead", parked_at=NOW)])
    assert "body" not in shown.columns
    assert list(shown["status"]) == ["pending", "dead"]
    assert list(shown["dead_lettered"]) == [False, True]
    assert shown["next_attempt_at"].iloc[0] == NOW + timedelta(seconds=40)
    assert shown["next_attempt_at"].isna().iloc[1]  # only a pending delivery has one
    assert list(shown["last_status_code"]) == [503, 503]
    assert deliveries.table([]).empty


def shown(delivery: DeliveryView, now: datetime) -> dict[str, str]:
    table = deliveries.facts(delivery, now)
    return dict(zip(table["field"], table["value"], strict=True))


def test_facts_of_a_pending_and_a_dead_delivery():
    pending = shown(view("pending"), NOW)
    assert pending["next attempt"] == "2030-01-02 03:04:45 UTC"
    assert pending["dead-lettered"] == "no"
    assert shown(view("pending"), NOW + timedelta(hours=1))["next attempt"].endswith("(due now)")

    dead = shown(view("dead", parked_at=NOW, last_url=None), NOW)
    assert dead["status"].startswith("dead: parked")
    assert (dead["next attempt"], dead["dead-lettered"]) == ("— (not pending)", "yes")
    assert (dead["last HTTP status"], dead["last URL"]) == ("503", "—")
    assert dead["parked"] == "2030-01-02 03:04:05 UTC"


def test_retry_window_is_the_callbacks_process_setting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KEEPER_CALLBACKS_RETRY_WINDOW_S", raising=False)
    assert deliveries.retry_window_s() == DEFAULT_WINDOW_S
    monkeypatch.setenv("KEEPER_CALLBACKS_RETRY_WINDOW_S", "7200")
    assert deliveries.retry_window_s() == 7200
    monkeypatch.setenv("KEEPER_CALLBACKS_RETRY_WINDOW_S", "-1")  # refused by the process too
    assert deliveries.retry_window_s() == DEFAULT_WINDOW_S


def test_callback_pages_roles():
    keys = [key for pages in SECTIONS.values() for key, *_ in pages]
    assert sorted(keys) == sorted(PAGE_ROLES)
    assert [may_open(role, "callbacks") for role in ("admin", "operator", "analyst")] == [
        True,
        True,
        False,
    ]
    assert [may_open(role, "callback_secrets") for role in ("admin", "operator", "analyst")] == [
        True,
        False,
        False,
    ]
    assert "callbacks" in visible_keys("operator")
    assert "callback_secrets" not in visible_keys("operator")
    assert not {"callbacks", "callback_secrets"} & set(visible_keys("analyst"))
