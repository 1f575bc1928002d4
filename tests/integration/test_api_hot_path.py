"""The API's hot path from memory (ADR 0006) and its overload answers, on the real pipeline.

- a create makes no database round trip but the group-committed nonce INSERT;
- a revoked key stops working within ``key_max_stale_s`` (1 s);
- a replayed nonce is refused across two API processes sharing the database;
- a partner flooding past its rate gets ``429`` with ``Retry-After`` and does not slow
  another partner, and its refused requests cost no nonce write.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker

from db.repositories import api_keys
from ingest_api.app import create_app, memory_services
from ingest_api.bus import CommandBus
from ingest_api.deps import Services
from ingest_api.key_ring import KeyRing
from ingest_api.payform.feed import OrderFeed
from ingest_api.rate_limit import PartnerLimiter, Rate
from ingest_api.signing import signed_headers
from tests.fixtures.system import CURRENCY, PARTNER, STARTUP_S, System

pytestmark = pytest.mark.integration


def create_body() -> bytes:
    return json.dumps(
        {
            "partner_order_id": f"hot-{time.monotonic_ns()}",
            "direction": "deposit",
            "amount_minor": 10_000 + time.monotonic_ns() % 5_000,
            "currency": CURRENCY,
        }
    ).encode()


def signed(s: System, body: bytes, partner: str = PARTNER) -> dict[str, str]:
    key_id, secret = s.credentials[partner]
    headers = signed_headers(key_id, secret, "POST", "/v1/orders", "", body)
    return {**headers, "Content-Type": "application/json"}


@contextmanager
def statements(s: System) -> Iterator[list[str]]:
    """Every SQL statement the API's engine sends while the block runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(s.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(s.engine, "before_cursor_execute", record)


def background(statement: str) -> bool:
    """The key ring's poll (no WHERE: every key) and its batched last-use UPDATE."""
    return (
        "FROM partner_api_keys" in statement and "WHERE" not in statement
    ) or statement.startswith("UPDATE partner_api_keys")


async def test_create_makes_no_round_trip_but_the_nonce_batch_and_one_lookup(system: System):
    await system.partner.get("/v1/balance")  # warm: the first call of a partner
    assert system.services is not None
    assert isinstance(system.services.keys, KeyRing)
    lookups = system.services.keys.lookups

    with statements(system) as sent:
        answers = await asyncio.gather(
            *(
                system.api.post("/v1/orders", content=b, headers=signed(system, b))
                for b in [create_body() for _ in range(8)]
            )
        )

    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert all(a.json()["card"]["number"] for a in answers)  # the card from memory
    hot = [s for s in sent if not background(s)]
    nonces = [s for s in hot if s.startswith("INSERT INTO api_nonces")]
    # Since retention (ADR 0008) the desk forgets finished orders, so a uid the API's view
    # does not hold is looked up once by its key before it is sent: a repeat of a forgotten
    # order is answered from PostgreSQL, never reopened. Nothing else touches the database.
    lookups_by_uid = [s for s in hot if "FROM order_events WHERE order_events.order_uid" in s]
    assert nonces, hot
    assert len(nonces) <= 8
    assert len(lookups_by_uid) == 8, hot
    assert len(hot) == len(nonces) + len(lookups_by_uid), hot
    assert system.services.keys.lookups == lookups


async def test_confirm_and_decide_make_no_round_trip_but_the_audit_record(system: System):
    uids = []
    for body in [create_body() for _ in range(3)]:
        created = await system.api.post("/v1/orders", content=body, headers=signed(system, body))
        assert created.status_code == 201, created.text
        uids.append(created.json()["uid"])
    await system.login("olga")  # the sign-in itself writes, of course
    await system.api.get("/v1/operator/queue", headers=await system.login("olga"))  # cached

    with statements(system) as sent:
        for uid in uids:
            confirmed = await system.api.post(f"/v1/pay/{uid}/confirm", json={})
            assert confirmed.status_code == 200, confirmed.text
    assert [s for s in sent if not background(s)] == []

    started = time.monotonic()
    with statements(system) as sent:
        for uid in uids:
            decided = await system.decide("olga", uid, "approve")
            assert decided.status_code == 200, decided.text
    checks_allowed = 1 + math.ceil(time.monotonic() - started)  # one per second of cache
    hot = [s for s in sent if not background(s)]
    audit = [s for s in hot if s.startswith("INSERT INTO audit_log")]
    sessions = [s for s in hot if "console_sessions" in s]
    assert len(audit) == 3  # durable, one per decision, after the outcome
    assert len(sessions) <= 2 * checks_allowed  # a check: its SELECT and its UPDATE
    assert len(hot) == len(audit) + len(sessions), hot


async def test_a_revoked_key_stops_working_within_one_second(system: System):
    key_id = system.credentials[PARTNER][0]
    assert (await system.partner.get("/v1/balance")).status_code == 200

    with system.sessions.begin() as session:
        api_keys.revoke_api_key(session, key_id, actor="test")
    committed = time.monotonic()
    refused_after_s = None
    while time.monotonic() - committed < 2.0:
        answer = await system.partner.get("/v1/balance")
        if answer.status_code == 401:
            assert answer.json()["error"]["code"] == "revoked_api_key"
            refused_after_s = time.monotonic() - committed
            break
        assert answer.status_code == 200, answer.text
        await asyncio.sleep(0.02)

    assert refused_after_s is not None, refused_after_s
    assert refused_after_s <= 1.0, refused_after_s
    # The bound holds whatever the poller does: past it, every request is refused.
    await asyncio.sleep(max(0.0, committed + 1.0 - time.monotonic()))
    late = await system.partner.get("/v1/balance")
    assert late.status_code == 401


@pytest.fixture
async def second_api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """Another API process: its own engine, key ring, nonce store, bus and feed; the same
    database and broker."""
    assert system.services is not None
    settings = system.services.settings
    engine = create_engine(system.database_url, pool_pre_ping=True)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    services = Services(
        settings=settings,
        bus=CommandBus(system.kafka_bootstrap, topic_prefix=system.topic_prefix),
        sessions=sessions,
        box=system.services.box,
        feed=OrderFeed(system.kafka_bootstrap, topic_prefix=system.topic_prefix),
        **memory_services(settings, sessions, system.services.box),
    )
    await asyncio.wait_for(services.start_memory(), STARTUP_S)
    await asyncio.wait_for(services.bus.start(), STARTUP_S)
    assert services.feed is not None
    await asyncio.wait_for(services.feed.start(), STARTUP_S)
    app = create_app(services=services)
    app.state.services = services
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client
    finally:
        await services.feed.stop()
        await services.bus.stop()
        await services.stop_memory()
        engine.dispose()


async def test_a_replayed_nonce_is_refused_by_the_other_api_process(
    system: System, second_api: httpx.AsyncClient
):
    for first, second in ((system.api, second_api), (second_api, system.api)):
        body = create_body()
        headers = signed(system, body)

        accepted = await first.post("/v1/orders", content=body, headers=headers)
        replay = await second.post("/v1/orders", content=body, headers=headers)

        assert accepted.status_code == 201, accepted.text
        assert replay.status_code == 401, replay.text
        assert replay.json()["error"]["code"] == "replayed_nonce"


async def test_concurrent_replays_on_two_processes_let_exactly_one_through(
    system: System, second_api: httpx.AsyncClient
):
    key_id, secret = system.credentials[PARTNER]
    headers = signed_headers(key_id, secret, "GET", "/v1/balance", "", b"")
    answers = await asyncio.gather(
        *((system.api, second_api)[i % 2].get("/v1/balance", headers=headers) for i in range(16))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [401] * 15
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 401} == {
        "replayed_nonce"
    }


async def test_a_partner_over_its_rate_is_refused_and_does_not_slow_another(system: System):
    assert system.services is not None
    frozen = time.monotonic()  # no token comes back during the test: counts, not timings
    system.services.limiter = PartnerLimiter(
        Rate(per_s=0, burst=1), {PARTNER: Rate(per_s=5, burst=5)}, clock=lambda: frozen
    )
    [(nonces_before,)] = system.sql("SELECT COUNT(*) FROM api_nonces")

    async def timed(client: httpx.AsyncClient) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        answer = await client.get("/v1/balance")
        return answer, (time.monotonic() - started) * 1000

    flood = [asyncio.create_task(timed(system.partner)) for _ in range(60)]
    others = await asyncio.gather(*(timed(system.rival) for _ in range(10)))
    flooded = await asyncio.gather(*flood)

    assert [a.status_code for a, _ in others] == [200] * 10
    refused = [(a, ms) for a, ms in flooded if a.status_code == 429]
    admitted = [a for a, _ in flooded if a.status_code == 200]
    assert len(admitted) + len(refused) == 60
    assert len(admitted) == 5  # the burst
    assert len(refused) == 55
    for answer, _ in refused:
        assert answer.json()["error"]["code"] == "rate_limited"
        assert int(answer.headers["Retry-After"]) >= 1
    # How fast a refusal is answered is measured by the benchmark (docs/benchmarks.md), not
    # here: this machine's load would make it a coin toss.
    alone = [await timed(system.partner) for _ in range(10)]
    assert {a.status_code for a, _ in alone} == {429}
    # A refused request costs no nonce write: only the admitted ones were remembered.
    [(nonces_after,)] = system.sql("SELECT COUNT(*) FROM api_nonces")
    assert nonces_after - nonces_before == len(admitted) + len(others)
