"""The console's API client reads a throttled sign-in's wait, and passes the browser's
address on; the sign-in page words it for a person."""

from __future__ import annotations

import httpx
import pytest

from ops_console.api_client import ApiCallError, KeeperApi
from ops_console.auth import refusal_text


def test_a_throttled_sign_in_carries_its_wait():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"error": {"code": "too_many_attempts", "message": "wait", "details": []}}
        return httpx.Response(429, json=body, headers={"Retry-After": "7"})

    api = KeeperApi("http://api", transport=httpx.MockTransport(answer))
    with pytest.raises(ApiCallError) as refused:
        api.login("olga", "whatever it is", client_address="192.0.2.8")
    assert (refused.value.status, refused.value.code) == (429, "too_many_attempts")
    assert refused.value.retry_after_s == 7
    assert seen[0].headers["X-Forwarded-For"] == "192.0.2.8"
    assert refusal_text(refused.value) == "Too many sign-in attempts. Try again in 7 s."


def test_refusal_texts():
    assert refusal_text(ApiCallError(401, "invalid_credentials", "x")) == (
        "Wrong username or password."
    )
    assert refusal_text(ApiCallError(429, "too_many_attempts", "x")) == (
        "Too many sign-in attempts. Try again in a moment."
    )
    assert refusal_text(ApiCallError(0, "api_unreachable", "the API did not answer")) == (
        "the API did not answer"
    )
