"""``make reconcile`` and open dead letters: a quarantined record is not in PostgreSQL, so a
run must not call that clean until the dead letter is retried or resolved."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from db.repositories import dead_letters
from stream_agents.reconcile import check_database, main

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = create_engine(migrated_database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def findings(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [(m.invariant, m.subject, m.detail) for m in check_database(conn)]


def test_an_open_dead_letter_is_reported_until_resolved(
    engine: Engine, migrated_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    order = uuid.uuid4()
    letter = dead_letters.NewDeadLetter(
        "keeper-projector", "order-events", 3, 41, str(order).encode(), b"\x00", "22P05", order
    )
    with Session(engine) as session, session.begin():
        assert dead_letters.record(session, [letter, letter]) == 1  # stored once
        [ident] = dead_letters.open_ids(session)
    assert findings(engine) == [
        (
            "dead-letter",
            f"order {order}",
            f"dead letter {ident} open: keeper-projector could not write order-events[3]@41: 22P05",
        )
    ]
    args = ["--database-url", migrated_database_url, "--no-kafka", "--settle-s", "0"]
    assert main(args) == 1
    assert "[dead-letter] order" in capsys.readouterr().out

    with Session(engine) as session, session.begin():
        dead_letters.resolve(session, ident, "ops:carol")
    assert findings(engine) == []
    assert main(args) == 0
