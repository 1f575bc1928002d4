"""Dead letters: records a consumer could never write, kept with their coordinates.

A row is the durable twin of one record on the ``dead-letters`` topic (the projector writes
it). ``(consumer, source_topic, source_partition, source_offset)`` is unique, so a
redelivered dead letter never makes a second row; ``key`` and ``value`` are the source
record's raw bytes (``bytea``: a poison value may hold NULs), re-published untouched by a
retry. ``order_uid`` flags the order for an operator when the record belongs to one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, CreatedAt, one_of

DEAD_LETTER_STATUSES = ("open", "retried", "resolved")


class DeadLetter(Base):
    """One quarantined record and what has been done about it."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint(
            "consumer",
            "source_topic",
            "source_partition",
            "source_offset",
            name="uq_dead_letters_source",
        ),
        CheckConstraint(one_of("status", DEAD_LETTER_STATUSES), name="status"),
        CheckConstraint("retry_count >= 0", name="retry_count_non_negative"),
        CheckConstraint(
            "source_partition >= 0 AND source_offset >= 0", name="coordinates_non_negative"
        ),
        CheckConstraint(
            "status <> 'retried' OR retried_at IS NOT NULL", name="retried_at_if_retried"
        ),
        Index("ix_dead_letters_open", "first_seen_at", postgresql_where=text("status = 'open'")),
        Index("ix_dead_letters_order_uid", "order_uid"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    consumer: Mapped[str]
    source_topic: Mapped[str]
    source_partition: Mapped[int]
    source_offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[bytes | None]
    value: Mapped[bytes | None]
    reason: Mapped[str]
    order_uid: Mapped[uuid.UUID | None]
    first_seen_at: Mapped[CreatedAt]
    status: Mapped[str] = mapped_column(server_default="open")
    retried_at: Mapped[datetime | None]
    retried_by: Mapped[str | None]
    retry_count: Mapped[int] = mapped_column(server_default=text("0"))
