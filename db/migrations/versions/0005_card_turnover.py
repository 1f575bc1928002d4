"""Card monitoring: ``card_turnover`` (windows per card) and ``card_alerts``.

* ``card_turnover`` -- money IN per card and window (hour, day, month of ``time_zone``),
  primary key (card, window kind, window start); the card projector writes it as a versioned
  upsert, so a replayed or reordered update never moves a window back;
* ``card_alerts`` -- one row per alert id (limit share reached, automatic holiday, expiring
  soon, expired), kept for analysts.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "card_turnover",
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("window_kind", sa.Text(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("in_minor", sa.BigInteger(), nullable=False),
        sa.Column("in_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("card_id", "window_kind", "window_start", name="pk_card_turnover"),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name="fk_card_turnover_card_id_cards"),
        sa.CheckConstraint(
            "window_kind IN ('hour', 'day', 'month')", name=op.f("ck_card_turnover_window_kind")
        ),
        sa.CheckConstraint("window_end > window_start", name=op.f("ck_card_turnover_window_order")),
        sa.CheckConstraint(
            "currency ~ '^[A-Z]{3}$'", name=op.f("ck_card_turnover_currency_iso4217")
        ),
        sa.CheckConstraint(
            "in_minor >= 0 AND in_count >= 0", name=op.f("ck_card_turnover_turnover_non_negative")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_card_turnover_version_positive")),
    )
    op.create_index(
        "ix_card_turnover_window_kind_window_start",
        "card_turnover",
        ["window_kind", "window_start"],
    )

    op.create_table(
        "card_alerts",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.Text(), nullable=True),
        sa.Column("threshold_pct", sa.Integer(), nullable=True),
        sa.Column("used", sa.BigInteger(), nullable=True),
        sa.Column("ceiling", sa.BigInteger(), nullable=True),
        sa.Column("window_kind", sa.Text(), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holiday_reason", sa.Text(), nullable=True),
        sa.Column("holiday_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_card_alerts"),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name="fk_card_alerts_card_id_cards"),
        sa.CheckConstraint(
            "kind IN ('limit_share', 'holiday_started', 'expiring_soon', 'expired')",
            name=op.f("ck_card_alerts_kind"),
        ),
        sa.CheckConstraint(
            "metric IN ('daily_amount', 'daily_count', 'monthly_amount', 'monthly_count')",
            name=op.f("ck_card_alerts_metric"),
        ),
        sa.CheckConstraint(
            "window_kind IN ('hour', 'day', 'month')", name=op.f("ck_card_alerts_window_kind")
        ),
        sa.CheckConstraint(
            "holiday_reason IN ('daily_limit_reached', 'order_streak')",
            name=op.f("ck_card_alerts_holiday_reason"),
        ),
        sa.CheckConstraint(
            "threshold_pct BETWEEN 1 AND 1000", name=op.f("ck_card_alerts_threshold_pct_range")
        ),
        sa.CheckConstraint(
            "kind <> 'limit_share' OR (metric IS NOT NULL AND threshold_pct IS NOT NULL)",
            name=op.f("ck_card_alerts_limit_share_facts"),
        ),
        sa.CheckConstraint(
            "kind <> 'holiday_started' OR holiday_until IS NOT NULL",
            name=op.f("ck_card_alerts_holiday_facts"),
        ),
    )
    op.create_index("ix_card_alerts_card_id_at", "card_alerts", ["card_id", "at"])
    op.create_index("ix_card_alerts_at", "card_alerts", ["at"])


def downgrade() -> None:
    op.drop_index("ix_card_alerts_at", table_name="card_alerts")
    op.drop_index("ix_card_alerts_card_id_at", table_name="card_alerts")
    op.drop_table("card_alerts")
    op.drop_index("ix_card_turnover_window_kind_window_start", table_name="card_turnover")
    op.drop_table("card_turnover")
