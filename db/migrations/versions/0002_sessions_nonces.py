"""Console sessions, the shared nonce store, and the sealed payer card of withdrawals.

* ``console_sessions`` -- one row per console login, keyed by the SHA-256 of its token (the
  token itself is never stored); ``expires_at`` is the absolute end of the session, the idle
  limit is checked by the reader against ``last_seen_at``.
* ``api_nonces`` -- ``(key_id, nonce)`` pairs of verified partner requests, so every API
  worker refuses a replay (``INSERT .. ON CONFLICT DO NOTHING`` on the primary key); the
  ``expires_at`` index serves the pruning ``DELETE``.
* ``orders.payer_card_encrypted`` -- the payer's full card number for a withdrawal, sealed
  (the operator who pays out needs it); the masked form stays in ``payer_card_masked``.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_console_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["console_users.id"],
            name="fk_console_sessions_user_id_console_users",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "octet_length(token_sha256) = 32", name=op.f("ck_console_sessions_token_sha256_length")
        ),
        sa.CheckConstraint(
            "expires_at > created_at", name=op.f("ck_console_sessions_expires_after_created")
        ),
        sa.CheckConstraint(
            "last_seen_at >= created_at", name=op.f("ck_console_sessions_seen_after_created")
        ),
    )
    op.create_index("ix_console_sessions_user_id", "console_sessions", ["user_id"])
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])

    op.create_table(
        "api_nonces",
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "nonce", name="pk_api_nonces"),
        sa.CheckConstraint(
            "length(key_id) BETWEEN 1 AND 64", name=op.f("ck_api_nonces_key_id_length")
        ),
        sa.CheckConstraint(
            "length(nonce) BETWEEN 1 AND 64", name=op.f("ck_api_nonces_nonce_length")
        ),
    )
    op.create_index("ix_api_nonces_expires_at", "api_nonces", ["expires_at"])

    op.add_column("orders", sa.Column("payer_card_encrypted", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "payer_card_encrypted")
    op.drop_index("ix_api_nonces_expires_at", table_name="api_nonces")
    op.drop_table("api_nonces")
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_index("ix_console_sessions_user_id", table_name="console_sessions")
    op.drop_table("console_sessions")
