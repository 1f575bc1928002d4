"""What the schema fuzzer (test_fuzz_api.py) found, pinned one case at a time."""

from __future__ import annotations

import time

import pytest

from ingest_api.signing import signed_headers
from tests.fixtures.system import PARTNER, System

pytestmark = pytest.mark.integration

NOT_UTF8 = b"\x80"


async def test_a_body_that_is_not_utf8_is_malformed_json(system: System):
    """FastAPI answers its own 400 for a body it cannot decode; it used to go out with the
    code ``http_error`` and FastAPI's wording instead of ``malformed_json``."""
    key_id, secret = system.credentials[PARTNER]
    headers = {
        **signed_headers(key_id, secret, "POST", "/v1/orders", "", NOT_UTF8),
        "Content-Type": "application/json",
    }
    uid = "00000000-0000-8000-8000-000000000000"
    answers = [
        await system.api.post("/v1/orders", content=NOT_UTF8, headers=headers),
        await system.api.post(f"/v1/pay/{uid}/confirm", content=NOT_UTF8, headers=headers),
        await system.api.post("/v1/auth/login", content=NOT_UTF8, headers=headers),
    ]

    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "malformed_json"


async def test_a_filter_moment_beyond_postgres_offsets(system: System):
    """``+16:00`` is valid ISO 8601 but beyond PostgreSQL's ±15:59: the list was a 500."""
    answer = await system.partner.get(
        "/v1/orders", params={"created_from": "2000-01-01T00:00:00+16:00"}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == []


LATE = "9999-12-31T23:00:00-05:00"  # after the last moment UTC holds in Python
EARLY = "0001-01-01T00:00:00+05:00"  # before the first


async def test_filter_moments_keep_their_meaning(system: System):
    """Normalised to UTC (or to its ends), the filters still mean what they say: an order
    made now is after an hour ago in any zone, and within the widest range there is."""
    created = await system.partner.post(
        "/v1/orders",
        json={
            "direction": "deposit",
            "amount_minor": 10_000,
            "currency": "RUB",
            "partner_order_id": f"fuzz-reg-{time.monotonic_ns()}",
        },
    )
    assert created.status_code in (201, 202), created.text
    uid = created.json()["uid"]
    await system.row(uid, "new")

    async def listed(**filters: str) -> list[str]:
        answer = await system.partner.get("/v1/orders", params=filters)
        assert answer.status_code == 200, (filters, answer.text)
        return [item["uid"] for item in answer.json()["items"]]

    hour_ago = time.time() - 3600
    in_utc = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(hour_ago))
    # The same instant, written 16 hours ahead of UTC.
    ahead = time.strftime("%Y-%m-%dT%H:%M:%S+16:00", time.gmtime(hour_ago + 16 * 3600))
    assert uid in await listed(created_from=in_utc)
    assert uid in await listed(created_from=ahead)
    assert uid not in await listed(created_to=ahead)
    assert uid in await listed(created_from=EARLY, created_to=LATE)
    assert uid not in await listed(created_from=LATE)
    assert uid not in await listed(created_to=EARLY)


async def test_every_status_the_api_answers_is_documented(system: System):
    """Malformed bodies (400), oversized ones (413), an agent that does not answer in time
    (504) and a database that does not answer (503) were undocumented outside the partner
    endpoints."""
    paths = (await system.api.get("/openapi.json")).json()["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    for path in (
        "/v1/auth/login",
        "/v1/auth/password",
        "/v1/pay/{uid}/confirm",
        "/v1/operator/orders/{uid}/decision",
    ):
        assert {"400", "413", "503"} <= statuses(path, "post"), path
    for path in (
        "/v1/orders/{uid}/cancel",
        "/v1/pay/{uid}/confirm",
        "/v1/operator/orders/{uid}/decision",
    ):
        assert "504" in statuses(path, "post"), path
    assert "503" in statuses("/v1/pay/{uid}", "get")
    assert "503" in statuses("/v1/operator/queue", "get")
