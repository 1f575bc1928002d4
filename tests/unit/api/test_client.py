"""The partner client signs exactly what it sends: every request a ``KeeperClient`` (or the
command line) makes is captured by an ``httpx.MockTransport`` and checked by the real
``Verifier``; the secret never shows up in output."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.api_keys import ApiKey
from ingest_api.client import KeeperApiError, KeeperAuth, KeeperClient, main
from ingest_api.nonces import InMemoryNonceStore
from ingest_api.signing import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    AuthenticatedPartner,
    ReplayedNonce,
    StaticKeyLookup,
    Verifier,
)

KEY_ID = "kid_acme_1"
SECRET = "s3cret-acme-Zq8Wm4Kp0Tn6Vx2R"
BASE_URL = "https://keeper.test"
UID = "3f2b8c1e-8d4a-8c7e-9a1b-2c3d4e5f6a7b"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that keeps every request and answers with a canned response."""

    def __init__(self, status_code: int = 200, payload: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status_code = status_code
        self.payload = {"ok": True} if payload is None else payload

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status_code, json=self.payload)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def new_verifier() -> Verifier:
    keys = StaticKeyLookup({KEY_ID: ApiKey(partner_id="acme", secret=SECRET.encode())})
    return Verifier(keys, InMemoryNonceStore())


def verify(request: httpx.Request, verifier: Verifier | None = None) -> AuthenticatedPartner:
    """What the server will do: raw path, raw query, headers and the bytes that arrived."""
    path, _, query = request.url.raw_path.partition(b"?")
    return asyncio.run(
        (verifier or new_verifier()).verify(
            request.method, path.decode(), query, request.headers, request.content
        )
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> KeeperClient:
    return KeeperClient(BASE_URL, KEY_ID, SECRET.encode(), transport=httpx.MockTransport(recorder))


# --- the library ------------------------------------------------------------------------------


def test_create_order_signs_the_json_bytes_it_sends(
    client: KeeperClient, recorder: Recorder
) -> None:
    answer = client.create_order(
        direction="deposit",
        amount_minor=150_000,
        currency="EUR",
        partner_order_id="A-1001",
        ttl_s=900,
        callback_url="https://shop.test/keeper?x=1",
    )
    request = recorder.last
    assert answer == {"ok": True}
    assert (request.method, request.url.raw_path) == ("POST", b"/v1/orders")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "partner_order_id": "A-1001",
        "direction": "deposit",
        "amount_minor": 150_000,
        "currency": "EUR",
        "ttl_s": 900,
        "callback_url": "https://shop.test/keeper?x=1",
    }
    assert verify(request) == AuthenticatedPartner("acme", KEY_ID)


def test_optional_order_fields_are_left_out(client: KeeperClient, recorder: Recorder) -> None:
    client.create_order(
        direction="withdrawal", amount_minor=1, currency="USD", partner_order_id="W-1"
    )
    assert set(json.loads(recorder.last.content)) == {
        "partner_order_id",
        "direction",
        "amount_minor",
        "currency",
    }
    assert verify(recorder.last)


@pytest.mark.parametrize("amount", [1.5, "100", True])
def test_amounts_must_be_integers(client: KeeperClient, recorder: Recorder, amount: Any) -> None:
    with pytest.raises(TypeError, match="minor units"):
        client.create_order(
            direction="deposit", amount_minor=amount, currency="EUR", partner_order_id="A"
        )
    assert recorder.requests == []


def test_non_ascii_bodies_are_signed_as_sent(client: KeeperClient, recorder: Recorder) -> None:
    client.create_order(
        direction="deposit", amount_minor=5, currency="EUR", partner_order_id="заказ-№1 ✓"
    )
    assert "заказ-№1 ✓".encode() in recorder.last.content
    assert verify(recorder.last)


@pytest.mark.parametrize(
    ("call", "method", "raw_path"),
    [
        (lambda c: c.get_order(UID), "GET", f"/v1/orders/{UID}"),
        (lambda c: c.get_order(uuid.UUID(UID)), "GET", f"/v1/orders/{UID}"),
        (lambda c: c.get_order(UID.upper()), "GET", f"/v1/orders/{UID}"),
        (lambda c: c.cancel_order(UID), "POST", f"/v1/orders/{UID}/cancel"),
        (lambda c: c.balance(), "GET", "/v1/balance"),
        (lambda c: c.list_orders(), "GET", "/v1/orders"),
    ],
)
def test_each_call_goes_to_its_path_signed(
    client: KeeperClient,
    recorder: Recorder,
    call: Callable[[KeeperClient], Any],
    method: str,
    raw_path: str,
) -> None:
    call(client)
    request = recorder.last
    assert (request.method, request.url.raw_path.decode()) == (method, raw_path)
    assert verify(request).partner_id == "acme"


def test_cancel_sends_an_empty_body(client: KeeperClient, recorder: Recorder) -> None:
    client.cancel_order(UID)
    assert recorder.last.content == b""
    assert recorder.last.headers["content-length"] == "0"


@pytest.mark.parametrize("uid", ["../balance", "x/../../admin", "", "not-a-uid"])
def test_anything_but_a_uid_stays_out_of_the_path(
    client: KeeperClient, recorder: Recorder, uid: str
) -> None:
    with pytest.raises(ValueError, match="not an order uid"):
        client.get_order(uid)
    assert recorder.requests == []


def test_list_filters_become_a_signed_query(client: KeeperClient, recorder: Recorder) -> None:
    client.list_orders(
        status=["new", "processing"],
        created_after="2026-01-01T00:00:00+03:00",
        limit=50,
        include_closed=False,
        partner_order_id="a b&c=d",
        cursor=None,
    )
    request = recorder.last
    params = request.url.params
    assert params.get_list("status") == ["new", "processing"]
    assert params["created_after"] == "2026-01-01T00:00:00+03:00"
    assert params["limit"] == "50"
    assert params["include_closed"] == "false"
    assert params["partner_order_id"] == "a b&c=d"
    assert "cursor" not in params
    assert verify(request)


def test_every_request_gets_a_fresh_nonce(client: KeeperClient, recorder: Recorder) -> None:
    verifier = new_verifier()
    for _ in range(3):
        client.balance()
    nonces = {request.headers[HEADER_NONCE] for request in recorder.requests}
    assert len(nonces) == 3
    for request in recorder.requests:
        assert verify(request, verifier)
    with pytest.raises(ReplayedNonce):
        verify(recorder.requests[0], verifier)


def test_a_base_url_prefix_is_part_of_the_signed_path(recorder: Recorder) -> None:
    transport = httpx.MockTransport(recorder)
    with KeeperClient(f"{BASE_URL}/keeper", KEY_ID, SECRET.encode(), transport=transport) as c:
        c.balance()
    assert recorder.last.url.raw_path == b"/keeper/v1/balance"
    assert verify(recorder.last)


def test_the_clock_is_injectable(recorder: Recorder) -> None:
    transport = httpx.MockTransport(recorder)
    with KeeperClient(
        BASE_URL, KEY_ID, SECRET.encode(), transport=transport, clock=lambda: 42.9
    ) as client:
        client.balance()
    assert recorder.last.headers["x-keeper-timestamp"] == "42"


@pytest.mark.parametrize(
    ("status_code", "payload", "code"),
    [
        (401, {"code": "bad_signature", "message": "signature does not match"}, "bad_signature"),
        (409, {"error": {"code": "conflict", "message": "different body"}}, "conflict"),
        (422, {"detail": {"code": "invalid_amount"}}, "invalid_amount"),
        (422, {"detail": [{"msg": "field required"}]}, None),
        (500, ["unexpected"], None),
    ],
)
def test_refusals_raise_with_the_api_error_code(
    status_code: int, payload: Any, code: str | None
) -> None:
    recorder = Recorder(status_code, payload)
    client = KeeperClient(
        BASE_URL, KEY_ID, SECRET.encode(), transport=httpx.MockTransport(recorder)
    )
    with pytest.raises(KeeperApiError) as caught:
        client.balance()
    assert (caught.value.status_code, caught.value.code, caught.value.payload) == (
        status_code,
        code,
        payload,
    )


def test_a_non_json_refusal_keeps_its_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    client = KeeperClient(BASE_URL, KEY_ID, SECRET.encode(), transport=httpx.MockTransport(handler))
    with pytest.raises(KeeperApiError) as caught:
        client.balance()
    assert caught.value.payload == "<html>bad gateway</html>"
    assert caught.value.code is None


def test_an_empty_success_is_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    client = KeeperClient(BASE_URL, KEY_ID, SECRET.encode(), transport=httpx.MockTransport(handler))
    assert client.cancel_order(UID) is None


def test_redirects_are_not_followed(recorder: Recorder) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        recorder.requests.append(request)
        return httpx.Response(307, headers={"Location": "https://elsewhere.test/v1/balance"})

    client = KeeperClient(BASE_URL, KEY_ID, SECRET.encode(), transport=httpx.MockTransport(handler))
    with pytest.raises(KeeperApiError) as caught:
        client.balance()
    assert caught.value.status_code == 307
    assert [r.url.host for r in recorder.requests] == ["keeper.test"]


async def test_keeper_auth_signs_async_requests_too() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    auth = KeeperAuth(KEY_ID, SECRET.encode())
    async with httpx.AsyncClient(
        base_url=BASE_URL, auth=auth, transport=httpx.MockTransport(handler)
    ) as http:
        await http.post("/v1/orders", content=b'{"a":1}', params={"dry_run": "true"})
    request = seen[0]
    path, _, query = request.url.raw_path.partition(b"?")
    who = await new_verifier().verify(
        request.method, path.decode(), query, request.headers, request.content
    )
    assert who.key_id == KEY_ID


def test_nothing_shows_the_secret(client: KeeperClient) -> None:
    auth = KeeperAuth(KEY_ID, SECRET.encode())
    for text in (repr(client), str(client), repr(auth), str(auth)):
        assert SECRET not in text


def test_bad_credentials_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="secret"):
        KeeperAuth(KEY_ID, b"")
    with pytest.raises(ValueError, match="key id"):
        KeeperAuth("not a key id", SECRET.encode())


# --- the command line -------------------------------------------------------------------------

CREDENTIALS = ["--base-url", BASE_URL, "--key-id", KEY_ID, "--secret-env", "KEEPER_TEST_SECRET"]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPER_TEST_SECRET", SECRET)


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], handler: Handler | None = None
) -> tuple[int, str, str]:
    transport = httpx.MockTransport(handler or Recorder())
    status = main(argv, transport=transport)
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    return status, out, err


@pytest.mark.usefixtures("secret_env")
@pytest.mark.parametrize("direction", ["deposit", "withdrawal"])
def test_cli_creates_orders(
    capsys: pytest.CaptureFixture[str], recorder: Recorder, direction: str
) -> None:
    argv = [
        *CREDENTIALS,
        f"create-{direction}",
        "--amount-minor",
        "150000",
        "--currency",
        "EUR",
        "--partner-order-id",
        "A-1001",
        "--ttl-s",
        "600",
        "--callback-url",
        "https://shop.test/cb",
    ]
    status, out, _ = run(argv, capsys, recorder)
    assert status == 0
    assert json.loads(out) == {"ok": True}
    assert json.loads(recorder.last.content) == {
        "partner_order_id": "A-1001",
        "direction": direction,
        "amount_minor": 150_000,
        "currency": "EUR",
        "ttl_s": 600,
        "callback_url": "https://shop.test/cb",
    }
    assert verify(recorder.last)


@pytest.mark.usefixtures("secret_env")
@pytest.mark.parametrize(
    ("command", "method", "target"),
    [
        (["get", UID], "GET", f"/v1/orders/{UID}"),
        (["cancel", UID], "POST", f"/v1/orders/{UID}/cancel"),
        (["balance"], "GET", "/v1/balance"),
        (["list"], "GET", "/v1/orders"),
        (
            ["list", "status=new", "status=processing", "limit=5"],
            "GET",
            "/v1/orders?status=new&status=processing&limit=5",
        ),
    ],
)
def test_cli_reads_and_cancels(
    capsys: pytest.CaptureFixture[str],
    recorder: Recorder,
    command: list[str],
    method: str,
    target: str,
) -> None:
    status, out, _ = run([*CREDENTIALS, *command], capsys, recorder)
    assert status == 0
    assert json.loads(out) == {"ok": True}
    assert (recorder.last.method, recorder.last.url.raw_path.decode()) == (method, target)
    assert verify(recorder.last)


def test_cli_reads_the_secret_from_a_file(
    capsys: pytest.CaptureFixture[str], recorder: Recorder, tmp_path: Path
) -> None:
    secret_file = tmp_path / "keeper.secret"
    secret_file.write_text(f"{SECRET}\n", encoding="utf-8")
    argv = ["--base-url", BASE_URL, "--key-id", KEY_ID, "--secret-file", str(secret_file)]
    status, _, _ = run([*argv, "balance"], capsys, recorder)
    assert status == 0
    assert verify(recorder.last)


@pytest.mark.usefixtures("secret_env")
def test_cli_sign_prints_the_documented_vector(capsys: pytest.CaptureFixture[str]) -> None:
    body = (
        '{"partner_order_id":"A-1001","direction":"deposit","amount_minor":150000,"currency":"EUR"}'
    )
    vector_secret = "ks_test_7Qm2xV9pL4rT8wZ1"
    argv = ["--key-id", "kid_test_0001", "--secret-env", "VECTOR_SECRET"]
    argv += ["sign", "POST", "/v1/orders", "--body", body, "--timestamp", "1767225600"]
    argv += ["--nonce", "n0nce-Example_0001", "--show-canonical"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VECTOR_SECRET", vector_secret)
        status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0
    assert vector_secret not in out + err
    assert out.startswith(
        "X-Keeper-Key: kid_test_0001\n"
        "X-Keeper-Timestamp: 1767225600\n"
        "X-Keeper-Nonce: n0nce-Example_0001\n"
        "X-Keeper-Signature: v1=66d959c7c5de0ea987aa064fa5e66ccc5eb8796d576997c5719d6f20936bb103\n"
    )
    assert "KEEPER-HMAC-SHA256-v1\nPOST\n/v1/orders\n\n1767225600\n" in out


@pytest.mark.usefixtures("secret_env")
def test_cli_sign_output_verifies(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    body_file = tmp_path / "body.bin"
    body_file.write_bytes(b"\x00\xffraw bytes\n")
    argv = ["--key-id", KEY_ID, "--secret-env", "KEEPER_TEST_SECRET", "sign", "put"]
    status, out, _ = run([*argv, "/v1/x%2Fy?b=2&a=1", "--body-file", str(body_file)], capsys)
    assert status == 0
    headers = dict(line.split(": ", 1) for line in out.splitlines())
    who = asyncio.run(
        new_verifier().verify("PUT", "/v1/x%2Fy", "a=1&b=2", headers, body_file.read_bytes())
    )
    assert who.key_id == KEY_ID


@pytest.mark.parametrize(
    ("environment", "argv", "message"),
    [
        ({}, [*CREDENTIALS, "balance"], "KEEPER_TEST_SECRET is not set"),
        ({"KEEPER_TEST_SECRET": "  \n"}, [*CREDENTIALS, "balance"], "is not set or is empty"),
        ({"KEEPER_TEST_SECRET": SECRET}, [*CREDENTIALS[2:], "balance"], "--base-url is required"),
        ({"KEEPER_TEST_SECRET": SECRET}, [*CREDENTIALS, "get", "../balance"], "not an order uid"),
        ({"KEEPER_TEST_SECRET": SECRET}, [*CREDENTIALS, "list", "status"], "not NAME=VALUE"),
        (
            {"KEEPER_TEST_SECRET": SECRET},
            [*CREDENTIALS, "sign", "GET", "/v1/balance", "--nonce", "short"],
            "nonce must be",
        ),
        (
            {},
            ["--key-id", KEY_ID, "--secret-file", "/nonexistent/keeper.secret", "balance"],
            "cannot read secret file",
        ),
    ],
)
def test_cli_misuse_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    recorder: Recorder,
    environment: dict[str, str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("KEEPER_TEST_SECRET", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    status, out, err = run(argv, capsys, recorder)
    assert status == 2
    assert out == ""
    assert message in err
    assert recorder.requests == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--key-id", KEY_ID, "balance"],  # no secret source
        ["--key-id", KEY_ID, "--secret", SECRET, "balance"],  # no way to pass it in argv
        ["--key-id", KEY_ID, f"--secret={SECRET}", "balance"],
        ["--key-id", KEY_ID, "--secret-env", "A", "--secret", SECRET, "balance"],
        ["--key-id", KEY_ID, "--secret-env", "A", "--secret-file", "B", "balance"],
        ["--key-id", KEY_ID, "--secret-env", "A"],  # no command
    ],
)
def test_cli_refuses_bad_usage(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert SECRET not in out + err


@pytest.mark.usefixtures("secret_env")
def test_cli_reports_an_api_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    refusal = Recorder(401, {"code": "stale_timestamp", "message": "timestamp is old"})
    status, out, err = run([*CREDENTIALS, "balance"], capsys, refusal)
    assert status == 1
    assert out == ""
    assert "HTTP 401 (stale_timestamp)" in err
    assert "timestamp is old" in err


@pytest.mark.usefixtures("secret_env")
def test_cli_reports_a_network_failure(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    status, _, err = run([*CREDENTIALS, "balance"], capsys, refuse)
    assert status == 1
    assert "ConnectError" in err


@pytest.mark.usefixtures("secret_env")
def test_cli_never_prints_the_secret_even_when_the_server_echoes_headers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"headers": dict(request.headers)})

    status, _, err = run([*CREDENTIALS, "balance"], capsys, echo)
    assert status == 1
    assert KEY_ID in err  # the echo made it to the output, and still no secret
    assert HEADER_SIGNATURE.lower() in err
