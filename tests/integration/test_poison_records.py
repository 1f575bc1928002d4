"""Poison records against a real broker and PostgreSQL: quarantined, never fatal.

Records that can never be written as they are -- a NUL in a string, bytes that are no
envelope, an order of a partner that does not exist (yet) -- are published straight to the
projector's topics, bypassing the API, in the middle of the valid scripted history of
``test_projector``. The projector must dead-letter exactly those records (with their
coordinates, stored in ``dead_letters`` with the order they belong to), project everything
else, and commit its offsets past them. After a fix, a retry brings the record into
PostgreSQL exactly once.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from db.models import Base
from db.repositories import dead_letters as repo
from domain.ledger import PostingKind
from schemas import orders
from schemas.registry import encode
from stream_agents import dead_letters as cli
from stream_agents.projector import ProjectorSettings
from stream_agents.reconcile import Mismatch, check_database
from tests.fixtures.kafka import eventually, first_records
from tests.integration.test_projector import (
    GARBAGE,
    LEDGER_SCRIPT,
    ORDER_SCRIPT,
    S,
    assert_projected,
    committed_offsets,
    engine,
    event_id,
    posting,
    produce_history,
    projected,
    projecting,
    rows,
    send,
    settings,
    snap,
)

pytestmark = pytest.mark.integration
#: test_projector's fixtures, used here by name (pytest looks them up in this module).
FIXTURES = (engine, settings)

LATE = "late"  # a partner created only after its order's events were refused
G, N = uuid.UUID(int=0x6), uuid.UUID(int=0x7)  # the late partner's order, the NUL order
LATE_AVAILABLE, LATE_HELD = f"partner:{LATE}:available", f"partner:{LATE}:held"
LATE_HOLD = posting(
    G, PostingKind.HOLD, {LATE_AVAILABLE: -10_200, LATE_HELD: 10_200}, (89_800, 10_200, 1)
).model_copy(update={"partner_id": LATE})


def late_events() -> list[tuple[uuid.UUID, int, Any]]:
    """Order G of partner ``late`` (a withdrawal): opened, then created with its hold."""
    opened = snap(G, 1, S.PENDING).model_copy(update={"partner_id": LATE})
    created = snap(G, 2, S.NEW).model_copy(update={"partner_id": LATE})
    return [(G, 1, orders.OrderOpened(order=opened)), (G, 2, orders.OrderCreated(order=created))]


def with_nul(raw: bytes) -> bytes:
    """The encoded event with a NUL (JSON ``\\u0000``) in ``partner_order_id``.

    Built on the bytes, not through the schema, so the record stays what a signed request
    made of it even if the schemas learn to refuse NULs.
    """
    document = json.loads(raw)
    document["payload"]["order"]["partner_order_id"] = "inv-\x00-7"
    return json.dumps(document).encode()


Coordinates = tuple[str, int, int]


async def produce_poison(
    producer: AIOKafkaProducer, settings: ProjectorSettings
) -> dict[str, Coordinates]:
    """The five poison records; where each landed (topic, partition, offset)."""
    nul = with_nul(encode(orders.OrderOpened(order=snap(N, 1, S.PENDING))))
    order_topic = settings.order_events_topic
    records = [
        ("nul", order_topic, str(N), nul),
        ("garbage", order_topic, str(G), GARBAGE),
        *[
            (
                f"late-v{version}",
                order_topic,
                str(uid),
                encode(event, message_id=event_id(uid, version)),
            )
            for uid, version, event in late_events()
        ],
        ("late-hold", settings.ledger_events_topic, LATE, encode(LATE_HOLD, message_id=G)),
    ]
    landed = {}
    for name, topic, key, value in records:
        meta = await producer.send_and_wait(topic, value, key=key.encode())
        landed[name] = (topic, meta.partition, meta.offset)
    return landed


def letters(engine: Engine) -> list[Any]:
    """The stored dead letters (``key`` and ``value`` as bytes), oldest first."""
    found = rows(
        engine,
        "SELECT id, consumer, source_topic, source_partition, source_offset, key, value,"
        " order_uid, reason, status, retried_by, retry_count FROM dead_letters ORDER BY id",
    )
    return [
        SimpleNamespace(**(row._asdict() | {"key": _bytes(row.key), "value": _bytes(row.value)}))
        for row in found  # bytea comes as memoryview
    ]


def _bytes(raw: memoryview | None) -> bytes | None:
    return None if raw is None else bytes(raw)


def stored(count: int, engine: Engine) -> bool:
    return len(letters(engine)) >= count


def late_order(engine: Engine) -> tuple[Any, ...]:
    """What PostgreSQL holds of order G: rows, events, posting legs, balance snapshots."""
    [counts] = rows(
        engine,
        f"SELECT (SELECT count(*) FROM orders WHERE uid = '{G}'),"
        f" (SELECT count(*) FROM order_events WHERE order_uid = '{G}'),"
        f" (SELECT count(*) FROM ledger_postings WHERE order_uid = '{G}'),"
        f" (SELECT count(*) FROM balance_snapshots WHERE partner_id = '{LATE}')",
    )
    return tuple(counts)


def add_late_partner(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Base.metadata.tables["partners"]).values(
                id=LATE, name="Late", deposit_fee_bp=0, withdrawal_fee_bp=0
            )
        )


def run_cli(settings: ProjectorSettings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    common = ["--database-url", settings.database_url, "--kafka", settings.kafka_bootstrap_servers]
    status = cli.main([*common, *argv], out=out)
    return status, out.getvalue()


async def test_poison_records_are_dead_lettered_with_their_coordinates_and_the_rest_goes_on(
    settings: ProjectorSettings, engine: Engine, producer: AIOKafkaProducer
) -> None:
    """A NUL, garbage and an unknown partner, amid valid orders: five records quarantined."""
    landed = await produce_poison(producer, settings)
    await produce_history(producer, settings)
    async with projecting(settings) as task:
        await eventually(lambda: projected(engine), "the valid history to be projected", task)
        await eventually(lambda: stored(5, engine), "the dead letters to be stored", task)
        expected = {
            settings.order_events_topic: len(ORDER_SCRIPT) + 4,
            settings.ledger_events_topic: len(LEDGER_SCRIPT) + 1,
        }
        await eventually(
            lambda: _committed(settings, expected), "offsets committed past the poison", task
        )
        assert not task.done(), "the projector keeps running"
    assert_projected(engine)  # the other orders are all there, exactly once
    assert late_order(engine) == (0, 0, 0, 0)
    assert rows(engine, f"SELECT count(*) FROM orders WHERE uid = '{N}'") == [(0,)]

    stored_letters = letters(engine)
    assert len(stored_letters) == 5  # no more: nothing valid was quarantined
    at = {(r.source_topic, r.source_partition, r.source_offset): r for r in stored_letters}
    assert set(at) == set(landed.values())
    nul = at[landed["nul"]]
    assert (nul.order_uid, nul.key, nul.status) == (N, str(N).encode(), "open")
    assert nul.consumer == settings.consumer_group
    assert b"\\u0000" in nul.value  # the raw value, untouched
    assert nul.reason
    assert "\x00" not in nul.reason
    garbage = at[landed["garbage"]]
    assert (garbage.order_uid, garbage.value) == (G, GARBAGE)
    assert garbage.reason.startswith("not a Keeper envelope")
    for name in ("late-v1", "late-v2"):
        assert at[landed[name]].order_uid == G
        assert "fk_orders_partner_id_partners" in at[landed[name]].reason
        assert "Key (partner_id)=(late)" in at[landed[name]].reason
    hold = at[landed["late-hold"]]
    assert hold.order_uid == G  # from the payload: ledger-events is keyed by partner
    assert "fk_" in hold.reason

    published = await first_records(
        settings.kafka_bootstrap_servers, settings.dead_letters_topic, 5
    )
    headers = [dict(record.headers) for record in published]
    assert {
        (
            h["keeper.source.topic"].decode(),
            int(h["keeper.source.partition"]),
            int(h["keeper.source.offset"]),
        )
        for h in headers
    } == set(landed.values())
    assert all(h["keeper.consumer"] == settings.consumer_group.encode() for h in headers)
    assert all(b"\x00" not in h["keeper.error"] for h in headers)

    subjects = [m.subject for m in reconcile_findings(engine) if m.invariant == "dead-letter"]
    assert sorted(subjects) == sorted([f"order {N}"] + [f"order {G}"] * 4)


async def test_a_record_quarantined_then_fixed_and_retried_reaches_postgresql_exactly_once(
    settings: ProjectorSettings, engine: Engine, producer: AIOKafkaProducer
) -> None:
    """THE fix-and-retry path: unknown partner -> dead letters; create it; retry; once."""
    for uid, version, event in late_events():
        raw = encode(event, message_id=event_id(uid, version))
        await send(producer, settings.order_events_topic, str(uid), raw)
    await send(producer, settings.ledger_events_topic, LATE, encode(LATE_HOLD, message_id=G))
    async with projecting(settings) as task:
        await eventually(lambda: stored(3, engine), "three dead letters", task)
        assert len(reconcile_findings(engine)) == 3  # reconcile is not clean meanwhile
        assert late_order(engine) == (0, 0, 0, 0)
        assert [row.status for row in letters(engine)] == ["open"] * 3

        add_late_partner(engine)  # the fix
        status, output = await asyncio.to_thread(
            run_cli, settings, "retry", "--all-open", "--actor", "ops:alice"
        )
        assert status == 0, output
        assert [line.split()[:3] for line in output.splitlines()] == [
            ["retried", str(letter.id), "retried"] for letter in letters(engine)
        ]
        await eventually(lambda: late_order(engine) == (1, 2, 2, 1), "order G projected", task)

        # Retrying again changes nothing: no row is open any more, and a retried one is refused.
        status, output = await asyncio.to_thread(run_cli, settings, "retry", "--all-open")
        assert (status, output) == (0, "")
        first_id = letters(engine)[0].id
        status, _ = await asyncio.to_thread(run_cli, settings, "retry", str(first_id))
        assert status == 1
        # A retry whose commit was lost publishes the records once more: still no duplicate.
        for letter in letters(engine):
            await producer.send_and_wait(letter.source_topic, letter.value, key=letter.key)
        # order-events: 2 originals, 2 retried, 2 again; ledger-events: 1 + 1 + 1
        expected = {settings.order_events_topic: 6, settings.ledger_events_topic: 3}
        await eventually(lambda: _committed(settings, expected), "the re-publication", task)

    assert late_order(engine) == (1, 2, 2, 1)
    assert rows(engine, f"SELECT version, status FROM orders WHERE uid = '{G}'") == [(2, "new")]
    stored_letters = letters(engine)
    assert len(stored_letters) == 3  # nothing was dead-lettered again
    assert {(r.status, r.retried_by, r.retry_count) for r in stored_letters} == {
        ("retried", "ops:alice", 1)
    }
    audit = rows(engine, "SELECT actor, action, entity FROM audit_log ORDER BY id")
    assert audit == [("ops:alice", "dead_letter.retry", "dead_letter")] * 3
    assert [m for m in reconcile_findings(engine) if m.invariant == "dead-letter"] == []


async def test_a_retried_record_that_fails_again_is_a_new_open_dead_letter(
    settings: ProjectorSettings, engine: Engine, producer: AIOKafkaProducer
) -> None:
    [(uid, _, event), _] = late_events()
    await send(producer, settings.order_events_topic, str(uid), encode(event))
    async with projecting(settings) as task:
        await eventually(lambda: stored(1, engine), "the dead letter", task)
        [first] = letters(engine)
        status, _ = await asyncio.to_thread(run_cli, settings, "retry", str(first.id))
        assert status == 0  # retried before the fix: refused again
        await eventually(lambda: stored(2, engine), "the second dead letter", task)
    old, new = letters(engine)
    assert (old.status, new.status) == ("retried", "open")
    assert (new.source_offset, new.order_uid, new.value) == (1, G, first.value)
    with Session(engine) as session:
        assert repo.count_open(session) == 1
        assert [v.id for v in repo.open_for_order(session, G)] == [new.id]
        assert repo.count_open_by_order(session) == {G: 1}


async def test_the_dead_letters_cli_lists_and_resolves(
    settings: ProjectorSettings, engine: Engine, producer: AIOKafkaProducer
) -> None:
    await send(producer, settings.order_events_topic, str(G), GARBAGE)
    async with projecting(settings) as task:
        await eventually(lambda: stored(1, engine), "the dead letter", task)
    [letter] = letters(engine)
    status, output = await asyncio.to_thread(run_cli, settings, "list")
    assert status == 0
    assert f"{letter.id} open" in output
    assert f"order {G}" in output
    assert output.endswith("1 open dead letter(s)\n")
    status, _ = await asyncio.to_thread(run_cli, settings, "resolve", str(letter.id))
    assert status == 0
    assert [row.status for row in letters(engine)] == ["resolved"]
    status, output = await asyncio.to_thread(run_cli, settings, "list")
    assert output == "0 open dead letter(s)\n"
    status, _ = await asyncio.to_thread(run_cli, settings, "resolve", str(letter.id))
    assert status == 1


# --- helpers ----------------------------------------------------------------------------


async def _committed(settings: ProjectorSettings, expected: dict[str, int]) -> bool:
    return await committed_offsets(settings) == expected


def reconcile_findings(engine: Engine) -> list[Mismatch]:
    with engine.connect() as conn:
        return check_database(conn)
