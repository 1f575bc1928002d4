"""Bank notifications end to end on the real broker and database: a device forwards a credit,
the card's desk approves the deposit it pays (or suggests it), PostgreSQL records the outcome
and the audit names the device; every bad request gets a precise 4xx and stores nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from db.crypto import SecretBox
from db.repositories import devices, notifications
from ingest_api.client import KeeperAuth
from ingest_api.signing import signed_headers
from stream_agents.card_projector import (
    CardProjectorSettings,
    report_silent_devices,
    run_card_projector,
)
from stream_agents.process import make_producer
from tests.fixtures.system import POOL, System, stop_quietly, uid_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def outcomes(system: System) -> AsyncIterator[None]:
    """The card projector, which writes the desks' decisions about notifications."""
    stop = asyncio.Event()
    settings = CardProjectorSettings(
        kafka_bootstrap_servers=system.kafka_bootstrap,
        database_url=system.database_url,
        topic_prefix=system.topic_prefix,
        max_wait_ms=100,
        metadata_max_age_ms=1000,
        expiry_sweep_interval_s=0,
        device_sweep_interval_s=0,
    )
    task = asyncio.create_task(run_card_projector(settings, stop))
    yield
    stop.set()
    with contextlib.suppress(Exception):
        await stop_quietly(task, "card projector")


def register(s: System, device_id: str, card_id: str) -> httpx.AsyncClient:
    with s.sessions() as session:
        key_id, secret = devices.register_device(
            session, SecretBox.from_settings(), device_id, card_id, actor="test"
        )
        session.commit()
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=s.app),
        base_url="http://api",
        auth=KeeperAuth(key_id, secret.encode()),
    )


def policy(s: System, value: str) -> None:
    with s.sessions() as session:
        notifications.set_match_policy(session, POOL, value, actor="test")
        session.commit()


def credit(amount_minor: int) -> str:
    return (
        f"Card *4417: credit RUB {amount_minor // 100}.{amount_minor % 100:02d}. Balance: RUB 1.00"
    )


def note(card_id: str, text: str, **fields: Any) -> dict[str, Any]:
    return {
        "notification_id": f"n-{uuid.uuid4().hex[:12]}",
        "card_id": card_id,
        "sender": "Alfa-Bank",
        "text": text,
        "received_at": datetime.now(UTC).isoformat(),
        **fields,
    }


async def deposit(s: System, amount_minor: int) -> tuple[str, str]:
    """A new deposit: (uid, its card id)."""
    partner_order_id = f"po-{uuid.uuid4().hex[:10]}"
    body = {"direction": "deposit", "amount_minor": amount_minor, "currency": "RUB"}
    answer = await s.partner.post("/v1/orders", json={**body, "partner_order_id": partner_order_id})
    assert answer.status_code == 201, answer.text
    uid = uid_of(s, partner_order_id)
    row = await s.row(uid, "new")
    return uid, str(row.card_id)


def count(s: System) -> int:
    [(n,)] = s.sql("SELECT COUNT(*) FROM notifications")
    return int(n)


async def test_an_auto_pool_approves_a_deposit_from_its_cards_notification(
    system: System, outcomes: None
) -> None:
    policy(system, "auto")
    uid, card_id = await deposit(system, 123_400)
    phone = register(system, "phone-a", card_id)
    answer = await phone.post("/v1/devices/notifications", json=note(card_id, credit(123_400)))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["outcome"] == "received"
    assert body["parsed"]["amount_minor"] == 123_400
    row = await system.row(uid, "approved")
    assert row.decided_by == "device:phone-a"

    def settled() -> Any:
        found = system.sql(
            "SELECT outcome, matched_uid FROM notifications WHERE id = :id", id=body["id"]
        )
        return found[0] if found and found[0].outcome == "approved" else None

    outcome = await system.eventually(settled, "the notification approved")
    assert str(outcome.matched_uid) == uid
    [audit] = system.sql(
        "SELECT actor, after FROM audit_log WHERE entity = 'order' AND entity_id = :uid", uid=uid
    )
    assert audit.actor == "device:phone-a"
    assert audit.after["notification_id"] == body["id"]
    # the same message again is the same notification, and approves nothing twice
    again = await phone.post("/v1/devices/notifications", json=json.loads(answer.request.content))
    assert (again.status_code, again.json()["id"]) == (200, body["id"])
    [(credits,)] = system.sql(
        "SELECT COUNT(*) FROM ledger_postings WHERE order_uid = :uid AND kind = 'deposit_credit'"
        " AND account LIKE 'partner:%'",
        uid=uid,
    )
    assert credits == 1
    await phone.aclose()


async def test_a_suggest_pool_sends_the_order_to_the_queue_with_its_match(
    system: System, outcomes: None
) -> None:
    uid, card_id = await deposit(system, 55_500)
    phone = register(system, "phone-b", card_id)
    answer = await phone.post("/v1/devices/notifications", json=note(card_id, credit(55_500)))
    assert answer.status_code == 201, answer.text
    await system.row(uid, "processing")

    def suggested() -> Any:
        with system.sessions() as session:
            return notifications.suggestions(session, [uuid.UUID(uid)]) or None

    found = await system.eventually(suggested, "the suggestion recorded")
    assert str(found[uuid.UUID(uid)]) == answer.json()["id"]
    await phone.aclose()


async def test_text_no_template_reads_is_kept_as_unparsed(system: System) -> None:
    card_id = system.card_ids[0]
    phone = register(system, "phone-c", card_id)
    answer = await phone.post("/v1/devices/notifications", json=note(card_id, "Код: 1234"))
    assert answer.status_code == 201, answer.text
    assert (answer.json()["outcome"], answer.json()["parsed"]) == ("unparsed", None)
    [row] = system.sql(
        "SELECT raw_text, outcome FROM notifications WHERE id = :id", id=answer.json()["id"]
    )
    assert (row.raw_text, row.outcome) == ("Код: 1234", "unparsed")
    # the same text, sender and time under another device-side id is the same message
    same = note(card_id, "Код: 1234", received_at=json.loads(answer.request.content)["received_at"])
    again = await phone.post("/v1/devices/notifications", json=same)
    assert (again.status_code, again.json()["id"]) == (200, answer.json()["id"])
    await phone.aclose()


async def test_bad_requests_get_a_precise_4xx_and_store_nothing(system: System) -> None:
    card_id, other_card = system.card_ids
    phone = register(system, "phone-d", card_id)
    before = count(system)

    three_decimals = "Card *4417: credit RUB 1500.005. Balance: RUB 1.00"
    cases: list[tuple[dict[str, Any], int, str]] = [
        (note(card_id, three_decimals), 422, "invalid_amount_precision"),
        (note(other_card, credit(100)), 403, "device_card_mismatch"),
        (note(card_id, "x" * (1 << 20)), 413, "body_too_large"),
        (note(card_id, "x" * 5000), 422, "invalid_request"),
        (
            note(card_id, credit(100), received_at="2099-01-01T00:00:00+00:00"),
            422,
            "received_at_in_future",
        ),
    ]
    for body, status, code in cases:
        answer = await phone.post("/v1/devices/notifications", json=body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text

    # a replayed request: same nonce, same signature
    raw = json.dumps(note(card_id, credit(100))).encode()
    auth: KeeperAuth = phone.auth  # type: ignore[assignment]
    headers = signed_headers(
        auth._key_id, auth._secret, "POST", "/v1/devices/notifications", "", raw
    )
    headers["Content-Type"] = "application/json"
    bare = httpx.AsyncClient(transport=httpx.ASGITransport(app=system.app), base_url="http://api")
    first = await bare.post("/v1/devices/notifications", content=raw, headers=headers)
    assert first.status_code == 201, first.text
    replay = await bare.post("/v1/devices/notifications", content=raw, headers=headers)
    assert (replay.status_code, replay.json()["error"]["code"]) == (401, "replayed_nonce")

    with system.sessions() as session:
        devices.revoke_device(session, "phone-d", actor="test")
        session.commit()
    revoked = await phone.post("/v1/devices/notifications", json=note(card_id, credit(200)))
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (403, "device_revoked")
    beat = await phone.post("/v1/devices/heartbeat")
    assert beat.status_code == 403

    assert count(system) == before + 1  # only the one accepted request
    await phone.aclose()
    await bare.aclose()


async def test_a_heartbeat_records_the_device_as_heard(system: System) -> None:
    card_id = system.card_ids[1]
    phone = register(system, "phone-e", card_id)
    answer = await phone.post("/v1/devices/heartbeat")
    assert answer.status_code == 200, answer.text
    assert answer.json()["card_id"] == card_id
    [row] = system.sql("SELECT last_seen_at FROM devices WHERE id = 'phone-e'")
    assert row.last_seen_at is not None
    await phone.aclose()


async def test_a_silent_device_takes_its_card_out_of_rotation_until_heard_again(
    system: System,
) -> None:
    card_a, card_b = system.card_ids
    phone = register(system, "phone-s", card_a)
    with system.engine.begin() as conn:  # registered two hours ago and never heard since
        conn.execute(
            text("UPDATE devices SET created_at = now() - interval '2 hours' WHERE id = 'phone-s'")
        )
    settings = CardProjectorSettings(
        kafka_bootstrap_servers=system.kafka_bootstrap,
        database_url=system.database_url,
        topic_prefix=system.topic_prefix,
        device_silent_after_s=600,
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        assert await report_silent_devices(system.engine, producer, settings) == 1
        assert await report_silent_devices(system.engine, producer, settings) == 0  # told once
    finally:
        await producer.stop()
    [(silent_since,)] = system.sql("SELECT silent_since FROM devices WHERE id = 'phone-s'")
    assert silent_since is not None

    placed = [(await deposit(system, amount))[1] for amount in (10_100, 10_200, 10_300)]
    assert placed == [card_b] * 3  # the silent device's card is handed out no more

    beat = await phone.post("/v1/devices/heartbeat")
    assert beat.status_code == 200, beat.text
    [(silent_since,)] = system.sql("SELECT silent_since FROM devices WHERE id = 'phone-s'")
    assert silent_since is None
    _, card = await deposit(system, 10_400)
    assert card == card_a  # heard again: back in rotation (and the least loaded card)
    await phone.aclose()
