"""Partner request signing (scheme v1): the documented vectors, every refusal, the window,
nonces, query canonicalisation, tampering, and sign -> verify round trips."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from domain.api_keys import ApiKey
from ingest_api.nonces import InMemoryNonceStore, NonceStoreFullError
from ingest_api.signing import (
    AUTH_HEADERS,
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    AuthenticatedPartner,
    AuthError,
    BadSignature,
    MalformedAuthHeader,
    MissingAuthHeader,
    ReplayedNonce,
    RevokedApiKey,
    StaleTimestamp,
    StaticKeyLookup,
    UnknownApiKey,
    Verifier,
    canonical_query,
    canonical_request,
    new_nonce,
    sign,
    signed_headers,
)

# --- the vectors published in docs/partner-api.md ---------------------------------------

VECTOR_KEY_ID = "kid_test_0001"
VECTOR_SECRET = b"ks_test_7Qm2xV9pL4rT8wZ1"
VECTOR_TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
VECTOR_BODY = (
    b'{"partner_order_id":"A-1001","direction":"deposit","amount_minor":150000,"currency":"EUR"}'
)
VECTOR_QUERY = (
    "status=new&limit=50&created_after=2026-01-01T00:00:00Z&tag=b&tag=a&q=caf%C3%A9+au+lait&empty="
)
VECTOR_POST_CANONICAL = (
    "KEEPER-HMAC-SHA256-v1\n"
    "POST\n"
    "/v1/orders\n"
    "\n"
    "1767225600\n"
    "n0nce-Example_0001\n"
    "a9fe6760ee14aa07d6bfeda5f526d71a58899771cec4c28697b9e483e5a0f8a5"
)
VECTOR_POST_SIGNATURE = "v1=66d959c7c5de0ea987aa064fa5e66ccc5eb8796d576997c5719d6f20936bb103"
VECTOR_GET_CANONICAL = (
    "KEEPER-HMAC-SHA256-v1\n"
    "GET\n"
    "/v1/orders\n"
    "created_after=2026-01-01T00%3A00%3A00Z&empty=&limit=50&q=caf%C3%A9%20au%20lait"
    "&status=new&tag=a&tag=b\n"
    "1767225600\n"
    "n0nce-Example_0002\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)
VECTOR_GET_SIGNATURE = "v1=d2ac46d0af600c9af91b7d3e0e4e8e5235c81dcb6e16cd7801f7262f6ee7d93c"

ALL_CODES = {
    "missing_auth_header",
    "malformed_auth_header",
    "unknown_api_key",
    "revoked_api_key",
    "stale_timestamp",
    "bad_signature",
    "replayed_nonce",
}

KEY_ID = "kid_acme_1"
SECRET = b"s3cret-acme-key-one-0123456789"
NOW = 1_800_000_000


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_verifier(clock: FakeClock, max_skew_s: int = 300) -> Verifier:
    keys = StaticKeyLookup(
        {
            KEY_ID: ApiKey(partner_id="acme", secret=SECRET),
            "kid_acme_2": ApiKey(partner_id="acme", secret=b"another-acme-secret-987654"),
            "kid_old": ApiKey(partner_id="acme", secret=b"retired-secret-000000", active=False),
            VECTOR_KEY_ID: ApiKey(partner_id="vector", secret=VECTOR_SECRET),
        }
    )
    return Verifier(keys, InMemoryNonceStore(clock), clock=clock, max_skew_s=max_skew_s)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(clock: FakeClock) -> Verifier:
    return make_verifier(clock)


def signed(
    method: str = "POST",
    path: str = "/v1/orders",
    query: Any = "",
    body: bytes = b'{"amount_minor":100}',
    *,
    key_id: str = KEY_ID,
    secret: bytes = SECRET,
    now: float = NOW,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``Verifier.verify`` describing one correctly signed request."""
    raw_query = query if isinstance(query, str) else urlencode(query)
    headers = signed_headers(key_id, secret, method, path, raw_query, body, now=now, nonce=nonce)
    return {
        "method": method,
        "path": path,
        "query_string": raw_query,
        "headers": headers,
        "body": body,
    }


def with_header(request: dict[str, Any], name: str, value: str | None) -> dict[str, Any]:
    headers = {k: v for k, v in request["headers"].items() if k != name}
    if value is not None:
        headers[name] = value
    return {**request, "headers": headers}


# --- vectors ------------------------------------------------------------------------------


def test_post_vector_matches_an_independent_computation() -> None:
    body_hash = hashlib.sha256(VECTOR_BODY).hexdigest()
    assert VECTOR_POST_CANONICAL.endswith(body_hash)
    mac = hmac.new(VECTOR_SECRET, VECTOR_POST_CANONICAL.encode(), hashlib.sha256).hexdigest()
    assert f"v1={mac}" == VECTOR_POST_SIGNATURE

    built = canonical_request(
        "POST", "/v1/orders", None, VECTOR_TIMESTAMP, "n0nce-Example_0001", VECTOR_BODY
    )
    assert built == VECTOR_POST_CANONICAL.encode()
    assert (
        sign(
            VECTOR_SECRET,
            "POST",
            "/v1/orders",
            "",
            VECTOR_TIMESTAMP,
            "n0nce-Example_0001",
            VECTOR_BODY,
        )
        == VECTOR_POST_SIGNATURE
    )


def test_get_vector_matches_an_independent_computation() -> None:
    mac = hmac.new(VECTOR_SECRET, VECTOR_GET_CANONICAL.encode(), hashlib.sha256).hexdigest()
    assert f"v1={mac}" == VECTOR_GET_SIGNATURE
    built = canonical_request(
        "GET", "/v1/orders", VECTOR_QUERY, VECTOR_TIMESTAMP, "n0nce-Example_0002", b""
    )
    assert built == VECTOR_GET_CANONICAL.encode()
    assert (
        sign(
            VECTOR_SECRET,
            "GET",
            "/v1/orders",
            VECTOR_QUERY,
            VECTOR_TIMESTAMP,
            "n0nce-Example_0002",
            None,
        )
        == VECTOR_GET_SIGNATURE
    )


@pytest.mark.parametrize(
    ("method", "query", "nonce", "body", "signature"),
    [
        ("POST", "", "n0nce-Example_0001", VECTOR_BODY, VECTOR_POST_SIGNATURE),
        ("GET", VECTOR_QUERY, "n0nce-Example_0002", b"", VECTOR_GET_SIGNATURE),
    ],
)
async def test_vectors_verify(
    method: str, query: str, nonce: str, body: bytes, signature: str
) -> None:
    verifier = make_verifier(FakeClock(VECTOR_TIMESTAMP + 42))
    headers = {
        HEADER_KEY: VECTOR_KEY_ID,
        HEADER_TIMESTAMP: str(VECTOR_TIMESTAMP),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature,
    }
    who = await verifier.verify(method, "/v1/orders", query, headers, body)
    assert who == AuthenticatedPartner(partner_id="vector", key_id=VECTOR_KEY_ID)


def test_vectors_are_in_the_partner_documentation() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "partner-api.md").read_text(encoding="utf-8")
    for text in (
        VECTOR_KEY_ID,
        VECTOR_SECRET.decode(),
        VECTOR_BODY.decode(),
        VECTOR_QUERY,
        VECTOR_POST_CANONICAL,
        VECTOR_GET_CANONICAL,
        VECTOR_POST_SIGNATURE,
        VECTOR_GET_SIGNATURE,
    ):
        assert text in doc


def test_the_documented_standard_library_example_reproduces_the_vectors() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "partner-api.md").read_text(encoding="utf-8")
    section = doc.split("### Signing in Python with the standard library", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "partner-api.md", "exec"), namespace)  # noqa: S102 - our own doc
    example = namespace["keeper_signature"]
    secret = VECTOR_SECRET.decode()
    post = example(
        secret, "post", "/v1/orders", "", VECTOR_TIMESTAMP, "n0nce-Example_0001", VECTOR_BODY
    )
    get = example(
        secret, "GET", "/v1/orders", VECTOR_QUERY, VECTOR_TIMESTAMP, "n0nce-Example_0002", b""
    )
    assert (post, get) == (VECTOR_POST_SIGNATURE, VECTOR_GET_SIGNATURE)


# --- success ------------------------------------------------------------------------------


async def test_a_signed_request_names_its_partner_and_key(verifier: Verifier) -> None:
    assert await verifier.verify(**signed()) == AuthenticatedPartner("acme", KEY_ID)


async def test_every_active_key_of_a_partner_works(verifier: Verifier) -> None:
    request = signed(key_id="kid_acme_2", secret=b"another-acme-secret-987654")
    assert await verifier.verify(**request) == AuthenticatedPartner("acme", "kid_acme_2")


async def test_header_names_are_case_insensitive(verifier: Verifier) -> None:
    request = signed()
    lowered = {k.lower(): v for k, v in request["headers"].items()}
    assert (await verifier.verify(**{**request, "headers": lowered})).partner_id == "acme"


async def test_starlette_headers_are_accepted(verifier: Verifier) -> None:
    request = signed()
    raw = [(k.lower().encode(), v.encode()) for k, v in request["headers"].items()]
    starlette_headers = Headers(raw=[*raw, (b"content-type", b"application/json")])
    result = await verifier.verify(**{**request, "headers": starlette_headers})
    assert result.key_id == KEY_ID


def test_signed_headers_carry_a_fresh_valid_nonce_and_the_current_time() -> None:
    first = signed_headers(KEY_ID, SECRET, "GET", "/v1/balance", None, None)
    second = signed_headers(KEY_ID, SECRET, "GET", "/v1/balance", None, None)
    assert set(first) == set(AUTH_HEADERS)
    assert first[HEADER_NONCE] != second[HEADER_NONCE]
    assert len(new_nonce()) == 32
    assert abs(int(first[HEADER_TIMESTAMP]) - time.time()) < 5
    assert first[HEADER_SIGNATURE].startswith("v1=")


# --- missing and malformed headers -----------------------------------------------------------


@pytest.mark.parametrize("header", AUTH_HEADERS)
async def test_each_missing_header_is_named(verifier: Verifier, header: str) -> None:
    with pytest.raises(MissingAuthHeader) as caught:
        await verifier.verify(**with_header(signed(), header, None))
    assert caught.value.code == "missing_auth_header"
    assert caught.value.headers == (header,)
    assert header in caught.value.message


async def test_all_missing_headers_are_named_at_once(verifier: Verifier) -> None:
    with pytest.raises(MissingAuthHeader) as caught:
        await verifier.verify("GET", "/v1/balance", "", {}, b"")
    assert caught.value.headers == AUTH_HEADERS


async def test_an_empty_header_counts_as_missing(verifier: Verifier) -> None:
    with pytest.raises(MissingAuthHeader):
        await verifier.verify(**with_header(signed(), HEADER_NONCE, ""))


GOOD_SIGNATURE = "v1=" + "0" * 64


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_KEY, "kid with space"),
        (HEADER_KEY, "k" * 65),
        (HEADER_KEY, "kid/../x"),
        (HEADER_TIMESTAMP, "-1800000000"),
        (HEADER_TIMESTAMP, "+1800000000"),
        (HEADER_TIMESTAMP, "01800000000"),
        (HEADER_TIMESTAMP, "1800000000.0"),
        (HEADER_TIMESTAMP, "1.8e9"),
        (HEADER_TIMESTAMP, " 1800000000"),
        (HEADER_TIMESTAMP, "1" * 13),
        (HEADER_TIMESTAMP, "now"),
        (HEADER_NONCE, "a" * 15),
        (HEADER_NONCE, "a" * 65),
        (HEADER_NONCE, "nonce.with.a.dot.1234"),
        (HEADER_NONCE, "nonce with spaces 1234"),
        (HEADER_SIGNATURE, "0" * 64),
        (HEADER_SIGNATURE, "v2=" + "0" * 64),
        (HEADER_SIGNATURE, "v1=" + "A" * 64),
        (HEADER_SIGNATURE, "v1=" + "0" * 63),
        (HEADER_SIGNATURE, "v1=" + "0" * 65),
        (HEADER_SIGNATURE, "V1=" + "0" * 64),
        (HEADER_SIGNATURE, GOOD_SIGNATURE + ",v1=" + "0" * 64),
    ],
)
async def test_malformed_headers_are_refused_with_their_name(
    verifier: Verifier, header: str, value: str
) -> None:
    with pytest.raises(MalformedAuthHeader) as caught:
        await verifier.verify(**with_header(signed(), header, value))
    assert caught.value.code == "malformed_auth_header"
    assert caught.value.header == header
    assert value not in caught.value.message  # rules are stated, values are not echoed


async def test_a_header_repeated_with_different_values_is_malformed(verifier: Verifier) -> None:
    request = signed()
    raw = [(k.encode(), v.encode()) for k, v in request["headers"].items()]
    raw.append((HEADER_NONCE.lower().encode(), b"another-nonce-0123456789"))
    with pytest.raises(MalformedAuthHeader) as caught:
        await verifier.verify(**{**request, "headers": Headers(raw=raw)})
    assert caught.value.header == HEADER_NONCE


async def test_a_header_repeated_with_the_same_value_is_tolerated(verifier: Verifier) -> None:
    request = signed()
    raw = [(k.encode(), v.encode()) for k, v in request["headers"].items()]
    raw.append((HEADER_KEY.lower().encode(), KEY_ID.encode()))
    assert await verifier.verify(**{**request, "headers": Headers(raw=raw)})


# --- keys -----------------------------------------------------------------------------------


async def test_an_unknown_key_is_refused(verifier: Verifier) -> None:
    with pytest.raises(UnknownApiKey) as caught:
        await verifier.verify(**signed(key_id="kid_nobody"))
    assert caught.value.code == "unknown_api_key"
    assert caught.value.key_id == "kid_nobody"


async def test_a_revoked_key_is_refused_even_with_a_valid_signature(verifier: Verifier) -> None:
    with pytest.raises(RevokedApiKey) as caught:
        await verifier.verify(**signed(key_id="kid_old", secret=b"retired-secret-000000"))
    assert caught.value.code == "revoked_api_key"


# --- order of checks ------------------------------------------------------------------------


async def test_malformed_beats_unknown_key(verifier: Verifier) -> None:
    request = with_header(signed(key_id="kid_nobody"), HEADER_SIGNATURE, "bogus")
    with pytest.raises(MalformedAuthHeader):
        await verifier.verify(**request)


async def test_key_checks_come_before_the_window_and_the_signature(verifier: Verifier) -> None:
    stale_and_forged = with_header(signed(now=NOW - 10_000), HEADER_SIGNATURE, GOOD_SIGNATURE)
    with pytest.raises(UnknownApiKey):
        await verifier.verify(**with_header(stale_and_forged, HEADER_KEY, "kid_nobody"))
    with pytest.raises(RevokedApiKey):
        await verifier.verify(**with_header(stale_and_forged, HEADER_KEY, "kid_old"))


async def test_the_window_comes_before_the_signature(verifier: Verifier) -> None:
    request = with_header(signed(now=NOW - 10_000), HEADER_SIGNATURE, GOOD_SIGNATURE)
    with pytest.raises(StaleTimestamp):
        await verifier.verify(**request)


# --- the timestamp window -------------------------------------------------------------------


@pytest.mark.parametrize("offset_s", [-300, -299, 0, 299, 300])
async def test_timestamps_within_300_s_either_way_are_accepted(
    verifier: Verifier, offset_s: int
) -> None:
    assert await verifier.verify(**signed(now=NOW + offset_s))


@pytest.mark.parametrize("offset_s", [-301, 301, -86_400, 86_400])
async def test_timestamps_beyond_300_s_either_way_are_stale(
    verifier: Verifier, offset_s: int
) -> None:
    with pytest.raises(StaleTimestamp) as caught:
        await verifier.verify(**signed(now=NOW + offset_s))
    assert caught.value.code == "stale_timestamp"
    assert caught.value.skew_s == offset_s
    assert str(NOW) in caught.value.message  # tells the partner what time the server has
    assert ("ahead of" if offset_s > 0 else "behind") in caught.value.message


async def test_the_window_is_configurable(clock: FakeClock) -> None:
    narrow = make_verifier(clock, max_skew_s=60)
    assert await narrow.verify(**signed(now=NOW - 60))
    with pytest.raises(StaleTimestamp):
        await narrow.verify(**signed(now=NOW - 61))
    with pytest.raises(ValueError, match="positive"):
        make_verifier(clock, max_skew_s=0)


# --- signatures and tampering -------------------------------------------------------------


async def test_a_wrong_secret_is_a_bad_signature(verifier: Verifier) -> None:
    request = signed(secret=b"not-the-right-secret-at-all")
    with pytest.raises(BadSignature) as caught:
        await verifier.verify(**request)
    expected = signed_headers(
        KEY_ID,
        SECRET,
        "POST",
        "/v1/orders",
        "",
        request["body"],
        NOW,
        request["headers"][HEADER_NONCE],
    )[HEADER_SIGNATURE]
    assert caught.value.code == "bad_signature"
    for leaked in (expected, expected[3:], SECRET.decode()):
        assert leaked not in caught.value.message
        assert leaked not in repr(caught.value)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"body": b'{"amount_minor":1000}'}, id="body"),
        pytest.param({"body": b""}, id="body-removed"),
        pytest.param({"path": "/v1/orders/"}, id="path-trailing-slash"),
        pytest.param({"path": "/v1/balance"}, id="path"),
        pytest.param({"path": "/V1/orders"}, id="path-case"),
        pytest.param({"method": "PUT"}, id="method"),
        pytest.param({"query_string": "x=1"}, id="query-added"),
    ],
)
async def test_tampering_with_any_signed_part_is_detected(
    verifier: Verifier, tamper: dict[str, Any]
) -> None:
    with pytest.raises(BadSignature):
        await verifier.verify(**{**signed(), **tamper})


async def test_the_path_is_signed_in_its_encoded_form(verifier: Verifier) -> None:
    request = signed(method="GET", path="/v1/orders/a%2Fb", body=b"")
    assert await verifier.verify(**request)
    with pytest.raises(BadSignature):
        await verifier.verify(
            **{**signed(method="GET", path="/v1/orders/a%2Fb", body=b""), "path": "/v1/orders/a/b"}
        )


@pytest.mark.parametrize(
    ("method", "path"),
    [("M-SEARCH", "/v1/orders"), ("POST", "/v1/caf\xe9"), ("POST", "/v1/a b"), ("POST", "*")],
)
async def test_requests_nobody_can_sign_are_bad_signatures_not_crashes(
    verifier: Verifier, method: str, path: str
) -> None:
    with pytest.raises(BadSignature):
        await verifier.verify(**{**signed(), "method": method, "path": path})


def test_an_api_key_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        ApiKey(partner_id="acme", secret=b"")


@pytest.mark.parametrize(
    ("header", "value"),
    [(HEADER_TIMESTAMP, str(NOW + 1)), (HEADER_NONCE, "a-completely-different-nonce")],
)
async def test_timestamp_and_nonce_are_signed(verifier: Verifier, header: str, value: str) -> None:
    with pytest.raises(BadSignature):
        await verifier.verify(**with_header(signed(), header, value))


async def test_a_signature_for_another_key_of_the_same_partner_is_bad(verifier: Verifier) -> None:
    request = with_header(signed(), HEADER_KEY, "kid_acme_2")
    with pytest.raises(BadSignature):
        await verifier.verify(**request)


@pytest.mark.parametrize("signing_method", ["post", "Post", "POST"])
@pytest.mark.parametrize("received_method", ["POST", "post"])
async def test_the_method_is_signed_uppercase(
    verifier: Verifier, signing_method: str, received_method: str
) -> None:
    request = signed(method=signing_method)
    assert await verifier.verify(**{**request, "method": received_method})


# --- nonces ---------------------------------------------------------------------------------


async def test_a_replayed_request_is_refused(verifier: Verifier) -> None:
    request = signed()
    await verifier.verify(**request)
    with pytest.raises(ReplayedNonce) as caught:
        await verifier.verify(**request)
    assert caught.value.code == "replayed_nonce"


async def test_a_nonce_is_per_key(verifier: Verifier) -> None:
    nonce = "shared-nonce-0123456789"
    assert await verifier.verify(**signed(nonce=nonce))
    other = signed(key_id="kid_acme_2", secret=b"another-acme-secret-987654", nonce=nonce)
    assert await verifier.verify(**other)


async def test_a_failed_signature_does_not_burn_the_nonce(verifier: Verifier) -> None:
    legit = signed()
    forged = with_header(legit, HEADER_SIGNATURE, GOOD_SIGNATURE)
    with pytest.raises(BadSignature):
        await verifier.verify(**forged)
    assert await verifier.verify(**legit)


async def test_stale_or_unknown_requests_do_not_burn_the_nonce(verifier: Verifier) -> None:
    nonce = "nonce-under-attack-0001"
    with pytest.raises(StaleTimestamp):
        await verifier.verify(**signed(now=NOW - 1000, nonce=nonce))
    with pytest.raises(UnknownApiKey):
        await verifier.verify(**signed(key_id="kid_nobody", nonce=nonce))
    assert await verifier.verify(**signed(nonce=nonce))


async def test_a_replay_is_refused_until_the_request_itself_goes_stale(
    clock: FakeClock, verifier: Verifier
) -> None:
    request = signed(now=NOW - 300)
    await verifier.verify(**request)
    with pytest.raises(ReplayedNonce):
        await verifier.verify(**request)
    clock.now = NOW + 1
    with pytest.raises(StaleTimestamp):
        await verifier.verify(**request)


async def test_concurrent_copies_of_one_request_pass_once(verifier: Verifier) -> None:
    request = signed()
    results = await asyncio.gather(
        *(verifier.verify(**request) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, AuthenticatedPartner) for r in results) == 1
    assert sum(isinstance(r, ReplayedNonce) for r in results) == 4


# --- the error vocabulary -----------------------------------------------------------------


def test_error_codes_are_the_documented_stable_set() -> None:
    codes = {cls.code for cls in AuthError.__subclasses__()}
    assert codes == ALL_CODES
    assert all(issubclass(cls, AuthError) for cls in AuthError.__subclasses__())


# --- query canonicalisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=10&a=1", "a=1&a=10&a=2"),  # repeated keys: sorted by encoded value
        ("a-b=1&a=2", "a=2&a-b=1"),  # pairs sort by key first, not by "key=value"
        ("q=a+b", "q=a%20b"),  # + is a space
        ("q=a%20b", "q=a%20b"),
        ("q=a%2Bb", "q=a%2Bb"),  # an encoded plus stays a plus
        ("t=00:00", "t=00%3A00"),  # reserved characters are encoded
        ("t=00%3a00", "t=00%3A00"),  # hex digits uppercase
        ("e=caf%c3%a9", "e=caf%C3%A9"),
        ("s=a~b.c-d_e", "s=a~b.c-d_e"),  # unreserved characters stay literal
        ("s=%7E", "s=~"),
        ("flag", "flag="),  # no "=" means an empty value
        ("flag=", "flag="),
        ("=v", "=v"),
        ("a=1&&b=2&", "a=1&b=2"),  # empty segments are dropped
        ("k=a=b", "k=a%3Db"),  # the first "=" splits
        ("k=%zz", "k=%25zz"),  # an invalid escape stays literal
        ("k=%E9", "k=%E9"),  # bytes that are not UTF-8 survive
        ("k=a;b", "k=a%3Bb"),  # ";" is not a separator
    ],
)
def test_raw_queries_canonicalise(raw: str, canonical: str) -> None:
    assert canonical_query(raw) == canonical
    assert canonical_query(raw.encode()) == canonical


def test_pairs_mappings_and_raw_strings_agree() -> None:
    raw = "tag=b&status=new&tag=a&q=caf%C3%A9+au+lait"
    pairs = [("status", "new"), ("tag", "a"), ("q", "café au lait"), ("tag", "b")]
    mapping = {"q": "café au lait", "tag": ["b", "a"], "status": "new"}
    expected = "q=caf%C3%A9%20au%20lait&status=new&tag=a&tag=b"
    assert canonical_query(raw) == canonical_query(pairs) == canonical_query(mapping) == expected
    assert canonical_query(None) == canonical_query({}) == canonical_query([]) == ""


async def test_the_server_accepts_any_equivalent_encoding_of_the_query(
    verifier: Verifier,
) -> None:
    pairs = [("status", "new"), ("q", "a b+c:d")]
    for raw in ("status=new&q=a+b%2Bc%3Ad", "q=a%20b%2bc:d&status=new", "q=a+b%2Bc:d&&status=new"):
        request = signed(method="GET", body=b"", query=pairs)  # a fresh nonce each time
        assert await verifier.verify(**{**request, "query_string": raw})


async def test_query_values_are_signed(verifier: Verifier) -> None:
    request = signed(method="GET", body=b"", query="status=new&limit=10")
    for raw in ("status=new&limit=100", "status=new", "status=new&limit=10&limit=10"):
        with pytest.raises(BadSignature):
            await verifier.verify(**{**request, "query_string": raw})


# --- input validation of the pure functions -------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"method": ""},
        {"method": "GET /x"},
        {"method": "GE\nT"},
        {"path": "v1/orders"},
        {"path": ""},
        {"path": "/v1/orders?a=1"},
        {"path": "/v1/orders#frag"},
        {"path": "/v1/or ders"},
        {"path": "/v1/orders\n"},
        {"timestamp": -1},
        {"timestamp": True},
        {"timestamp": 1.5},
        {"nonce": "short"},
        {"nonce": "has\nnewline-0123456789"},
    ],
)
def test_canonical_request_refuses_what_could_break_the_format(change: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "method": "GET",
        "path": "/v1/orders",
        "query": "",
        "timestamp": NOW,
        "nonce": "a-valid-nonce-0123456",
        "body": b"",
    }
    with pytest.raises(ValueError, match="must"):
        canonical_request(**{**arguments, **change})


def test_sign_refuses_an_empty_secret_and_bad_key_ids() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(b"", "GET", "/", None, NOW, "a-valid-nonce-0123456", None)
    with pytest.raises(ValueError, match="key id"):
        signed_headers("bad key", SECRET, "GET", "/", None, None)


def test_no_body_and_an_empty_body_sign_the_same() -> None:
    args = ("GET", "/v1/balance", None, NOW, "a-valid-nonce-0123456")
    assert sign(SECRET, *args, None) == sign(SECRET, *args, b"")


def test_an_api_key_never_shows_its_secret() -> None:
    key = ApiKey(partner_id="acme", secret=SECRET)
    assert SECRET.decode() not in repr(key)
    assert SECRET.decode() not in str(key)


# --- the in-memory nonce store ----------------------------------------------------------------


async def test_the_store_remembers_per_key_until_expiry_inclusive() -> None:
    clock = FakeClock(100)
    store = InMemoryNonceStore(clock)
    assert await store.remember("k1", "n", 110)
    assert not await store.remember("k1", "n", 110)
    assert await store.remember("k2", "n", 110)
    clock.now = 110
    assert not await store.remember("k1", "n", 500)  # still live at its expiry second
    clock.now = 110.5
    assert await store.remember("k1", "n", 500)  # forgotten once past it


async def test_the_store_evicts_expired_entries() -> None:
    clock = FakeClock(0)
    store = InMemoryNonceStore(clock)
    for i in range(100):
        await store.remember("k", f"nonce-{i}", expires_at_s=i)
    assert len(store) == 100
    clock.now = 49.5
    await store.remember("k", "trigger", expires_at_s=1000)
    assert len(store) == 51  # 50..99 and the trigger
    clock.now = 2000
    await store.remember("k", "trigger-2", expires_at_s=3000)
    assert len(store) == 1


async def test_a_full_store_fails_closed() -> None:
    clock = FakeClock(0)
    store = InMemoryNonceStore(clock, max_entries=2)
    assert await store.remember("k", "a", 10)
    assert await store.remember("k", "b", 10)
    with pytest.raises(NonceStoreFullError):
        await store.remember("k", "c", 10)
    assert not await store.remember("k", "a", 10)  # a live nonce is never dropped for room
    clock.now = 11
    assert await store.remember("k", "c", 20)  # expiry makes room again
    with pytest.raises(ValueError, match="positive"):
        InMemoryNonceStore(clock, max_entries=0)


# --- properties -----------------------------------------------------------------------------

query_text = st.text(max_size=12)
query_pairs = st.lists(st.tuples(query_text, query_text), max_size=6)
path_segments = st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4)


def encode_with_plus(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs)  # form style: spaces as "+"


def encode_with_percent(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in reversed(pairs))


def verify_now(verifier: Verifier, **request: Any) -> AuthenticatedPartner:
    return asyncio.run(verifier.verify(**request))


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "post", "DELETE"]),
    segments=path_segments,
    pairs=query_pairs,
    body=st.binary(max_size=512),
    skew_s=st.integers(-300, 300),
)
def test_sign_then_verify_round_trips(
    method: str, segments: list[str], pairs: list[tuple[str, str]], body: bytes, skew_s: int
) -> None:
    path = "/" + "/".join(quote(segment, safe="") for segment in segments)
    headers = signed_headers(KEY_ID, SECRET, method, path, pairs, body, now=NOW + skew_s)
    for raw in (encode_with_plus(pairs), encode_with_percent(pairs)):
        verifier = make_verifier(FakeClock())
        who = verify_now(
            verifier, method=method.upper(), path=path, query_string=raw, headers=headers, body=body
        )
        assert who == AuthenticatedPartner("acme", KEY_ID)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_single_byte_change_of_the_body_fails(body: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(body)
    tampered[index] ^= flip
    request = signed(body=body)
    with pytest.raises(BadSignature):
        verify_now(make_verifier(FakeClock()), **{**request, "body": bytes(tampered)})


@settings(max_examples=200, deadline=None)
@given(pairs=query_pairs, order=st.randoms(use_true_random=False))
def test_query_canonical_form_ignores_pair_order(pairs: list[tuple[str, str]], order: Any) -> None:
    shuffled = list(pairs)
    order.shuffle(shuffled)
    assert canonical_query(pairs) == canonical_query(shuffled)
    assert canonical_query(encode_with_plus(pairs)) == canonical_query(pairs)
    assert canonical_query(encode_with_percent(shuffled)) == canonical_query(pairs)
