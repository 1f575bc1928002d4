"""Initial schema: partners, cards, orders, events, double-entry ledger, balances, audit.

Hand-written and self-contained (it does not import ``db.models``, which will keep changing):
what this file creates is what revision 0001 means forever.

Beyond tables and constraints it installs three pieces of plpgsql:

* ``keeper_reject_mutation()`` -- BEFORE UPDATE/DELETE/TRUNCATE triggers on ``audit_log``,
  ``ledger_postings`` and ``order_events`` make them append-only;
* ``keeper_ledger_transaction_balanced()`` -- a DEFERRABLE INITIALLY DEFERRED constraint
  trigger on ``ledger_postings`` that, at COMMIT, refuses any transaction (legs sharing
  ``order_uid`` and ``kind``) whose legs do not sum to zero per currency.

Both raise SQLSTATE class 23 (integrity constraint violation), so drivers surface them like
any other violated constraint.

Every constraint is named explicitly. CHECK names are wrapped in ``op.f()`` because Alembic
applies the target metadata's naming convention (``ck_%(table_name)s_%(constraint_name)s``)
to names it is given, which would otherwise double the prefix.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("audit_log", "ledger_postings", "order_events")

SLUG = "^[a-z0-9][a-z0-9_-]{0,62}$"
CURRENCY = "currency ~ '^[A-Z]{3}$'"
PAN_MASKED = "^[0-9]{6}[*]+[0-9]{4}$"


def _now() -> sa.TextClause:
    return sa.text("now()")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "card_pools",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_card_pools"),
        sa.CheckConstraint(f"id ~ '{SLUG}'", name=op.f("ck_card_pools_id_slug")),
    )

    op.create_table(
        "partners",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("deposit_fee_bp", sa.Integer(), nullable=False),
        sa.Column("withdrawal_fee_bp", sa.Integer(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("pool_id", sa.Text(), nullable=True),
        *_timestamps(),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_partners"),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["card_pools.id"], name="fk_partners_pool_id_card_pools"
        ),
        sa.CheckConstraint(f"id ~ '{SLUG}'", name=op.f("ck_partners_id_slug")),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'closed')", name=op.f("ck_partners_status")
        ),
        sa.CheckConstraint(
            "deposit_fee_bp BETWEEN 0 AND 10000", name=op.f("ck_partners_deposit_fee_bp_range")
        ),
        sa.CheckConstraint(
            "withdrawal_fee_bp BETWEEN 0 AND 10000",
            name=op.f("ck_partners_withdrawal_fee_bp_range"),
        ),
        sa.CheckConstraint(
            "callback_url ~ '^https?://'", name=op.f("ck_partners_callback_url_http")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_partners_version_positive")),
    )
    op.create_index("ix_partners_pool_id", "partners", ["pool_id"])

    op.create_table(
        "partner_api_keys",
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_partner_api_keys"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_partner_api_keys_partner_id_partners"
        ),
        sa.CheckConstraint(
            "status IN ('active', 'revoked')", name=op.f("ck_partner_api_keys_status")
        ),
        sa.CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)",
            name=op.f("ck_partner_api_keys_revoked_at_iff_revoked"),
        ),
    )
    op.create_index("ix_partner_api_keys_partner_id", "partner_api_keys", ["partner_id"])

    op.create_table(
        "console_users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "password_changed_at",
            sa.DateTime(timezone=True),
            server_default=_now(),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_users"),
        sa.UniqueConstraint("username", name="uq_console_users_username"),
        sa.CheckConstraint(
            "role IN ('admin', 'operator', 'analyst')", name=op.f("ck_console_users_role")
        ),
        sa.CheckConstraint(
            "password_hash LIKE '$argon2id$%'", name=op.f("ck_console_users_password_hash_argon2id")
        ),
        sa.CheckConstraint(
            "username = lower(username) AND length(username) BETWEEN 1 AND 64",
            name=op.f("ck_console_users_username_lowercase"),
        ),
    )

    op.create_table(
        "cards",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("pool_id", sa.Text(), nullable=False),
        sa.Column("pan_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("pan_masked", sa.Text(), nullable=False),
        sa.Column("pan_fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("bank", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("daily_limit_minor", sa.BigInteger(), nullable=False),
        sa.Column("monthly_limit_minor", sa.BigInteger(), nullable=False),
        sa.Column("daily_count_limit", sa.Integer(), nullable=False),
        sa.Column("monthly_count_limit", sa.Integer(), nullable=False),
        sa.Column("min_order_minor", sa.BigInteger(), nullable=False),
        sa.Column("max_order_minor", sa.BigInteger(), nullable=False),
        sa.Column("holiday_until", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cards"),
        sa.ForeignKeyConstraint(["pool_id"], ["card_pools.id"], name="fk_cards_pool_id_card_pools"),
        sa.UniqueConstraint("pan_fingerprint", name="uq_cards_pan_fingerprint"),
        sa.CheckConstraint(f"pan_masked ~ '{PAN_MASKED}'", name=op.f("ck_cards_pan_masked_format")),
        sa.CheckConstraint(CURRENCY, name=op.f("ck_cards_currency_iso4217")),
        sa.CheckConstraint(
            "status IN ('active', 'blocked', 'retired')", name=op.f("ck_cards_status")
        ),
        sa.CheckConstraint(
            "daily_limit_minor >= 0 AND monthly_limit_minor >= 0"
            " AND daily_count_limit >= 0 AND monthly_count_limit >= 0"
            " AND min_order_minor >= 0 AND max_order_minor >= 0",
            name=op.f("ck_cards_limits_non_negative"),
        ),
        sa.CheckConstraint("min_order_minor <= max_order_minor", name=op.f("ck_cards_order_range")),
        sa.CheckConstraint(
            "daily_limit_minor <= monthly_limit_minor AND daily_count_limit <= monthly_count_limit",
            name=op.f("ck_cards_daily_within_monthly"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_cards_version_positive")),
    )
    op.create_index("ix_cards_pool_id_status", "cards", ["pool_id", "status"])

    op.create_table(
        "orders",
        sa.Column("uid", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("partner_order_id", sa.Text(), nullable=False),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=True),
        sa.Column("payer_card_masked", sa.Text(), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        *_timestamps(),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uid", name="pk_orders"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_orders_partner_id_partners"
        ),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name="fk_orders_card_id_cards"),
        sa.UniqueConstraint(
            "partner_id", "partner_order_id", name="uq_orders_partner_id_partner_order_id"
        ),
        sa.CheckConstraint(
            "direction IN ('deposit', 'withdrawal')", name=op.f("ck_orders_direction")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'new', 'processing', 'approved', 'rejected', 'failed',"
            " 'declined', 'expired', 'cancelled')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_orders_amount_positive")),
        sa.CheckConstraint("fee_minor >= 0", name=op.f("ck_orders_fee_non_negative")),
        sa.CheckConstraint(CURRENCY, name=op.f("ck_orders_currency_iso4217")),
        sa.CheckConstraint(
            "length(partner_order_id) BETWEEN 1 AND 128",
            name=op.f("ck_orders_partner_order_id_length"),
        ),
        sa.CheckConstraint(
            f"payer_card_masked ~ '{PAN_MASKED}'", name=op.f("ck_orders_payer_card_masked_format")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_orders_version_positive")),
    )
    op.create_index("ix_orders_status_created_at", "orders", ["status", "created_at"])
    op.create_index("ix_orders_partner_id_created_at", "orders", ["partner_id", "created_at"])
    op.create_index("ix_orders_card_id_created_at", "orders", ["card_id", "created_at"])

    op.create_table(
        "order_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("order_uid", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_order_events"),
        sa.UniqueConstraint("order_uid", "seq", name="uq_order_events_order_uid_seq"),
        sa.CheckConstraint("seq >= 0", name=op.f("ck_order_events_seq_non_negative")),
    )

    op.create_table(
        "ledger_postings",
        sa.Column("posting_id", sa.Uuid(), nullable=False),
        sa.Column("order_uid", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=True),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("posting_id", name="pk_ledger_postings"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_ledger_postings_partner_id_partners"
        ),
        sa.UniqueConstraint(
            "order_uid", "kind", "account", name="uq_ledger_postings_order_uid_kind_account"
        ),
        sa.CheckConstraint(
            "kind IN ('hold', 'release', 'capture', 'deposit_credit')",
            name=op.f("ck_ledger_postings_kind"),
        ),
        sa.CheckConstraint("amount_minor <> 0", name=op.f("ck_ledger_postings_amount_non_zero")),
        sa.CheckConstraint(CURRENCY, name=op.f("ck_ledger_postings_currency_iso4217")),
        sa.CheckConstraint(
            "account ~ '^[a-z]+(:[a-z0-9_-]+)+$'", name=op.f("ck_ledger_postings_account_format")
        ),
        sa.CheckConstraint(
            "CASE WHEN split_part(account, ':', 1) = 'partner'"
            " THEN partner_id IS NOT NULL AND split_part(account, ':', 2) = partner_id"
            " ELSE partner_id IS NULL END",
            name=op.f("ck_ledger_postings_partner_matches_account"),
        ),
    )
    op.create_index(
        "ix_ledger_postings_account_currency", "ledger_postings", ["account", "currency"]
    )
    op.create_index("ix_ledger_postings_partner_id", "ledger_postings", ["partner_id"])

    op.create_table(
        "balance_snapshots",
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("available_minor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "currency", name="pk_balance_snapshots"),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_balance_snapshots_partner_id_partners"
        ),
        sa.CheckConstraint(
            "available_minor >= 0", name=op.f("ck_balance_snapshots_available_non_negative")
        ),
        sa.CheckConstraint("held_minor >= 0", name=op.f("ck_balance_snapshots_held_non_negative")),
        sa.CheckConstraint(CURRENCY, name=op.f("ck_balance_snapshots_currency_iso4217")),
        sa.CheckConstraint("version >= 0", name=op.f("ck_balance_snapshots_version_non_negative")),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_entity_entity_id_at", "audit_log", ["entity", "entity_id", "at"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])

    _create_append_only_triggers()
    _create_ledger_balance_trigger()


def _create_append_only_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION keeper_reject_mutation() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation',
                      HINT = 'record a correcting row instead of changing history';
        END
        $$
        """
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION keeper_reject_mutation()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION keeper_reject_mutation()"
        )


def _create_ledger_balance_trigger() -> None:
    # Runs once per inserted leg, at COMMIT (deferred), so every leg of a transaction is
    # visible no matter in which order they were inserted. The unique index on
    # (order_uid, kind, account) serves the lookup.
    op.execute(
        """
        CREATE FUNCTION keeper_ledger_transaction_balanced() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            off RECORD;
        BEGIN
            SELECT p.currency, sum(p.amount_minor) AS total
              INTO off
              FROM ledger_postings AS p
             WHERE p.order_uid = NEW.order_uid AND p.kind = NEW.kind
             GROUP BY p.currency
            HAVING sum(p.amount_minor) <> 0
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION
                    'ledger transaction (order %, kind %) does not balance: legs sum to % %',
                    NEW.order_uid, NEW.kind, off.total, off.currency
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'ledger_postings_balanced';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
        " EXECUTE FUNCTION keeper_ledger_transaction_balanced()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_postings_balanced ON ledger_postings")
    op.execute("DROP FUNCTION keeper_ledger_transaction_balanced()")
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP FUNCTION keeper_reject_mutation()")

    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_entity_entity_id_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("balance_snapshots")
    op.drop_index("ix_ledger_postings_partner_id", table_name="ledger_postings")
    op.drop_index("ix_ledger_postings_account_currency", table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_table("order_events")
    op.drop_index("ix_orders_card_id_created_at", table_name="orders")
    op.drop_index("ix_orders_partner_id_created_at", table_name="orders")
    op.drop_index("ix_orders_status_created_at", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_cards_pool_id_status", table_name="cards")
    op.drop_table("cards")
    op.drop_table("console_users")
    op.drop_index("ix_partner_api_keys_partner_id", table_name="partner_api_keys")
    op.drop_table("partner_api_keys")
    op.drop_index("ix_partners_pool_id", table_name="partners")
    op.drop_table("partners")
    op.drop_table("card_pools")
