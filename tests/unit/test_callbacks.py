"""Callbacks without I/O: signing and verification, back-off, delivery ids and bodies."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas import orders
from schemas.registry import envelope
from stream_agents.callbacks.backoff import RetryPolicy, delay_s, next_attempt, schedule
from stream_agents.callbacks.payload import TERMINAL_EVENTS, delivery_id, new_delivery
from stream_agents.callbacks.settings import CallbackSettings
from stream_agents.callbacks.signing import (
    NoSigningSecretError,
    callback_headers,
    signature_header,
)
from stream_agents.callbacks.verify import (
    CallbackVerificationError,
    compute_signature,
    parse_signatures,
    verify_callback,
)

# --- the test vectors of docs/callbacks.md ----------------------------------------------

SECRET = "cs_test_4mV8qL2xR7tN9wZ3"
OLD_SECRET = "cs_test_old_9pK3sD6fG1hJ"
TIMESTAMP = "1767225600"
BODY = (
    b'{"delivery_id":"7f1e7c1c-2f5b-5d0e-9a7a-3c1f0e2d4b6a","event":"order.approved",'
    b'"occurred_at":"2026-01-01T00:00:00.000Z","order":{"uid":"0b7d2c4e-1111-4222-8333-'
    b'944455556666","partner_order_id":"A-1001","status":"approved","amount_minor":150000,'
    b'"currency":"EUR"}}'
)
SIG_NEW = "c46057acbdb92805d298081b9c8cc4b7f4a85b864ac4995fa2e0887cee768d3b"
SIG_OLD = "cb60d319a7e3dac56e60649fb195431293a4c61abe7b5153ce62a48db86479ce"
NOW = 1767225600.0


def test_vectors_match_the_documented_signatures() -> None:
    assert len(BODY) == 262
    assert compute_signature(SECRET, TIMESTAMP, BODY) == SIG_NEW
    assert compute_signature(OLD_SECRET.encode(), int(TIMESTAMP), BODY) == SIG_OLD
    header = signature_header([SECRET.encode(), OLD_SECRET.encode()], int(TIMESTAMP), BODY)
    assert header == f"v1={SIG_NEW},v1={SIG_OLD}"


@pytest.mark.parametrize("secrets", [[SECRET], [OLD_SECRET], [OLD_SECRET, SECRET], ["x", SECRET]])
def test_either_secret_verifies_a_callback_signed_during_rotation(secrets: list[str]) -> None:
    verify_callback(secrets, BODY, TIMESTAMP, f"v1={SIG_NEW},v1={SIG_OLD}", now=NOW)


def test_one_signature_verifies_with_its_secret_only() -> None:
    verify_callback([SECRET], BODY, TIMESTAMP, f"v1={SIG_NEW}", now=NOW)
    with pytest.raises(CallbackVerificationError) as refused:
        verify_callback([OLD_SECRET], BODY, TIMESTAMP, f"v1={SIG_NEW}", now=NOW)
    assert refused.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("body", "timestamp"),
    [(BODY + b" ", TIMESTAMP), (BODY.replace(b"150000", b"150001"), TIMESTAMP),
     (BODY, "1767225601")],
)  # fmt: skip
def test_any_change_to_body_or_timestamp_breaks_the_signature(body: bytes, timestamp: str) -> None:
    with pytest.raises(CallbackVerificationError) as refused:
        verify_callback([SECRET], body, timestamp, f"v1={SIG_NEW}", now=NOW)
    assert refused.value.code == "bad_signature"


@pytest.mark.parametrize(("skew_s", "ok"), [(300, True), (-300, True), (301, False), (-301, False)])
def test_timestamps_outside_the_tolerance_are_stale(skew_s: int, ok: bool) -> None:
    def check() -> None:
        verify_callback([SECRET], BODY, TIMESTAMP, f"v1={SIG_NEW}", now=NOW + skew_s)

    if ok:
        check()
    else:
        with pytest.raises(CallbackVerificationError) as refused:
            check()
        assert refused.value.code == "stale_timestamp"


@pytest.mark.parametrize(
    ("timestamp", "header", "code"),
    [
        (None, f"v1={SIG_NEW}", "missing_header"),
        (TIMESTAMP, "", "missing_header"),
        ("1767225600.5", f"v1={SIG_NEW}", "malformed_timestamp"),
        ("-1767225600", f"v1={SIG_NEW}", "malformed_timestamp"),
        (TIMESTAMP, f"v0={SIG_NEW}", "no_signature"),
        (TIMESTAMP, "garbage", "no_signature"),
        (TIMESTAMP, f"v1={SIG_NEW.upper()}", "bad_signature"),
    ],
)
def test_malformed_headers_are_refused_with_a_code(
    timestamp: str | None, header: str, code: str
) -> None:
    with pytest.raises(CallbackVerificationError) as refused:
        verify_callback([SECRET], BODY, timestamp, header, now=NOW)
    assert refused.value.code == code


def test_unknown_schemes_are_ignored_and_spaces_tolerated() -> None:
    header = f"v2=abc, v1={SIG_NEW} ,x"
    assert parse_signatures(header) == [SIG_NEW]
    verify_callback([SECRET], BODY, TIMESTAMP, header, now=NOW)


def test_headers_of_an_attempt() -> None:
    ident = uuid.UUID(int=7)
    headers = callback_headers(
        delivery_id=ident,
        event_type="order.approved",
        attempt=3,
        timestamp=int(TIMESTAMP),
        body=BODY,
        secrets=[SECRET.encode()],
    )
    assert headers["Keeper-Delivery-Id"] == str(ident)
    assert headers["Keeper-Attempt"] == "3"
    assert headers["Keeper-Timestamp"] == TIMESTAMP
    assert headers["Keeper-Signature"] == f"v1={SIG_NEW}"
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(NoSigningSecretError):
        signature_header([], int(TIMESTAMP), BODY)


# --- back-off ---------------------------------------------------------------------------


def test_back_off_doubles_up_to_the_cap_and_jitter_only_shortens() -> None:
    policy = RetryPolicy(base_s=10, cap_s=3600, window_s=86400, jitter=0.25)
    assert [delay_s(policy, n, 0.0) for n in range(1, 11)] == [
        10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600,
    ]  # fmt: skip
    assert delay_s(policy, 200, 0.0) == 3600  # no overflow far past the cap
    assert delay_s(policy, 1, 0.999_999) == pytest.approx(7.5, abs=1e-3)
    for n in range(1, 40):
        for rand in (0.0, 0.3, 0.999):
            assert (
                0.75 * delay_s(policy, n, 0.0)
                <= delay_s(policy, n, rand)
                <= delay_s(policy, n, 0.0)
            )


def test_default_schedule_spans_exactly_the_24_hour_window() -> None:
    times = schedule(RetryPolicy())
    assert times[:6] == [0, 10, 30, 70, 150, 310]
    assert times[-1] == 24 * 3600
    assert all(b - a <= 3600 for a, b in itertools.pairwise(times))
    assert len(times) == 33  # the timetable docs/callbacks.md gives


def test_next_attempt_never_passes_the_window_then_parks() -> None:
    policy = RetryPolicy(base_s=10, cap_s=3600, window_s=86400, jitter=0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    give_up = start + timedelta(seconds=100)
    assert next_attempt(policy, 1, start, give_up, 0.5) == start + timedelta(seconds=10)
    late = start + timedelta(seconds=95)
    assert next_attempt(policy, 5, late, give_up, 0.0) == give_up  # cut to the window's end
    assert next_attempt(policy, 6, give_up, give_up, 0.0) is None  # failed at the end: park
    with pytest.raises(ValueError, match="failures"):
        delay_s(policy, 0, 0.0)


@pytest.mark.parametrize(
    "kwargs", [{"base_s": 0}, {"base_s": 10, "cap_s": 5}, {"jitter": 1.0}, {"window_s": 0}]
)
def test_impossible_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need"):
        RetryPolicy(**kwargs)


def test_settings_refuse_a_lease_shorter_than_the_request_timeout() -> None:
    with pytest.raises(ValidationError, match="lease_s"):
        CallbackSettings(http_timeout_s=10, lease_s=5)
    settings = CallbackSettings(topic_prefix="t.", retry_window_s=60)
    assert settings.order_events_topic == "t.order-events"
    assert settings.dead_letters_topic == "t.dead-letters"
    assert settings.consumer_group == "t.keeper-callbacks"
    assert settings.retry_policy().window_s == 60


# --- delivery ids and bodies ------------------------------------------------------------

UID = uuid.UUID("0b7d2c4e-1111-4222-8333-944455556666")
T0 = 1_767_225_600_000


def snapshot(status: orders.OrderStatus, **fields: object) -> orders.OrderSnapshot:
    return orders.OrderSnapshot(
        uid=UID,
        version=4,
        partner_id="shop",
        partner_order_id="A-1001",
        direction=orders.Direction.WITHDRAWAL,
        status=status,
        amount_minor=150_000,
        fee_minor=2_250,
        currency="EUR",
        ttl_s=900,
        created_at_ms=T0,
        expires_at_ms=T0 + 900_000,
        updated_at_ms=T0 + 61_500,
        **fields,  # type: ignore[arg-type]
    )


def test_delivery_id_depends_on_order_and_event_only() -> None:
    first = delivery_id(UID, "order.approved")
    assert first == delivery_id(uuid.UUID(str(UID)), "order.approved")
    assert first.version == 5
    assert first != delivery_id(UID, "order.rejected")
    assert first != delivery_id(uuid.UUID(int=1), "order.approved")
    assert str(first) == "6912b415-58c8-5bfc-a2d2-0fc70952b048"  # stable across releases


def test_the_same_event_redelivered_gives_the_same_delivery_and_bytes() -> None:
    event = orders.OrderApproved(order=snapshot(orders.OrderStatus.APPROVED))
    occurred = datetime(2026, 1, 1, 0, 1, 1, 500_000, tzinfo=UTC)
    one = new_delivery(envelope(event, occurred_at=occurred), event)
    two = new_delivery(envelope(event, occurred_at=occurred), event)  # another message id
    assert one == two
    assert one.delivery_id == delivery_id(UID, "order.approved")
    assert one.order_version == 4
    assert one.partner_id == "shop"


def test_the_body_holds_public_fields_and_only_the_masked_payer_card() -> None:
    event = orders.OrderApproved(
        order=snapshot(
            orders.OrderStatus.APPROVED,
            payer_card_masked="424242******4242",
            card_id="c-1",
            card_masked="411111******1111",
            decided_by="olga",
            decision_id="d-1",
        )
    )
    made = new_delivery(envelope(event, occurred_at=datetime(2026, 1, 1, tzinfo=UTC)), event)
    body = json.loads(made.body)
    assert body == {
        "delivery_id": str(made.delivery_id),
        "event": "order.approved",
        "occurred_at": "2026-01-01T00:00:00.000Z",
        "order": {
            "uid": str(UID),
            "partner_order_id": "A-1001",
            "direction": "withdrawal",
            "status": "approved",
            "amount_minor": 150_000,
            "fee_minor": 2_250,
            "currency": "EUR",
            "decline_reason": None,
            "payer_card_masked": "424242******4242",
            "created_at": "2026-01-01T00:00:00.000Z",
            "expires_at": "2026-01-01T00:15:00.000Z",
            "updated_at": "2026-01-01T00:01:01.500Z",
            "version": 4,
        },
    }
    for internal in ("olga", "c-1", "d-1", "411111"):
        assert internal not in made.body
    assert " " not in made.body  # compact, so the stored bytes are exactly what is sent


def test_every_terminal_status_has_a_callback_event_and_no_other_does() -> None:
    from domain.orders import TERMINAL

    statuses = {cls.TYPE.removeprefix("order.") for cls in TERMINAL_EVENTS}
    assert statuses == {status.value for status in TERMINAL}
