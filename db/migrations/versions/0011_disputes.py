"""Disputes: a payer's or partner's claim that a closed deposit was paid, with its receipt.

* ``disputes`` -- one per order at most (``UNIQUE(order_uid)``: a resolved dispute is final);
  opened by the payer or the partner with a receipt, or by an operator who attached a bank
  notification to the closed order (``notification_id``, its evidence);
  ``status`` moves ``open`` -> ``accepted`` | ``rejected`` once, with who resolved it, when
  and (for a rejection, required) why. ``deadline_at`` is when an operator must have decided.
* ``dispute_receipts`` -- the receipt's bytes (PDF, PNG or JPEG as judged from its content,
  at most 5 MiB), its size and SHA-256; served to console users only.
* ``ledger_postings`` -- a new kind, ``dispute_credit`` (the late credit of an accepted
  dispute), and ``reference``, what a transaction answers to besides its order
  (``dispute:<id>``).

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_KINDS_BEFORE = "kind IN ('hold', 'release', 'capture', 'deposit_credit')"
_KINDS_AFTER = "kind IN ('hold', 'release', 'capture', 'deposit_credit', 'dispute_credit')"


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_uid", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("notification_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_disputes"),
        sa.UniqueConstraint("order_uid", name="uq_disputes_order_uid"),
        sa.ForeignKeyConstraint(["order_uid"], ["orders.uid"], name="fk_disputes_order_uid_orders"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_disputes_partner_id_partners"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'rejected')", name=op.f("ck_disputes_status")
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name="fk_disputes_notification_id_notifications",
        ),
        sa.UniqueConstraint("notification_id", name="uq_disputes_notification_id"),
        sa.CheckConstraint(
            "opened_by IN ('payer', 'partner', 'operator')", name=op.f("ck_disputes_opened_by")
        ),
        sa.CheckConstraint(
            "(opened_by = 'operator') = (notification_id IS NOT NULL)",
            name=op.f("ck_disputes_notification_iff_operator"),
        ),
        sa.CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL AND resolved_by IS NULL)",
            name=op.f("ck_disputes_resolved_iff_not_open"),
        ),
        sa.CheckConstraint(
            "status <> 'rejected' OR length(btrim(resolution_reason)) > 0",
            name=op.f("ck_disputes_reason_if_rejected"),
        ),
        sa.CheckConstraint(
            "comment IS NULL OR length(comment) <= 1000", name=op.f("ck_disputes_comment_length")
        ),
        sa.CheckConstraint("deadline_at > created_at", name=op.f("ck_disputes_deadline_after")),
    )
    op.create_index(
        "ix_disputes_open", "disputes", ["deadline_at"], postgresql_where=sa.text("status = 'open'")
    )
    op.create_index("ix_disputes_partner_id_created_at", "disputes", ["partner_id", "created_at"])
    op.create_table(
        "dispute_receipts",
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("dispute_id", name="pk_dispute_receipts"),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name="fk_dispute_receipts_dispute_id_disputes"
        ),
        sa.CheckConstraint(
            "content_type IN ('application/pdf', 'image/png', 'image/jpeg')",
            name=op.f("ck_dispute_receipts_content_type"),
        ),
        sa.CheckConstraint(
            "size_bytes BETWEEN 1 AND 5242880 AND size_bytes = octet_length(data)",
            name=op.f("ck_dispute_receipts_size"),
        ),
    )
    op.drop_constraint(op.f("ck_ledger_postings_kind"), "ledger_postings", type_="check")
    op.create_check_constraint(op.f("ck_ledger_postings_kind"), "ledger_postings", _KINDS_AFTER)
    op.add_column("ledger_postings", sa.Column("reference", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("ledger_postings", "reference")
    # ledger_postings is append-only: with a dispute credit booked, the old CHECK refuses to
    # come back, and so does the downgrade (money booked is never un-booked by a schema step).
    op.drop_constraint(op.f("ck_ledger_postings_kind"), "ledger_postings", type_="check")
    op.create_check_constraint(op.f("ck_ledger_postings_kind"), "ledger_postings", _KINDS_BEFORE)
    op.drop_table("dispute_receipts")
    op.drop_index("ix_disputes_partner_id_created_at", table_name="disputes")
    op.drop_index("ix_disputes_open", table_name="disputes")
    op.drop_table("disputes")
