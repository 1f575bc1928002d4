"""Two-factor sign-in, forced password reset, notification opt-in.

* ``console_second_factors`` -- a user's TOTP secret sealed with ``KEEPER_DATA_KEY``, when
  enrolment was confirmed (NULL: waiting for the first code), and the time step of the last
  accepted code (no code is accepted twice).
* ``console_recovery_codes`` -- single-use recovery codes as argon2id hashes, found by their
  first group (``lookup``, not secret).
* ``login_challenges`` -- the short-lived token between a sign-in's password and its code,
  as SHA-256.
* ``console_users.must_change_password`` -- an admin forced a reset: the next session may
  only set a new password; ``console_users.notify_desktop`` -- browser notifications opt-in.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["console_users.id"],
        name=f"fk_{table}_user_id_console_users",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "console_second_factors",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_console_second_factors")),
        _user_fk("console_second_factors"),
        sa.CheckConstraint(
            "length(secret_sealed) > 0",
            name=op.f("ck_console_second_factors_secret_sealed_not_empty"),
        ),
        sa.CheckConstraint(
            "last_step IS NULL OR last_step >= 0",
            name=op.f("ck_console_second_factors_last_step_not_negative"),
        ),
    )
    op.create_table(
        "console_recovery_codes",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("lookup", sa.Text(), nullable=False),
        sa.Column("code_hash", sa.Text(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_recovery_codes")),
        _user_fk("console_recovery_codes"),
        sa.UniqueConstraint(
            "user_id", "lookup", name=op.f("uq_console_recovery_codes_user_id_lookup")
        ),
        sa.CheckConstraint(
            "code_hash LIKE '$argon2id$%'",
            name=op.f("ck_console_recovery_codes_code_hash_argon2id"),
        ),
        sa.CheckConstraint(
            "length(lookup) BETWEEN 1 AND 16", name=op.f("ck_console_recovery_codes_lookup_length")
        ),
    )
    op.create_index("ix_console_recovery_codes_user_id", "console_recovery_codes", ["user_id"])
    op.create_table(
        "login_challenges",
        sa.Column("token_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_login_challenges")),
        _user_fk("login_challenges"),
        sa.CheckConstraint(
            "octet_length(token_sha256) = 32",
            name=op.f("ck_login_challenges_token_sha256_length"),
        ),
        sa.CheckConstraint(
            "expires_at > created_at", name=op.f("ck_login_challenges_expires_after_created")
        ),
    )
    op.create_index("ix_login_challenges_user_id", "login_challenges", ["user_id"])
    op.create_index("ix_login_challenges_expires_at", "login_challenges", ["expires_at"])
    op.add_column(
        "console_users",
        sa.Column(
            "must_change_password", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.add_column(
        "console_users",
        sa.Column("notify_desktop", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("console_users", "notify_desktop")
    op.drop_column("console_users", "must_change_password")
    op.drop_index("ix_login_challenges_expires_at", table_name="login_challenges")
    op.drop_index("ix_login_challenges_user_id", table_name="login_challenges")
    op.drop_table("login_challenges")
    op.drop_index("ix_console_recovery_codes_user_id", table_name="console_recovery_codes")
    op.drop_table("console_recovery_codes")
    op.drop_table("console_second_factors")
