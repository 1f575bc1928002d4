"""Overload: the per-partner token bucket, the admission limit and the request id."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from ingest_api.admission import Admission, request_id
from ingest_api.app import create_app
from ingest_api.rate_limit import PartnerLimiter, Rate, RateLimitedError, TokenBucket
from ingest_api.settings import ApiSettings


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


# --- token bucket -----------------------------------------------------------------------


def test_a_full_bucket_gives_its_burst_then_refuses_with_the_wait():
    bucket = TokenBucket.full(Rate(per_s=10, burst=3), now_s=0.0)

    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)  # one token every 1/10 s


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst():
    bucket = TokenBucket.full(Rate(per_s=10, burst=2), now_s=0.0)
    bucket.take(0.0), bucket.take(0.0)

    assert bucket.take(0.05) == pytest.approx(0.05)  # half a token so far
    assert bucket.take(0.1) == 0.0
    assert bucket.take(100.0) == 0.0
    assert bucket.tokens == pytest.approx(1.0)  # capped at 2


def test_a_refused_request_takes_nothing():
    bucket = TokenBucket.full(Rate(per_s=1, burst=1), now_s=0.0)
    bucket.take(0.0)
    for _ in range(100):
        bucket.take(0.5)  # refused: does not push the next token back

    assert bucket.take(1.0) == 0.0


def test_rates_are_checked():
    with pytest.raises(ValueError, match="burst"):
        Rate(per_s=-1, burst=1)
    with pytest.raises(ValueError, match="burst"):
        Rate(per_s=1, burst=0)


def test_partners_have_their_own_buckets():
    clock = FakeClock()
    limiter = PartnerLimiter(Rate(per_s=1, burst=2), clock=clock)
    limiter.check("shop")
    limiter.check("shop")

    with pytest.raises(RateLimitedError) as caught:
        limiter.check("shop")
    limiter.check("rival")  # untouched by shop's flood
    limiter.check("rival")

    assert caught.value.partner_id == "shop"
    assert caught.value.retry_after_s == pytest.approx(1.0)
    assert caught.value.retry_after_header == "1"
    clock.now_s += 1.0
    limiter.check("shop")


def test_overrides_and_unlimited():
    clock = FakeClock()
    limiter = PartnerLimiter(
        Rate(per_s=0, burst=1), {"slow": Rate(per_s=0.25, burst=1)}, clock=clock
    )
    for _ in range(10_000):
        limiter.check("anyone")  # the default here is unlimited
    limiter.check("slow")
    with pytest.raises(RateLimitedError) as caught:
        limiter.check("slow")

    assert caught.value.retry_after_header == "4"  # whole seconds, rounded up


# --- admission --------------------------------------------------------------------------


class Gate:
    """An app whose order and stream requests wait until released; it records the request
    id each request saw."""

    def __init__(self, expected: int = 1) -> None:
        self.release = asyncio.Event()
        self.expected = expected
        self.all_entered = asyncio.Event()
        self.entered = 0
        self.seen_ids: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        if self.entered >= self.expected:
            self.all_entered.set()
        self.seen_ids.append(request_id.get())
        if scope["path"] in ("/v1/orders", "/v1/pay/abc/events"):
            await self.release.wait()
        status = 500 if scope["path"] == "/broken" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def client(app: Admission) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_requests_above_the_limit_are_shed_at_once_with_retry_after():
    gate = Gate(expected=2)
    admission = Admission(gate, max_in_flight=2, retry_after_s=3)
    async with client(admission) as api:
        held = [asyncio.create_task(api.get("/v1/orders")) for _ in range(2)]
        await gate.all_entered.wait()

        started = time.monotonic()
        shed = await api.get("/v1/orders")
        shed_ms = (time.monotonic() - started) * 1000
        probe = await api.get("/healthz")  # never shed
        gate.release.set()
        answers = await asyncio.gather(*held)
        after = await api.get("/fast")

    assert shed.status_code == 503
    assert shed.json()["error"]["code"] == "overloaded"
    assert shed.headers["Retry-After"] == "3"
    assert shed.headers["X-Request-Id"]
    assert shed_ms < 50
    assert probe.status_code == 200
    assert [a.status_code for a in answers] == [200, 200]
    assert after.status_code == 200
    assert admission.in_flight == 0
    assert admission.shed == 1


async def test_event_streams_of_the_payment_form_are_not_counted():
    gate = Gate()
    admission = Admission(gate, max_in_flight=1)
    async with client(admission) as api:
        stream = asyncio.create_task(api.get("/v1/pay/abc/events"))
        await gate.all_entered.wait()
        gate.release.set()
        fast = await api.get("/fast")
        await stream

    assert fast.status_code == 200


async def test_the_request_id_is_kept_returned_and_logged_on_errors(
    caplog: pytest.LogCaptureFixture,
):
    gate = Gate()
    gate.release.set()
    async with client(Admission(gate, max_in_flight=4)) as api:
        mine = await api.get("/fast", headers={"X-Request-Id": "req-123"})
        junk = await api.get("/fast", headers={"X-Request-Id": "bad id\twith spaces"})
        with caplog.at_level(logging.WARNING, logger="ingest_api.admission"):
            broken = await api.get("/broken", headers={"X-Request-Id": "req-500"})

    assert mine.headers["X-Request-Id"] == "req-123"
    assert gate.seen_ids[0] == "req-123"
    assert junk.headers["X-Request-Id"] != "bad id\twith spaces"
    assert len(junk.headers["X-Request-Id"]) == 32
    assert broken.status_code == 500
    assert any("req-500" in r.getMessage() and "500" in r.getMessage() for r in caplog.records)


def test_admission_limits_are_checked():
    with pytest.raises(ValueError, match="max_in_flight"):
        Admission(Gate(), max_in_flight=0)


def test_the_openapi_documents_the_overload_answers():
    paths = create_app(ApiSettings(api_docs_public=True)).openapi()["paths"]
    create = paths["/v1/orders"]["post"]["responses"]
    balance = paths["/v1/balance"]["get"]["responses"]
    payer = paths["/v1/pay/{uid}"]["get"]["responses"]

    assert "rate_limited" in create["429"]["description"]
    assert "rate_limited" in balance["429"]["description"]
    assert "overloaded" in create["503"]["description"]
    assert "overloaded" in payer["503"]["description"]
