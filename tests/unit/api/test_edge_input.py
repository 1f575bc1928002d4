"""The edge's pure pieces (issue 15, point 1): the JSON body check, signed cursors, canonical
uids, the text types on the request models, and odd bytes in the signature headers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.datastructures import Headers

from ingest_api.cursors import open_cursor, sign_cursor
from ingest_api.errors import ApiError, printable
from ingest_api.json_body import DuplicateKey, LoneSurrogate, json_problem
from ingest_api.limits import BodySizeLimit
from ingest_api.models import DecisionCreate, LoginRequest, OrderCreate, PayerConfirm
from ingest_api.orders_common import parse_uid
from ingest_api.signing import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MalformedAuthHeader,
    parse_auth_headers,
)

SECRET = b"0123456789abcdef0123456789abcdef"
POSITION = "1767225600412000_694cb15724b48d8a85a0604b04194933"

# --- duplicate keys and lone surrogates ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"a": 1, "a": 2}', DuplicateKey("a")),
        (b'{"a": {"b": 1, "b": 1}}', DuplicateKey("b")),  # even with equal values
        (b'[{"k": 1}, {"x": 1, "x": 2}]', DuplicateKey("x")),
        (b'{"a": "\\ud800"}', LoneSurrogate("a")),
        (b'{"a": ["ok", "\\udfff"]}', LoneSurrogate("a.1")),
        (b'{"\\ud800": 1}', LoneSurrogate("\ud800")),
        (b'"\\udc80"', LoneSurrogate("")),
        (b'{"a": 1, "b": 2}', None),
        (b'{"a": "\\ud83d\\ude00"}', None),  # a surrogate *pair* is one emoji: fine
        (b'{"a": "\\u0000"}', None),  # NUL is each field's text rule, not the parser's
        (b'{"a": ', None),  # not JSON: FastAPI answers malformed_json
        (b"\x80", None),
        (b"[" * 100_000, None),  # too deep for the parser: also FastAPI's 400
    ],
    ids=ascii,
)
def test_json_problem(body: bytes, problem: Any) -> None:
    assert json_problem(body) == problem


def test_a_deep_document_is_walked_without_recursion() -> None:
    depth = 900
    body = ("[" * depth + '"\\ud800"' + "]" * depth).encode()
    assert json_problem(body) == LoneSurrogate(".".join(["0"] * depth))


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    app.add_middleware(BodySizeLimit, max_body_bytes=1024)
    return app


async def post(content: bytes, content_type: str | None = "application/json") -> httpx.Response:
    transport = httpx.ASGITransport(app=tiny_app())
    headers = {"Content-Type": content_type} if content_type else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/echo", content=content, headers=headers)


async def test_the_guard_refuses_ambiguous_bodies_and_replays_good_ones() -> None:
    duplicate = await post(b'{"a": 1, "a": 2}')
    assert duplicate.status_code == 422
    assert duplicate.json()["error"]["code"] == "duplicate_key"
    surrogate = await post(b'{"a": "\\ud800"}', "application/merchant+json; charset=utf-8")
    assert surrogate.status_code == 422
    assert surrogate.json()["error"]["details"][0]["reason"] == "lone_surrogate"
    good = await post(b'{"a": 1, "b": "\\u00e9"}')
    assert good.status_code == 200
    assert good.json() == {"a": 1, "b": "\u00e9"}
    too_big = await post(b'{"a": "' + b"x" * 2000 + b'"}')
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "body_too_large"


async def test_the_guard_leaves_other_media_types_alone() -> None:
    # Not JSON to FastAPI either: the schema refuses it, the guard never parsed it.
    answer = await post(b'{"a": 1, "a": 2}', "text/plain")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "dict_type"


# --- cursors ------------------------------------------------------------------------------


def test_a_signed_cursor_opens_for_its_partner_only() -> None:
    cursor = sign_cursor(SECRET, "shop", POSITION)
    assert cursor.startswith(POSITION + ".")
    assert len(cursor) <= 200  # the query parameter's limit
    assert open_cursor(SECRET, "shop", cursor) == POSITION
    for partner, secret, text in [
        ("rival", SECRET, cursor),
        ("shop", b"another-secret-of-32-bytes-000000", cursor),
        ("shop", SECRET, POSITION),
        ("shop", SECRET, cursor[:-1]),
        ("shop", SECRET, cursor.replace("1767", "1768", 1)),
        ("shop", SECRET, cursor + "\x00"),
        ("shop", SECRET, cursor[:-1] + "\u0661"),  # ARABIC-INDIC DIGIT ONE
        ("shop", SECRET, ""),
    ]:
        with pytest.raises(ApiError) as refused:
            open_cursor(secret, partner, text)
        assert (refused.value.status_code, refused.value.code) == (422, "invalid_cursor")


# --- uids ---------------------------------------------------------------------------------

UID = "694cb157-24b4-8d8a-85a0-604b04194933"


def test_only_the_canonical_uid_parses() -> None:
    assert parse_uid(UID) == uuid.UUID(UID)
    plain = uuid.UUID(UID)
    for other in [UID.upper(), plain.hex, f"{{{UID}}}", plain.urn, f"{UID}\n", f" {UID}", ""]:
        with pytest.raises(ApiError) as refused:
            parse_uid(other)
        assert (refused.value.status_code, refused.value.code) == (404, "order_not_found")


# --- text types on the request models -----------------------------------------------------


def problems(model: Any, data: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    return [
        (".".join(map(str, e["loc"])), e["type"], (e.get("ctx") or {}).get("reason"))
        for e in refused.value.errors()
    ]


ORDER = {"direction": "deposit", "amount_minor": 1, "currency": "RUB", "partner_order_id": "x"}


@pytest.mark.parametrize(
    ("model", "data", "expected"),
    [
        (OrderCreate, {**ORDER, "partner_order_id": "a\x00b"}, "control_character"),
        (OrderCreate, {**ORDER, "partner_order_id": "x" * 200 + "\x00"}, "control_character"),
        (OrderCreate, {**ORDER, "partner_order_id": "\ud800"}, "lone_surrogate"),
        (OrderCreate, {**ORDER, "partner_order_id": "   "}, "blank"),
        (OrderCreate, {**ORDER, "currency": "R\x00B"}, "control_character"),
        (OrderCreate, {**ORDER, "callback_url": "https://x.example/e\u0301"}, None),
        (LoginRequest, {"username": "ann\u200e", "password": "pw"}, "format_character"),
        (LoginRequest, {"username": "ann", "password": "\x7f"}, "control_character"),
        (DecisionCreate, {"verdict": "reject", "reason": "\x1b[31m"}, "control_character"),
        (PayerConfirm, {"card_number": "4111 1111\x00 1111 1111"}, "control_character"),
    ],
    ids=ascii,
)
def test_every_request_string_follows_the_rule(
    model: Any, data: dict[str, Any], expected: str | None
) -> None:
    [(field, kind, reason)] = problems(model, data)
    assert kind == "invalid_text"
    if expected is not None:
        assert reason == expected
    else:
        assert (field, reason) == ("callback_url", "not_normalized")


def test_accepted_strings_are_kept_as_sent() -> None:
    order = OrderCreate.model_validate({**ORDER, "partner_order_id": "inv-\U0001f600"})
    assert order.partner_order_id == "inv-\U0001f600"
    decision = DecisionCreate.model_validate({"verdict": "fail", "reason": "a\n\tb \u200f"})
    assert decision.reason == "a\n\tb \u200f"
    login = LoginRequest.model_validate({"username": "ann", "password": " spaced \u00e9 "})
    assert login.password == " spaced \u00e9 "


def test_printable_escapes_only_what_utf8_cannot_carry() -> None:
    assert printable("caf\u00e9 \x00") == "caf\u00e9 \x00"
    assert printable("a\ud800b") == "a\\ud800b"


# --- signature headers --------------------------------------------------------------------

GOOD_HEADERS = {
    HEADER_KEY: "kp_abc",
    HEADER_TIMESTAMP: "1767225600",
    HEADER_NONCE: "n" * 20,
    HEADER_SIGNATURE: "v1=" + "0" * 64,
}


@pytest.mark.parametrize(
    ("header", "raw"),
    [
        (HEADER_KEY, b"kp_\x00"),
        (HEADER_KEY, b"kp_\x85"),
        (HEADER_KEY, b"kp_\xc3\xa9"),
        (HEADER_KEY, b"kp_abc\n"),
        (HEADER_NONCE, b"\x00" * 20),
        (HEADER_NONCE, b"n" * 19 + b"\x7f"),
        (HEADER_NONCE, b"\xd9\xa1" * 10),
        (HEADER_TIMESTAMP, b"\xd9\xa1"),  # an Arabic-Indic digit is not a digit here
        (HEADER_TIMESTAMP, b"17672256\x0000"),
    ],
    ids=ascii,
)
def test_odd_bytes_in_auth_headers_are_malformed(header: str, raw: bytes) -> None:
    # As Starlette sees them: raw header bytes decoded as latin-1.
    pairs = [
        (name.lower().encode(), raw if name == header else value.encode())
        for name, value in GOOD_HEADERS.items()
    ]
    with pytest.raises(MalformedAuthHeader) as refused:
        parse_auth_headers(Headers(raw=pairs))
    assert refused.value.header == header
