"""Refused at the edge what cannot be stored (issue 15, point 1), through the real API, agents,
projector and PostgreSQL: the text rule on every field, duplicate JSON keys, signed cursors and
canonical uids. Each refusal has its exact status and code, and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from ingest_api.signing import signed_headers
from schemas.registry import decode
from schemas.topics import ORDER_COMMANDS
from tests.fixtures.system import CURRENCY, PARTNER, PAYER_PAN, System, refusal, uid_of

pytestmark = pytest.mark.integration

GOOD = {"direction": "deposit", "amount_minor": 10_000, "currency": CURRENCY}
EMOJI = "\U0001f600"


def fresh_id() -> str:
    return f"edge-{time.monotonic_ns()}"


def signed(s: System, method: str, path: str, body: bytes, query: str = "") -> dict[str, str]:
    key_id, secret = s.credentials[PARTNER]
    headers = signed_headers(key_id, secret, method, path, query, body)
    return {**headers, "Content-Type": "application/json"}


async def create_raw(s: System, body: bytes) -> httpx.Response:
    return await s.api.post(
        "/v1/orders", content=body, headers=signed(s, "POST", "/v1/orders", body)
    )


async def create(s: System, **fields: Any) -> httpx.Response:
    body = json.dumps({**GOOD, "partner_order_id": fresh_id(), **fields}).encode()
    return await create_raw(s, body)


def order_count(s: System) -> int:
    [(count,)] = s.sql("SELECT COUNT(*) FROM orders")
    return int(count)


async def command_uids(s: System, until_uid: str, timeout_s: float = 20.0) -> set[str]:
    """The order of every command on the order-commands topic (keyed by desk, so read from
    the payload), read until ``until_uid`` has been seen."""
    consumer = AIOKafkaConsumer(
        s.topic_prefix + ORDER_COMMANDS.name,
        bootstrap_servers=s.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    uids: set[str] = set()
    try:
        deadline = time.monotonic() + timeout_s
        while until_uid not in uids and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                uids.update(str(decode(r.value)[1].uid) for r in records if r.value)  # type: ignore[attr-defined]
    finally:
        await consumer.stop()
    assert until_uid in uids, "the good order's command never reached the topic"
    return uids


# --- the regression ------------------------------------------------------------------------


async def test_a_nul_in_partner_order_id_is_refused_and_the_platform_goes_on(system: System):
    """Issue 15: a signed create with ``"a\\u0000b"`` was answered 201 and halted the
    projector for everyone. Now: 422, nothing published, and the next order is served."""
    before = order_count(system)
    poisoned = "a\u0000b"

    answer = await create(system, partner_order_id=poisoned)

    error = refusal(answer, 422, "invalid_text")
    assert error["details"] == [
        {
            "field": "partner_order_id",
            "problem": "control_character: the text holds a control character at position 1",
            "reason": "control_character",
        }
    ]
    refused_uid = uid_of(system, poisoned)
    assert (await system.partner.get(f"/v1/orders/{refused_uid}")).status_code == 404

    good = await create(system)
    assert good.status_code == 201, good.text
    uid = good.json()["uid"]
    await system.row(uid, "new")  # the projector is alive and writing
    read = await system.partner.get(f"/v1/orders/{uid}")
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "new"
    assert order_count(system) == before + 1
    assert refused_uid not in await command_uids(system, until_uid=uid)


# --- the text rule, field by field ----------------------------------------------------------

#: partner_order_id -> the reason it is refused for (None: accepted).
ID_CASES: dict[str, str | None] = {
    "a\x01b": "control_character",
    "a\x1fb": "control_character",
    "a\tb": "control_character",
    "a\x7fb": "control_character",
    "a\x85b": "control_character",
    "a\ud800b": "lone_surrogate",
    "caf" + "e\u0301": "not_normalized",
    "   ": "blank",
    " id": "padded",
    "id ": "padded",
    "\u200fid": "format_character",
    f"pay-{EMOJI}-{time.monotonic_ns()}": None,
}


async def test_each_class_of_bad_partner_order_id(system: System):
    before = order_count(system)
    accepted = []
    for value, reason in ID_CASES.items():
        # json.dumps writes the lone surrogate as the escape "\ud800", as a client would.
        answer = await create(system, partner_order_id=value)
        if reason is None:
            assert answer.status_code == 201, (ascii(value), answer.text)
            accepted.append(answer.json()["uid"])
            continue
        error = refusal(answer, 422, "invalid_text")
        [detail] = error["details"]
        assert (detail["field"], detail["reason"]) == ("partner_order_id", reason), ascii(value)
        assert "partner_order_id" in error["message"]
    for uid in accepted:
        await system.row(uid, "new")  # the projector writes what was answered 201
    assert order_count(system) == before + len(accepted)


async def test_text_rule_on_every_other_field(system: System):
    nul_url = await create(system, callback_url="https://shop.example/cb\x00x")
    refusal(nul_url, 422, "invalid_text")
    bad_currency = await create(system, currency="RU\x00")
    assert refusal(bad_currency, 422, "invalid_text")["details"][0]["field"] == "currency"

    login_nul = await system.api.post(
        "/v1/auth/login", json={"username": "olga\x00", "password": "x"}
    )
    assert refusal(login_nul, 422, "invalid_text")["details"][0]["field"] == "username"
    padded_user = await system.api.post(
        "/v1/auth/login", json={"username": " olga", "password": "x"}
    )
    assert refusal(padded_user, 422, "invalid_text")["details"][0]["reason"] == "padded"
    surrogate_password = await system.api.post(
        "/v1/auth/login", content=b'{"username": "olga", "password": "pw\\udc80"}'
    )
    detail = refusal(surrogate_password, 422, "invalid_text")["details"][0]
    assert (detail["field"], detail["reason"]) == ("password", "lone_surrogate")

    headers = await system.login("olga")
    change = await system.api.post(
        "/v1/auth/password",
        json={"current_password": "x", "new_password": "new\x00password-123"},
        headers=headers,
    )
    assert refusal(change, 422, "invalid_text")["details"][0]["field"] == "new_password"

    missing = "00000000-0000-8000-8000-000000000000"
    decision = f"/v1/operator/orders/{missing}/decision"
    nul_reason = await system.api.post(
        decision, json={"verdict": "reject", "reason": "no\x00money"}, headers=headers
    )
    assert refusal(nul_reason, 422, "invalid_text")["details"][0]["field"] == "reason"
    # Free text keeps its line breaks and right-to-left marks: past validation, to the order.
    prose = await system.api.post(
        decision,
        json={"verdict": "reject", "reason": "line one\nline two\t\u200f\u05e9\u05dc\u05d5\u05dd"},
        headers=headers,
    )
    refusal(prose, 404, "order_not_found")

    card = await system.api.post(
        f"/v1/pay/{missing}/confirm", json={"card_number": PAYER_PAN[:8] + "\x00" + PAYER_PAN[8:]}
    )
    assert refusal(card, 422, "invalid_text")["details"][0]["field"] == "card_number"


async def test_mixed_problems_keep_the_schema_code_and_name_each_reason(system: System):
    answer = await create(system, partner_order_id="a\x00b", amount_minor=-1)

    error = refusal(answer, 422, "invalid_request")
    by_field = {d["field"]: d for d in error["details"]}
    assert by_field["partner_order_id"]["reason"] == "control_character"
    assert "reason" not in by_field["amount_minor"]


# --- one meaning per body -------------------------------------------------------------------


async def test_duplicate_keys_are_refused_before_anything_happens(system: System):
    before = order_count(system)
    body = (
        '{"direction": "deposit", "amount_minor": 10000, "amount_minor": 1, '
        f'"currency": "{CURRENCY}", "partner_order_id": "{fresh_id()}"}}'
    ).encode()

    answer = await create_raw(system, body)  # correctly signed: only the body is ambiguous

    error = refusal(answer, 422, "duplicate_key")
    assert error["details"] == [
        {"field": "amount_minor", "problem": "the key appears more than once in one object"}
    ]
    login = await system.api.post(
        "/v1/auth/login", content=b'{"username": "olga", "username": "ann", "password": "x"}'
    )
    refusal(login, 422, "duplicate_key")
    assert order_count(system) == before


async def test_a_lone_surrogate_in_a_key_is_a_422_not_a_500(system: System):
    body = json.dumps({**GOOD, "partner_order_id": fresh_id(), "\ud800": 1}).encode()

    answer = await create_raw(system, body)

    detail = refusal(answer, 422, "invalid_text")["details"][0]
    assert (detail["field"], detail["reason"]) == ("\\ud800", "lone_surrogate")


# --- cursors --------------------------------------------------------------------------------


async def test_cursors_are_signed_and_bound_to_their_partner(system: System):
    for _ in range(3):
        made = await create(system)
        assert made.status_code == 201, made.text
    await system.eventually(lambda: order_count(system) >= 3, "three orders in PostgreSQL")
    first = await system.partner.get("/v1/orders", params={"limit": 1})
    cursor = first.json()["next_after"]
    position, _, tag = cursor.rpartition(".")

    following = await system.partner.get("/v1/orders", params={"limit": 1, "after": cursor})
    assert following.status_code == 200, following.text
    assert following.json()["items"][0]["uid"] != first.json()["items"][0]["uid"]

    flipped = tag[:-1] + ("0" if tag[-1] != "0" else "1")
    forged = {
        "hand-made": "1767225600412000_694cb15724b48d8a85a0604b04194933",
        "unsigned position": position,
        "edited position": position.replace(position[0], "9", 1) + "." + tag,
        "edited tag": f"{position}.{flipped}",
        "nul": f"{position}\x00.{tag}",
    }
    for what, after in forged.items():
        answer = await system.partner.get("/v1/orders", params={"limit": 1, "after": after})
        assert answer.status_code == 422, (what, answer.text)
        assert answer.json()["error"]["code"] == "invalid_cursor", what
    rival = await system.rival.get("/v1/orders", params={"limit": 1, "after": cursor})
    refusal(rival, 422, "invalid_cursor")


# --- uids -----------------------------------------------------------------------------------


def spellings(uid: str) -> list[str]:
    plain = uuid.UUID(uid)
    return [uid.upper(), plain.hex, f"{{{uid}}}", plain.urn, f" {uid}", f"{uid}\x00"]


async def test_only_the_canonical_uid_names_an_order(system: System):
    made = await create(system)
    assert made.status_code == 201, made.text
    uid = made.json()["uid"]
    await system.row(uid, "new")

    assert (await system.partner.get(f"/v1/orders/{uid}")).status_code == 200
    assert (await system.api.get(f"/v1/pay/{uid}")).status_code == 200
    for other in spellings(uid):
        segment = quote(other, safe="")
        answers = {
            "partner": await system.partner.get(f"/v1/orders/{segment}"),
            "cancel": await system.partner.post(f"/v1/orders/{segment}/cancel"),
            "payer": await system.api.get(f"/v1/pay/{segment}"),
            "confirm": await system.api.post(f"/v1/pay/{segment}/confirm", json={}),
            "events": await system.api.get(f"/v1/pay/{segment}/events"),
        }
        for name, answer in answers.items():
            assert answer.status_code == 404, (name, ascii(other), answer.text)
            assert answer.json()["error"]["code"] == "order_not_found", (name, ascii(other))
        page = await system.api.get(f"/pay/{segment}")
        assert page.status_code == 404, ascii(other)
        assert "text/html" in page.headers["content-type"]
    # Nothing was cancelled or confirmed through another spelling.
    assert (await system.partner.get(f"/v1/orders/{uid}")).json()["status"] == "new"
    # An encoded slash for a uid (found by the pipeline fuzz) is refused, not redirected.
    for path in ("/v1/orders/%2F%2F", "/v1/orders/", "/v1/pay/%2F"):
        answer = await system.partner.get(path)
        assert answer.status_code == 404, (path, answer.status_code, answer.headers)
        assert "error" in answer.json()


# --- query strings and signature headers ------------------------------------------------------


async def test_odd_characters_in_queries_paths_and_headers_never_500(system: System):
    queries = [
        {"status": "\x00"},
        {"direction": "deposit\x85"},
        {"after": "\x00"},
        {"after": "\x85" * 50},
        {"created_from": "2026-01-01T00:00:00\x00Z"},
    ]
    for params in queries:
        answer = await system.partner.get("/v1/orders", params=params)
        assert answer.status_code == 422, (ascii(params), answer.text)
    raw = await system.partner.get("/v1/orders?after=%ED%A0%80&status=%00")
    assert raw.status_code == 422, raw.text
    page = await system.api.get("/pay/not-an-order", params={"lang": "\x00\x85"})
    assert page.status_code == 404

    body = b"{}"
    for header, value in [
        ("X-Keeper-Key", b"kp_\x00abc"),
        ("X-Keeper-Key", b"kp_\x85abc"),
        ("X-Keeper-Key", "kp_\u00e9".encode("latin-1")),
        ("X-Keeper-Nonce", b"\x00" * 20),
        ("X-Keeper-Nonce", b"n\xc3\xa9" * 8),
        ("X-Keeper-Timestamp", b"1\x00"),
    ]:
        headers: dict[str, Any] = signed(system, "POST", "/v1/orders", body)
        headers[header] = value
        answer = await system.api.post("/v1/orders", content=body, headers=headers)
        refusal(answer, 401, "malformed_auth_header")


async def test_the_refusals_leave_the_pipeline_reconciled(system: System):
    """After a burst of refused requests and one good order, nothing halted or drifted."""
    for value in ("a\x00b", "\ud800", " padded", "e\u0301"):
        answer = await create(system, partner_order_id=value)
        assert answer.status_code == 422, answer.text
    good = await create(system)
    assert good.status_code == 201, good.text
    await system.row(good.json()["uid"], "new")
    await asyncio.sleep(0)
    assert await system.mismatches() == []
