"""Every registered message survives encode → decode unchanged; bad bytes never decode."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

import schemas
from domain.money import MAX_AMOUNT_MINOR
from schemas import cards, disputes, ledger, notifications, orders, turnover
from schemas.envelope import Message
from schemas.registry import (
    SchemaError,
    decode,
    encode,
    register,
    register_upcaster,
    registered,
)

UID = uuid.UUID("3f2b8c1e-8d4a-8c7e-9a1b-2c3d4e5f6a7b")
NOW = datetime(2026, 11, 28, 4, 16, 31, 123456, tzinfo=UTC)


NOW_MS = 1_795_925_791_123


def snapshot(**overrides: Any) -> orders.OrderSnapshot:
    fields: dict[str, Any] = {
        "uid": UID,
        "version": 2,
        "partner_id": "acme",
        "partner_order_id": "inv-1001",
        "direction": orders.Direction.DEPOSIT,
        "status": orders.OrderStatus.NEW,
        "amount_minor": 150_000,
        "fee_minor": 3_000,
        "currency": "RUB",
        "ttl_s": 900,
        "created_at_ms": NOW_MS,
        "expires_at_ms": NOW_MS + 900_000,
        "updated_at_ms": NOW_MS + 15,
        "card_id": "card-7",
        "card_masked": "220220******1234",
    }
    return orders.OrderSnapshot(**(fields | overrides))


S = orders.OrderStatus
EXAMPLES: list[Message] = [
    orders.OpenOrder(
        uid=UID,
        reply=True,  # ignored since ADR 0003; commands already in the log still decode
        partner_id="acme",
        partner_order_id="inv-1001",
        direction=orders.Direction.WITHDRAWAL,
        amount_minor=99_00,
        currency="USD",
        ttl_s=900,
        fee_bp=150,
        pool_id="main",
        callback_url="https://acme.example/cb",
    ),
    orders.AssignCard(uid=UID, card_id="card-7", card_masked="220220******1234"),
    orders.MarkFundsHeld(uid=UID),
    orders.DeclineOrder(uid=UID, reason=orders.DeclineReason.NO_REQUISITE),
    orders.ConfirmPayment(uid=UID, payer_card_masked="411111******1111", payer_card_ciphertext="x"),
    orders.DecideOrder(
        uid=UID,
        reply=True,
        verdict=orders.Verdict.REJECT,
        operator="olga",
        reason="no money",
        decision_id=UID,
    ),
    orders.CancelOrder(uid=UID, partner_id="acme"),
    orders.ExpireOrder(uid=UID),
    orders.ForgetOrders(desk="pool:pool-1", uids=[UID]),
    notifications.ForgetNotices(pool_id="pool-1", notification_ids=[UID]),
    orders.OrderOpened(
        order=snapshot(status=S.PENDING, version=1, card_id=None, card_masked=None),
        pool_id="main",
    ),
    orders.OrderCreated(order=snapshot()),
    orders.OrderDeclined(
        order=snapshot(status=S.DECLINED, decline_reason=orders.DeclineReason.NO_REQUISITE)
    ),
    orders.PaymentConfirmed(order=snapshot(status=S.PROCESSING), payer_card_ciphertext="sealed"),
    orders.OrderApproved(order=snapshot(status=S.APPROVED, decided_by="olga")),
    orders.OrderRejected(order=snapshot(status=S.REJECTED)),
    orders.OrderFailed(order=snapshot(status=S.FAILED)),
    orders.OrderExpired(order=snapshot(status=S.EXPIRED)),
    orders.OrderCancelled(order=snapshot(status=S.CANCELLED)),
    ledger.ApplyLedgerOp(
        partner_id="acme",
        uid=UID,
        currency="RUB",
        op=ledger.PostingKind.HOLD,
        amount_minor=10_000,
        fee_minor=200,
    ),
    disputes.SettleDispute(
        dispute_id=UID,
        uid=UID,
        partner_id="acme",
        currency="RUB",
        amount_minor=10_000,
        fee_minor=200,
        desk="pool:pool-1",
    ),
    ledger.LedgerPosted(
        partner_id="acme",
        uid=UID,
        currency="RUB",
        kind=ledger.PostingKind.DEPOSIT_CREDIT,
        legs=[
            ledger.Leg(account="external:settlement", amount_minor=-10_000),
            ledger.Leg(account="partner:acme:available", amount_minor=9_800),
            ledger.Leg(account="system:fees", amount_minor=200),
        ],
        available_minor=9_800,
        held_minor=0,
        balance_version=1,
    ),
    cards.RequestCard(pool_id="main", uid=UID, amount_minor=500_00, currency="RUB"),
    cards.ReleaseCard(
        pool_id="main", uid=UID, card_id="card-7", amount_minor=500_00, approved=True
    ),
    cards.CardConfigured(
        card_id="card-7",
        pool_id="main",
        pan_masked="220220******1234",
        currency="RUB",
        status=cards.CardStatus.ACTIVE,
        expires_on=date(2028, 5, 31),
        holiday_until_ms=None,
        bank="Sber",
        holder="IVAN P",
        daily_limit_minor=1_000_000_00,
        monthly_limit_minor=10_000_000_00,
        daily_count_limit=100,
        monthly_count_limit=1000,
        min_order_minor=100_00,
        max_order_minor=100_000_00,
        version=3,
    ),
    cards.PartnerConfigured(
        partner_id="acme",
        status=cards.PartnerStatus.ACTIVE,
        deposit_fee_bp=200,
        withdrawal_fee_bp=150,
        pool_id="main",
        callback_url=None,
        version=1,
    ),
    cards.PauseCard(pool_id="main", card_id="card-1", until_ms=NOW_MS, reason="order_streak"),
    turnover.CardMovement(
        card_id="card-1", uid=UID, amount_minor=150_000, currency="RUB", occurred_at_ms=NOW_MS
    ),
    turnover.TurnoverUpdated(
        card_id="card-1",
        pool_id="main",
        currency="RUB",
        window_kind=turnover.WindowKind.DAY,
        window_start_ms=NOW_MS - 1000,
        window_end_ms=NOW_MS + 1000,
        time_zone="Europe/Moscow",
        in_minor=150_000,
        in_count=1,
        version=1,
    ),
    turnover.TurnoverWindows(
        card_id="card-1",
        windows=[
            turnover.TurnoverUpdated(
                card_id="card-1",
                currency="RUB",
                window_kind=kind,
                window_start_ms=NOW_MS - 1000,
                window_end_ms=NOW_MS + 1000,
                time_zone="UTC",
                in_minor=150_000,
                in_count=1,
                version=2,
            )
            for kind in turnover.WindowKind
        ],
    ),
    turnover.CardAlerted(
        card_id="card-1",
        alert_id=UID,
        kind=turnover.AlertKind.LIMIT_SHARE,
        pool_id="main",
        at_ms=NOW_MS,
        metric=turnover.LimitMetric.DAILY_AMOUNT,
        threshold_pct=80,
        used=800,
        limit=1000,
        window_kind=turnover.WindowKind.DAY,
        window_start_ms=NOW_MS - 1000,
    ),
    notifications.MatchNotification(
        notification_id=UID,
        pool_id="main",
        card_id="card-1",
        device_id="dev-1",
        amount_minor=150_000,
        currency="RUB",
        received_at_ms=NOW_MS,
        policy=notifications.MatchPolicy.AUTO,
        grace_ms=120_000,
    ),
    notifications.DeviceHealth(
        pool_id="main", card_id="card-1", device_id="dev-1", silent=True, at_ms=NOW_MS
    ),
    notifications.NotificationSettled(
        notification_id=UID,
        device_id="dev-1",
        card_id="card-1",
        outcome=notifications.Outcome.UNMATCHED,
        reason=notifications.Unmatched.NO_OPEN_ORDER,
        settled_at_ms=NOW_MS,
    ),
]


def test_every_registered_schema_has_an_example() -> None:
    covered = {(type(m).TYPE, type(m).VERSION) for m in EXAMPLES}
    keeper_schemas = {key for key in registered() if not key[0].startswith("test.")}
    assert covered == keeper_schemas


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).TYPE)
def test_round_trip(message: Message) -> None:
    message_id = uuid.uuid4()
    raw = encode(message, message_id=message_id, occurred_at=NOW)

    env, decoded = decode(raw)

    assert decoded == message
    assert type(decoded) is type(message)
    assert env.message_id == message_id
    assert env.type == type(message).TYPE
    assert env.schema_version == 1
    assert env.occurred_at == NOW
    assert env.key == message.message_key()


def test_amounts_travel_as_integers() -> None:
    raw = encode(EXAMPLES[0])
    assert orjson.loads(raw)["payload"]["amount_minor"] == 9900


def _open_order_payload(**overrides: Any) -> bytes:
    body = orjson.loads(encode(EXAMPLES[0]))
    body["payload"].update(overrides)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"amount_minor": 99.5}, "float amount"),
        ({"amount_minor": "9900"}, "amount as string"),
        ({"amount_minor": 0}, "zero amount"),
        ({"amount_minor": -1}, "negative amount"),
        ({"amount_minor": MAX_AMOUNT_MINOR + 1}, "huge amount"),
        ({"currency": "rub"}, "lowercase currency"),
        ({"direction": "sideways"}, "unknown direction"),
        ({"unexpected": 1}, "unknown field"),
        ({"ttl_s": 5}, "ttl too short"),
    ],
)
def test_bad_payloads_are_refused(overrides: dict[str, Any], why: str) -> None:
    with pytest.raises(SchemaError):
        decode(_open_order_payload(**overrides))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"type": "order.open"}',
        orjson.dumps({"type": "order.nope", "schema_version": 1, "key": "k", "payload": {}}),
        orjson.dumps({"type": "order.open", "schema_version": 9, "key": "k", "payload": {}}),
    ],
)
def test_garbage_is_refused(raw: bytes) -> None:
    with pytest.raises(SchemaError):
        decode(raw)


def test_old_versions_are_upcast() -> None:
    @register
    class GreetingV2(Message):
        TYPE = "test.greeting"
        VERSION = 2
        name: str
        polite: bool

        def message_key(self) -> str:
            return self.name

    register_upcaster("test.greeting", 1, lambda p: {"name": p["who"], "polite": True})
    old = orjson.dumps(
        {"type": "test.greeting", "schema_version": 1, "key": "ann", "payload": {"who": "ann"}}
    )

    _, decoded = decode(old)

    assert decoded == GreetingV2(name="ann", polite=True)


def test_package_exports_codec() -> None:
    assert schemas.decode is decode
    assert schemas.encode is encode


def test_a_snapshot_is_the_cores_order() -> None:
    snap = snapshot(status=S.APPROVED, decided_by="olga")
    order = snap.to_order()
    assert order.uid == str(snap.uid)
    assert (order.status, order.version, order.decided_by) == (S.APPROVED, snap.version, "olga")
    assert order.ttl_s == snap.ttl_s
