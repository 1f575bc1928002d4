"""Partner callbacks: the delivery log and the partners' callback signing secrets.

* ``callback_deliveries`` -- one row per terminal order event owed to a partner; the primary
  key ``delivery_id`` is derived from (order uid, event type) and ``UNIQUE(order_uid,
  event_type)`` says the same, so a redelivered event never makes a second delivery. The
  partial index on ``next_attempt_at`` (pending rows only) serves the senders'
  ``SELECT .. FOR UPDATE SKIP LOCKED``.
* ``callback_secrets`` -- a partner's HMAC keys for callbacks, sealed by ``db.crypto``;
  several may be active while the partner rotates.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "callback_deliveries",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("order_uid", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("order_version", sa.BigInteger(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _at("next_attempt_at", nullable=False),
        _at("give_up_at", nullable=False),
        _at("last_attempt_at"),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        _at("delivered_at"),
        _at("parked_at"),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_callback_deliveries"),
        sa.UniqueConstraint(
            "order_uid", "event_type", name="uq_callback_deliveries_order_uid_event_type"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead', 'skipped')",
            name=op.f("ck_callback_deliveries_status"),
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_callback_deliveries_attempts_non_negative")
        ),
        sa.CheckConstraint(
            "order_version >= 1", name=op.f("ck_callback_deliveries_order_version_positive")
        ),
        sa.CheckConstraint(
            "status <> 'delivered' OR delivered_at IS NOT NULL",
            name=op.f("ck_callback_deliveries_delivered_at_if_delivered"),
        ),
    )
    op.create_index(
        "ix_callback_deliveries_due",
        "callback_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_callback_deliveries_partner_id_created_at",
        "callback_deliveries",
        ["partner_id", "created_at"],
    )

    op.create_table(
        "callback_secrets",
        sa.Column("secret_id", sa.Text(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        _at("revoked_at"),
        sa.PrimaryKeyConstraint("secret_id", name="pk_callback_secrets"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_callback_secrets_partner_id_partners"
        ),
        sa.CheckConstraint(
            "active = (revoked_at IS NULL)",
            name=op.f("ck_callback_secrets_revoked_at_iff_inactive"),
        ),
    )
    op.create_index("ix_callback_secrets_partner_id", "callback_secrets", ["partner_id"])


def downgrade() -> None:
    op.drop_index("ix_callback_secrets_partner_id", table_name="callback_secrets")
    op.drop_table("callback_secrets")
    op.drop_index("ix_callback_deliveries_partner_id_created_at", table_name="callback_deliveries")
    op.drop_index("ix_callback_deliveries_due", table_name="callback_deliveries")
    op.drop_table("callback_deliveries")
