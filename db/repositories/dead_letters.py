"""Dead letters: the durable record of quarantined records, and their retry after a fix.

The projector stores every record of the ``dead-letters`` topic with :func:`record`
(``ON CONFLICT DO NOTHING`` on the source coordinates and consumer: a redelivered dead
letter changes nothing). The console and ``python -m stream_agents.dead_letters`` read them
(:func:`list_open`, :func:`count_open`, :func:`get`, :func:`open_for_order`,
:func:`count_open_by_order`) and act on them:

* :func:`retry` re-publishes the stored raw value with its key to its source topic (same key,
  same partition; downstream writes are idempotent, so a record that had partly gone through
  changes nothing twice) and marks the row ``retried``. Should the record fail again, its
  consumer dead-letters it again: a new row (a new offset), open, while this one stays
  ``retried``;
* :func:`resolve` closes a row by hand (the record is to be left as it is).

Both are audited with the actor. Views never carry the raw value (it may hold card data):
only its size.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import DeadLetter
from db.repositories import audit
from db.repositories.errors import InvalidInput, NotFound

DEFAULT_LIMIT = 100


class DeadLetterNotOpen(InvalidInput):
    """Only an open dead letter can be retried or resolved."""

    code = "dead_letter_not_open"


class Republisher(Protocol):
    """Sends raw bytes to a topic and returns once the broker has acknowledged them."""

    def republish(self, topic: str, key: bytes | None, value: bytes | None) -> None: ...


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    """A dead letter as read from the ``dead-letters`` topic (text fields already clean)."""

    consumer: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    order_uid: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    id: int
    consumer: str
    source_topic: str
    source_partition: int
    source_offset: int
    #: The source key as text (order uids are text keys); undecodable bytes replaced.
    key: str | None
    value_bytes: int
    reason: str
    order_uid: uuid.UUID | None
    first_seen_at: datetime
    status: str
    retried_at: datetime | None
    retried_by: str | None
    retry_count: int


def record(conn: Connection | Session, letters: Sequence[NewDeadLetter]) -> int:
    """Store ``letters``; those already stored are left alone. The number of new rows."""
    if not letters:
        return 0
    statement = (
        insert(DeadLetter)
        .values([asdict(letter) for letter in letters])
        .on_conflict_do_nothing(constraint="uq_dead_letters_source")
    )
    result = conn.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def _open() -> Any:
    return DeadLetter.status == "open"


def list_open(session: Session, limit: int = DEFAULT_LIMIT) -> list[DeadLetterView]:
    """The oldest open dead letters first (the order their records were refused in)."""
    rows = session.scalars(select(DeadLetter).where(_open()).order_by(DeadLetter.id).limit(limit))
    return [view(row) for row in rows]


def count_open(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(DeadLetter).where(_open())) or 0)


def get(session: Session, dead_letter_id: int) -> DeadLetterView:
    return view(_row(session, dead_letter_id))


def open_for_order(session: Session, order_uid: uuid.UUID) -> list[DeadLetterView]:
    """The open dead letters of one order: while any exists, the order needs an operator."""
    rows = session.scalars(
        select(DeadLetter).where(_open(), DeadLetter.order_uid == order_uid).order_by(DeadLetter.id)
    )
    return [view(row) for row in rows]


def count_open_by_order(session: Session) -> dict[uuid.UUID, int]:
    """Per order with open dead letters, how many."""
    rows = session.execute(
        select(DeadLetter.order_uid, func.count())
        .where(_open(), DeadLetter.order_uid.is_not(None))
        .group_by(DeadLetter.order_uid)
    )
    return {uid: int(count) for uid, count in rows if uid is not None}


def open_ids(session: Session, limit: int = DEFAULT_LIMIT) -> list[int]:
    return list(
        session.scalars(select(DeadLetter.id).where(_open()).order_by(DeadLetter.id).limit(limit))
    )


def retry(
    session: Session, publisher: Republisher, dead_letter_id: int, actor: str
) -> DeadLetterView:
    """Re-publish the record to its source topic, then mark it ``retried``; audited.

    The row is locked meanwhile, so two operators cannot retry it at once. If the publish
    fails nothing changes; if the commit fails after the publish, the row stays open and a
    second retry publishes the record again, which its consumers take as a no-op.
    """
    row = _row(session, dead_letter_id, lock=True)
    if row.status != "open":
        raise DeadLetterNotOpen(f"dead letter {dead_letter_id} is {row.status}, not open")
    before = _summary(row)
    publisher.republish(row.source_topic, row.key, row.value)
    row.status, row.retried_at, row.retried_by = "retried", datetime.now(UTC), actor
    row.retry_count += 1
    return _audited(session, row, actor, "dead_letter.retry", before)


def resolve(session: Session, dead_letter_id: int, actor: str) -> DeadLetterView:
    """Close an open dead letter without retrying it (its record is to be left out); audited."""
    row = _row(session, dead_letter_id, lock=True)
    if row.status != "open":
        raise DeadLetterNotOpen(f"dead letter {dead_letter_id} is {row.status}, not open")
    before = _summary(row)
    row.status = "resolved"
    return _audited(session, row, actor, "dead_letter.resolve", before)


def _row(session: Session, dead_letter_id: int, *, lock: bool = False) -> DeadLetter:
    row = session.get(DeadLetter, dead_letter_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"dead letter {dead_letter_id} does not exist")
    return row


def _audited(
    session: Session, row: DeadLetter, actor: str, action: str, before: dict[str, Any]
) -> DeadLetterView:
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="dead_letter",
        entity_id=str(row.id),
        before=before,
        after=_summary(row),
    )
    return view(row)


def _summary(row: DeadLetter) -> dict[str, Any]:
    """The audit image: coordinates and state, never the raw value."""
    return {
        "source": f"{row.source_topic}[{row.source_partition}]@{row.source_offset}",
        "consumer": row.consumer,
        "order_uid": row.order_uid,
        "status": row.status,
        "retry_count": row.retry_count,
    }


def view(row: DeadLetter) -> DeadLetterView:
    return DeadLetterView(
        id=row.id,
        consumer=row.consumer,
        source_topic=row.source_topic,
        source_partition=row.source_partition,
        source_offset=row.source_offset,
        key=None if row.key is None else row.key.decode("utf-8", "replace"),
        value_bytes=len(row.value or b""),
        reason=row.reason,
        order_uid=row.order_uid,
        first_seen_at=row.first_seen_at,
        status=row.status,
        retried_at=row.retried_at,
        retried_by=row.retried_by,
        retry_count=row.retry_count,
    )
