"""The dead-letters page with ``AppTest`` against a real PostgreSQL and a real broker: the
open dead letters with their coordinates and order, the order flagged on the operator
queue, *Retry* re-publishing the stored record byte for byte to its source topic (audited,
the row marked retried), *Resolve*, and who may open the page."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from streamlit.testing.v1 import AppTest

from db.repositories import dead_letters as repo
from tests.fixtures.console import Console, sign_in
from tests.fixtures.kafka import DEADLINE_S

pytestmark = pytest.mark.integration

POISON = b'{"type": "order.created", "payload": {"partner_order_id": "a\x00b"}}'


@pytest.fixture
def source_topic(kafka_bootstrap: str, event_topics: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``order-events`` under this test's own prefix."""
    monkeypatch.setenv("KEEPER_CONSOLE_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    return f"{event_topics}order-events"


@pytest.fixture
def letters(console_light: Console, source_topic: str) -> dict[str, int]:
    """Two open dead letters: one of an order (the NUL record), one undecodable without one."""
    order = uuid.uuid4()
    made = [
        repo.NewDeadLetter(
            "keeper-projector", source_topic, 0, 7, str(order).encode(), POISON,
            "IntegrityError sqlstate=22P05", order,
        ),
        repo.NewDeadLetter(
            "keeper-projector", source_topic, 0, 9, None, b"\xff\xfe", "undecodable", None
        ),
    ]  # fmt: skip
    with console_light.sessions.begin() as s:
        assert repo.record(s, made) == 2
        ids = repo.open_ids(s)
    return {"order": ids[0], "garbage": ids[1], "uid": order.int}


async def records_of(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` (all partitions) once one has arrived."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + DEADLINE_S
        received: list[Any] = []
        while not received and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                received.extend(batch)
        return received
    finally:
        await consumer.stop()


def open_page(console: Console, username: str) -> AppTest:
    at = sign_in(console.app(), username)
    at.switch_page("views/dead_letters.py").run()
    assert not at.exception, at.exception
    return at


def test_operator_sees_open_dead_letters_and_flagged_order(
    console_light: Console, letters: dict[str, int]
) -> None:
    at = open_page(console_light, "olga")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Open dead letters": "2", "Orders flagged": "1"}
    shown = at.dataframe[0].value
    assert list(shown["id"]) == [letters["order"], letters["garbage"]]
    assert str(uuid.UUID(int=letters["uid"])) in set(shown["order"])
    assert "22P05" in " ".join(shown["reason"])
    # the record's bytes never reach the page, only their size
    assert list(shown["bytes"]) == [len(POISON), 2]

    at.switch_page("views/queue.py").run()
    assert any("1 order(s) have quarantined records" in w.value for w in at.warning)


def test_retry_republishes_the_record_and_is_audited(
    console_light: Console, letters: dict[str, int], source_topic: str, kafka_bootstrap: str
) -> None:
    at = open_page(console_light, "olga")
    at.selectbox(key="dl_pick").select(letters["order"]).run()
    at.button(key="dl_retry").click()
    at.run()
    assert any("re-published" in s.value for s in at.success), [e.value for e in at.error]

    [record] = asyncio.run(records_of(kafka_bootstrap, source_topic))
    assert (record.key, record.value) == (str(uuid.UUID(int=letters["uid"])).encode(), POISON)
    [(status, by, count)] = console_light.sql(
        "SELECT status, retried_by, retry_count FROM dead_letters WHERE id = :id",
        id=letters["order"],
    )
    assert (status, by, count) == ("retried", "olga", 1)
    [(actor, entity_id)] = console_light.sql(
        "SELECT actor, entity_id FROM audit_log WHERE action = 'dead_letter.retry'"
    )
    assert (actor, entity_id) == ("olga", str(letters["order"]))
    assert {m.label: m.value for m in at.metric}["Open dead letters"] == "1"


def test_resolve_closes_one_and_a_second_action_is_refused(
    console_light: Console, letters: dict[str, int]
) -> None:
    at = open_page(console_light, "adam")
    at.selectbox(key="dl_pick").select(letters["garbage"]).run()
    at.button(key="dl_resolve").click()
    at.run()
    assert any("resolved" in s.value for s in at.success)
    with console_light.sessions() as s:
        assert repo.get(s, letters["garbage"]).status == "resolved"
        assert repo.count_open(s) == 1
    # the same id again, from a stale page: the repository refuses, nothing changes
    from ops_console import quarantine

    outcome = quarantine.resolve(console_light.sessions, letters["garbage"], "adam")
    assert outcome.kind == "error"
    assert "not open" in outcome.message


def test_analyst_may_not_open_the_page(console_light: Console, letters: dict[str, int]) -> None:
    at = sign_in(console_light.app(), "ann")
    at.switch_page("views/dead_letters.py").run()
    assert not at.dataframe
    assert at.error or at.warning
