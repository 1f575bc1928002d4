"""Sign-in throttling shared by every API process.

* ``login_throttle`` -- one row per scope (``user``: a username tried, known or not;
  ``address``: a client address) with the current window's failed attempts, the lock level
  and the lock's end (rules in ``domain.login_throttle``). The ``updated_at`` index serves
  the pruning ``DELETE`` of quiet rows.
* ``console_sessions.idle_s`` -- the idle limit the API set when the session opened, so the
  console (which checks sessions itself) can never be looser than the API; sessions open
  before this revision keep the old default, 1800 s.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("level", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_login_throttle"),
        sa.CheckConstraint("scope IN ('user', 'address')", name=op.f("ck_login_throttle_scope")),
        sa.CheckConstraint(
            "length(key) BETWEEN 1 AND 128", name=op.f("ck_login_throttle_key_length")
        ),
        sa.CheckConstraint("failures >= 0", name=op.f("ck_login_throttle_failures_not_negative")),
        sa.CheckConstraint("level >= 0", name=op.f("ck_login_throttle_level_not_negative")),
    )
    op.create_index("ix_login_throttle_updated_at", "login_throttle", ["updated_at"])
    op.add_column(
        "console_sessions",
        sa.Column("idle_s", sa.Integer(), server_default=sa.text("1800"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_console_sessions_idle_s_positive"), "console_sessions", "idle_s > 0"
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_console_sessions_idle_s_positive"), "console_sessions", type_="check"
    )
    op.drop_column("console_sessions", "idle_s")
    op.drop_index("ix_login_throttle_updated_at", table_name="login_throttle")
    op.drop_table("login_throttle")
