"""The API's metrics: requests by route template (never by the id in the path), refusals by
reason, sheds; and no label value anywhere that looks like a card number or an order id,
however hostile the paths requested."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from ingest_api import errors, metrics
from ingest_api.admission import Admission
from ingest_api.rate_limit import RateLimitedError
from ingest_api.signing import BadSignature, ReplayedNonce
from telemetry.exposition import MetricsSettings
from tests.fixtures.pan_scan import card_numbers

UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def app_under_test() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/v1/things/{uid}")
    async def thing(uid: str) -> dict[str, str]:
        if uid == "forged":
            raise BadSignature()
        if uid == "replayed":
            raise ReplayedNonce()
        if uid == "busy":
            raise RateLimitedError("shop", 0.5)
        return {"uid": uid}

    metrics.install(app)
    return app


async def get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        return [await api.get(path) for path in paths]


async def test_requests_are_counted_by_route_template_and_status():
    app = app_under_test()
    ok = {"method": "GET", "route": "/v1/things/{uid}", "status": "200"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before = (
        sample("keeper_http_requests_total", **ok),
        sample("keeper_http_requests_total", **unmatched),
    )
    answers = await get(app, f"/v1/things/{uuid.uuid4()}", "/v1/things/x", f"/no/{uuid.uuid4()}")
    assert [a.status_code for a in answers] == [200, 200, 404]
    assert sample("keeper_http_requests_total", **ok) == before[0] + 2
    assert sample("keeper_http_requests_total", **unmatched) == before[1] + 1
    assert sample("keeper_http_request_duration_seconds_count", **ok) >= 2


async def test_signature_failures_by_reason_and_rate_limits_by_partner():
    app = app_under_test()
    forged = sample("keeper_api_signature_failures_total", reason="bad_signature")
    replayed = sample("keeper_api_signature_failures_total", reason="replayed_nonce")
    limited = sample("keeper_api_rate_limited_total", partner="shop")
    answers = await get(app, "/v1/things/forged", "/v1/things/replayed", "/v1/things/busy")
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[0].json()["error"]["code"] == "bad_signature"  # the answer is unchanged
    assert sample("keeper_api_signature_failures_total", reason="bad_signature") == forged + 1
    assert sample("keeper_api_signature_failures_total", reason="replayed_nonce") == replayed + 1
    assert sample("keeper_api_rate_limited_total", partner="shop") == limited + 1


async def test_a_shed_request_is_counted():
    async def slow(scope, receive, send):  # never reached: capacity is zero in flight
        raise AssertionError

    admission = Admission(slow, max_in_flight=1)
    admission.in_flight = 1
    before = sample("keeper_api_shed_total")
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        assert (await api.get("/v1/orders")).status_code == 503
    assert sample("keeper_api_shed_total") == before + 1


async def test_metrics_are_for_loopback_only_by_default():
    app = app_under_test()
    outsider = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=outsider, base_url="http://api") as api:
        refused = await api.get("/metrics")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    assert MetricsSettings(allow="10.0.0.0/8").allowed("10.1.2.3")
    assert not MetricsSettings(allow="10.0.0.0/8").allowed("127.0.0.1")
    assert not MetricsSettings().allowed("not an address")


async def test_metrics_are_served_and_no_label_looks_like_a_card_or_an_order_id():
    app = app_under_test()
    hostile = [
        "/v1/things/4111111111111111",
        "/v1/things/5555%205555%205555%204444",
        f"/v1/things/{uuid.uuid4()}",
        f"/pay/{uuid.uuid4()}",
        "/4000-0000-0000-0002",
    ]
    *_, scraped = await get(app, *hostile, "/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    for family in REGISTRY.collect():
        for s in family.samples:
            for value in s.labels.values():
                assert not card_numbers(value), (s.name, s.labels)
                assert not UUID_RE.search(value), (s.name, s.labels)
