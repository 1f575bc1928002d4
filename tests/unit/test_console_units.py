"""Pure parts of the console: money and wait formatting, the chime, the role table, and the
API client against ``httpx.MockTransport`` (no I/O)."""

from __future__ import annotations

import io
import json
import wave
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ops_console import fmt
from ops_console.api_client import ApiCallError, KeeperApi
from ops_console.nav import visible_keys
from ops_console.roles import PAGE_ROLES, SECTIONS, may_open
from ops_console.sound import chime_html, chime_wav


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (123_456, "RUB", "1,234.56 RUB"),
        (5, "EUR", "0.05 EUR"),
        (-150_000, "RUB", "-1,500.00 RUB"),
        (1500, "JPY", "1,500 JPY"),
        (100, "RUB ", "1.00 RUB"),
    ],
)
def test_money(minor: int, currency: str, shown: str):
    assert fmt.money(minor, currency) == shown


def test_waited_and_when():
    assert [fmt.waited(s) for s in (0, 59.9, 65, 3600 * 2 + 61, -3)] == [
        "0 s",
        "59 s",
        "1 min 05 s",
        "2 h 01 min",
        "0 s",
    ]
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert fmt.when(moment) == "2030-01-02 03:04:05 UTC"
    assert fmt.when(None) == ""
    assert fmt.seconds_since(moment, moment + timedelta(seconds=90)) == 90


def test_chime_is_a_short_wav_and_a_silent_element():
    with wave.open(io.BytesIO(chime_wav())) as sound:
        assert (sound.getnchannels(), sound.getsampwidth()) == (1, 2)
        assert 0.2 < sound.getnframes() / sound.getframerate() < 1.0
    html = chime_html()
    assert html.startswith('<audio autoplay src="data:audio/wav;base64,')
    assert "http" not in html


def test_every_page_has_roles_and_a_place():
    keys = [key for pages in SECTIONS.values() for key, *_ in pages]
    assert sorted(keys) == sorted(PAGE_ROLES)
    assert visible_keys("operator") == [
        "queue",
        "disputes",
        "orders",
        "balances",
        "card_monitoring",
        "callbacks",
        "notifications",
        "dead_letters",
        "health",
        "account",
    ]
    assert visible_keys("analyst") == [
        "orders",
        "balances",
        "card_monitoring",
        "dashboards",
        "account",
    ]
    assert visible_keys("partner") == [
        "portal_orders",
        "portal_balance",
        "portal_callbacks",
        "portal_keys",
        "portal_secrets",
        "portal_settings",
        "account",
    ]
    portal = {key for key in PAGE_ROLES if key.startswith("portal_")}
    for staff in ("admin", "operator", "analyst"):
        assert not portal & set(visible_keys(staff)), staff
    assert visible_keys(None) == []
    assert not may_open("operator", "partners")
    assert not may_open("root", "queue")


def api(handler: object) -> KeeperApi:
    return KeeperApi("http://api", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_login_and_decide_send_what_the_api_expects():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/auth/login":
            return httpx.Response(
                200,
                json={"token": "t0k", "username": "olga", "role": "operator", "expires_at": "x"},
            )
        return httpx.Response(200, json={"uid": "u1", "status": "approved", "decided_by": "olga"})

    client = api(handler)
    signed = client.login("olga", "pw")
    assert (signed.token, signed.role) == ("t0k", "operator")
    decision = client.decide("t0k", "u1", "approve", "ok")
    assert (decision.status, decision.decided_by) == ("approved", "olga")
    assert seen[1].url.path == "/v1/operator/orders/u1/decision"
    assert seen[1].headers["Authorization"] == "Bearer t0k"
    assert json.loads(seen[1].content) == {"verdict": "approve", "reason": "ok"}
    assert "Authorization" not in seen[0].headers


def test_refusals_carry_status_code_and_message():
    def conflict(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "illegal_transition", "message": "already approved"}}
        return httpx.Response(409, json=body)

    with pytest.raises(ApiCallError) as refused:
        api(conflict).decide("t", "u", "reject", "late")
    assert (refused.value.status, refused.value.code) == (409, "illegal_transition")

    def invalid(request: httpx.Request) -> httpx.Response:
        details = [{"field": "new_password", "problem": "too short"}]
        body = {"error": {"code": "invalid_request", "message": "schema", "details": details}}
        return httpx.Response(422, json=body)

    with pytest.raises(ApiCallError, match="new_password: too short"):
        api(invalid).change_password("t", "a", "b")

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with pytest.raises(ApiCallError) as failed:
        api(broken).logout("t")
    assert (failed.value.status, failed.value.code) == (502, "http_error")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ApiCallError) as unreachable:
        api(down).login("a", "b")
    assert (unreachable.value.status, unreachable.value.code) == (0, "api_unreachable")
