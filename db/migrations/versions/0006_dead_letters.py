"""Dead letters: the durable record of every quarantined (poison) record.

* ``dead_letters`` -- one row per record a consumer could never write, with the record's
  source coordinates (topic, partition, offset), its raw key and value (``bytea``: a poison
  value may hold NULs or invalid UTF-8), the consumer (group) that gave up on it and why.
  ``UNIQUE(consumer, source_topic, source_partition, source_offset)``: a redelivered dead
  letter never makes a second row. ``order_uid`` (nullable) flags the order for an
  operator; ``status`` moves ``open`` -> ``retried`` (re-published after a fix) or
  ``resolved`` (closed by hand). The partial index serves the console's open list.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("source_topic", sa.Text(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("order_uid", sa.Uuid(), nullable=True),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retried_by", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint(
            "consumer",
            "source_topic",
            "source_partition",
            "source_offset",
            name="uq_dead_letters_source",
        ),
        sa.CheckConstraint(
            "status IN ('open', 'retried', 'resolved')", name=op.f("ck_dead_letters_status")
        ),
        sa.CheckConstraint(
            "retry_count >= 0", name=op.f("ck_dead_letters_retry_count_non_negative")
        ),
        sa.CheckConstraint(
            "source_partition >= 0 AND source_offset >= 0",
            name=op.f("ck_dead_letters_coordinates_non_negative"),
        ),
        sa.CheckConstraint(
            "status <> 'retried' OR retried_at IS NOT NULL",
            name=op.f("ck_dead_letters_retried_at_if_retried"),
        ),
    )
    op.create_index(
        "ix_dead_letters_open",
        "dead_letters",
        ["first_seen_at"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_dead_letters_order_uid", "dead_letters", ["order_uid"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_order_uid", table_name="dead_letters")
    op.drop_index("ix_dead_letters_open", table_name="dead_letters")
    op.drop_table("dead_letters")
