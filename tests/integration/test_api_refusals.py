"""Bad input gets a precise 4xx with an error code, and changes nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ingest_api.signing import signed_headers
from tests.fixtures.system import CURRENCY, PARTNER, System

pytestmark = pytest.mark.integration

GOOD = {"direction": "deposit", "amount_minor": 10_000, "currency": CURRENCY}


def signed(
    s: System,
    body: bytes,
    *,
    now: float | None = None,
    nonce: str | None = None,
    secret: bytes | None = None,
) -> dict[str, str]:
    key_id, real_secret = s.credentials[PARTNER]
    headers = signed_headers(
        key_id, secret or real_secret, "POST", "/v1/orders", "", body, now=now, nonce=nonce
    )
    return {**headers, "Content-Type": "application/json"}


def order_count(s: System) -> int:
    [(count,)] = s.sql("SELECT COUNT(*) FROM orders")
    return int(count)


async def post_raw(s: System, body: bytes, headers: dict[str, str]) -> Any:
    return await s.api.post("/v1/orders", content=body, headers=headers)


def body_of(**fields: Any) -> bytes:
    return json.dumps({**GOOD, "partner_order_id": f"po-{time.monotonic_ns()}", **fields}).encode()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"amount_minor": -5}, "invalid_request"),
        ({"amount_minor": 0}, "invalid_request"),
        ({"amount_minor": 10**13}, "invalid_request"),
        ({"amount_minor": 100.5}, "invalid_request"),
        ({"amount_minor": "100"}, "invalid_request"),
        ({"currency": "rub"}, "invalid_request"),
        ({"currency": "XYZ"}, "unknown_currency"),
        ({"direction": "sideways"}, "invalid_request"),
        ({"ttl_s": 5}, "invalid_request"),
        ({"surprise": True}, "invalid_request"),
        ({"callback_url": "not a url"}, "invalid_request"),
    ],
)
async def test_invalid_bodies(system: System, fields: dict[str, Any], code: str):
    before = order_count(system)
    body = body_of(**fields)

    answer = await post_raw(system, body, signed(system, body))

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code
    assert order_count(system) == before


async def test_malformed_json(system: System):
    body = b'{"direction": "deposit", '
    answer = await post_raw(system, body, signed(system, body))

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_json"


async def test_oversized_body(system: System):
    body = body_of(partner_order_id="x" * 100_000)
    answer = await post_raw(system, body, signed(system, body))

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"


async def test_authentication_failures(system: System):
    before = order_count(system)
    body = body_of()
    cases = {
        "missing_auth_header": {"Content-Type": "application/json"},
        "bad_signature": signed(system, body, secret=b"not-the-secret-at-all-0123456789"),
        "stale_timestamp": signed(system, body, now=time.time() - 301),
    }
    unknown = signed(system, body)
    unknown["X-Keeper-Key"] = "kp_doesnotexist00"
    cases["unknown_api_key"] = unknown

    for code, headers in cases.items():
        answer = await post_raw(system, body, headers)
        assert answer.status_code == 401, (code, answer.text)
        assert answer.json()["error"]["code"] == code

    tampered = signed(system, body)
    answer = await post_raw(system, body.replace(b"10000", b"10001"), tampered)
    assert answer.json()["error"]["code"] == "bad_signature"
    assert order_count(system) == before


async def test_replayed_nonce(system: System):
    body = body_of()
    headers = signed(system, body)

    first = await post_raw(system, body, headers)
    replay = await post_raw(system, body, headers)

    assert first.status_code == 201, first.text
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_nonce"


async def test_unknown_and_malformed_order_ids(system: System):
    for uid in ("not-a-uuid", "00000000-0000-8000-8000-000000000000"):
        partner_view = await system.partner.get(f"/v1/orders/{uid}")
        payer_view = await system.api.get(f"/v1/pay/{uid}")
        confirm = await system.api.post(f"/v1/pay/{uid}/confirm", json={})
        for answer in (partner_view, payer_view, confirm):
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["code"] == "order_not_found"


async def test_console_requires_a_session_and_the_role(system: System):
    uid = "00000000-0000-8000-8000-000000000000"
    anonymous = await system.api.post(
        f"/v1/operator/orders/{uid}/decision", json={"verdict": "approve"}
    )
    analyst = await system.decide("ann", uid, "approve")
    wrong = await system.api.post("/v1/auth/login", json={"username": "olga", "password": "x"})
    anonymous_queue = await system.api.get("/v1/operator/queue")
    analyst_queue = await system.api.get("/v1/operator/queue", headers=await system.login("ann"))

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_session"
    assert anonymous_queue.status_code == 401
    assert analyst.status_code == 403
    assert analyst_queue.status_code == 403
    assert analyst_queue.json()["error"]["code"] == "forbidden"
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"
