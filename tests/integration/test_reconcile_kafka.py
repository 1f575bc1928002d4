"""Reconciliation on the real pipeline: clean after real traffic, and it finds what a broken
pipeline would leave behind in Kafka (a second order for one request, an event the agents
never applied, a row PostgreSQL got wrong)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from schemas.topics import ORDER_EVENTS
from stream_agents.reconcile import Mismatch, main, periodically, settled
from stream_agents.reconcile.kafka_state import read_topic
from tests.fixtures.system import CURRENCY, System

pytestmark = pytest.mark.integration


async def deposit(system: System, partner_order_id: str) -> dict:
    answer = await system.partner.post(
        "/v1/orders",
        json={
            "direction": "deposit",
            "amount_minor": 25_000,
            "currency": CURRENCY,
            "partner_order_id": partner_order_id,
        },
    )
    assert answer.status_code == 201, answer.text
    await system.row(answer.json()["uid"], "new")
    return answer.json()


async def test_forged_second_order_for_one_request_is_found(system: System):
    order = await deposit(system, "recon-1")
    assert await system.mismatches() == []

    topic = system.topic_prefix + ORDER_EVENTS.name
    logged = [json.loads(r.value) async for r in read_topic(system.kafka_bootstrap, topic)]
    forged = next(envelope for envelope in logged if envelope["type"] == "order.created")
    forged_uid = str(uuid.uuid4())
    forged["message_id"] = str(uuid.uuid4())
    forged["key"] = forged_uid
    forged["payload"]["order"]["uid"] = forged_uid
    producer = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, json.dumps(forged).encode(), key=forged_uid.encode())
    finally:
        await producer.stop()

    found = await system.mismatches(settle_s=0)

    assert any(
        m.startswith("[7] partner shop request recon-1") and forged_uid in m for m in found
    ), found
    assert f"[6] order {forged_uid}: log ends at v2, table at vNone" in found
    assert order["uid"] not in " ".join(m for m in found if m.startswith("[6]"))


async def test_database_drift_from_the_agents_is_found_and_fails_the_command(system: System):
    order = await deposit(system, "recon-2")
    with system.engine.begin() as conn:
        conn.execute(
            text("UPDATE orders SET status = 'processing' WHERE uid = :uid"), {"uid": order["uid"]}
        )

    found = await system.mismatches(settle_s=0)
    code = await asyncio.to_thread(
        main,
        [
            "--database-url",
            system.database_url,
            "--kafka",
            system.kafka_bootstrap,
            "--app-id",
            system.app_id,
            "--topic-prefix",
            system.topic_prefix,
            "--settle-s",
            "0",
        ],
    )

    assert f"[2] order {order['uid']}: agent v2 new, db v2 processing" in found
    assert code == 1


async def test_periodic_job_reports_each_pass(system: System, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="stream_agents.reconcile")
    order = await deposit(system, "recon-3")
    clean, broken = asyncio.Event(), asyncio.Event()

    async def one_pass() -> list[Mismatch]:
        found = await settled(
            system.engine,
            bootstrap=system.kafka_bootstrap,
            app_id=system.app_id,
            topic_prefix=system.topic_prefix,
            settle_s=0,
        )
        (broken if found else clean).set()
        return found

    job = asyncio.create_task(periodically(one_pass, 0.3))
    try:
        await asyncio.wait_for(clean.wait(), 30)
        with system.engine.begin() as conn:
            conn.execute(
                text("UPDATE orders SET status = 'expired' WHERE uid = :uid"), {"uid": order["uid"]}
            )
        await asyncio.wait_for(broken.wait(), 30)
        await asyncio.sleep(0.2)  # the pass logs after it returns
    finally:
        job.cancel()
    assert "reconcile: 0 mismatch(es)" in caplog.text
    assert f"[2] order {order['uid']}: agent v2 new, db v2 expired" in caplog.text
