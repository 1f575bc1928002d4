"""Bank notifications: templates, devices, notifications, and each pool's match policy.

* ``bank_templates`` -- bank message formats as data (``domain.bank_messages``), seeded with
  the formats Keeper ships (``domain.bank_templates.SHIPPED`` as of this revision, copied
  here literally so the migration never changes meaning), edited by admins afterwards;
* ``devices`` -- phones that forward a card's bank messages, each with its own sealed
  credential; at most one active device per card;
* ``notifications`` -- every message a device forwarded, idempotent by device and device-side
  id, then by card and content hash, and what became of it (ADR 0010); what a template read
  from it in ``notification_parses``;
* ``card_pools.match_policy`` -- ``auto`` (the system approves a match) or ``suggest``.

Self-contained like 0001: it does not import ``db.models``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# ruff: noqa: RUF001, E501 - Cyrillic bank messages on purpose; patterns are kept whole

SHIPPED: list[dict[str, Any]] = [
    {
        "template_id": "sber-credit-ru",
        "bank": "Sber",
        "kind": "credit",
        "pattern": "(?:СЧ[ЁЕ]Т|MIR-|VISA|ECMC)(?P<tail>\\d{4}) \\d{2}:\\d{2} (?:[Зз]ачисление|[Пп]еревод(?: из [^+]*?)?) \\+?(?P<amount>\\d[\\d \\x{00A0}]*(?:\\.\\d+)?)(?P<currency>р|₽)(?: от (?P<counterparty>.+?))? Баланс: (?P<balance>\\d[\\d \\x{00A0}]*(?:\\.\\d+)?)р",
        "senders": ["900", "SBERBANK", "ru.sberbankmobile"],
        "decimal_sep": ".",
        "currency": "RUB",
        "priority": 10,
    },
    {
        "template_id": "sber-debit-ru",
        "bank": "Sber",
        "kind": "debit",
        "pattern": "(?:СЧ[ЁЕ]Т|MIR-|VISA|ECMC)(?P<tail>\\d{4}) \\d{2}:\\d{2} (?:[Пп]окупка|[Сс]писание|[Оо]плата) (?P<amount>\\d[\\d \\x{00A0}]*(?:\\.\\d+)?)(?P<currency>р|₽) (?P<counterparty>.+?) Баланс: (?P<balance>\\d[\\d \\x{00A0}]*(?:\\.\\d+)?)р",
        "senders": ["900", "SBERBANK", "ru.sberbankmobile"],
        "decimal_sep": ".",
        "currency": "RUB",
        "priority": 20,
    },
    {
        "template_id": "tbank-credit-ru",
        "bank": "T-Bank",
        "kind": "credit",
        "pattern": "Пополнение(?: на)? \\+?(?P<amount>\\d[\\d \\x{00A0}\\x{202F}]*(?:,\\d+)?)[ \\x{00A0}]?(?P<currency>₽|RUB|р\\.?),? (?:карта|сч[её]т) \\*(?P<tail>\\d{4})\\.?(?: (?:[Оо]т|Отправитель:?) (?P<counterparty>[^.]+)\\.)? Доступно:? (?P<balance>\\d[\\d \\x{00A0}\\x{202F}]*(?:,\\d+)?)[ \\x{00A0}]?₽",
        "senders": ["T-Bank", "Tinkoff", "com.idamob.tinkoff.android"],
        "decimal_sep": ",",
        "currency": "RUB",
        "priority": 10,
    },
    {
        "template_id": "tbank-refused-ru",
        "bank": "T-Bank",
        "kind": "refused",
        "pattern": "Отказ[.:] (?:[Пп]еревод|[Пп]окупка|[Пп]ополнение) (?P<amount>\\d[\\d \\x{00A0}\\x{202F}]*(?:,\\d+)?)[ \\x{00A0}]?(?P<currency>₽|RUB),? карта \\*(?P<tail>\\d{4})",
        "senders": ["T-Bank", "Tinkoff", "com.idamob.tinkoff.android"],
        "decimal_sep": ",",
        "currency": "RUB",
        "priority": 20,
    },
    {
        "template_id": "alfa-credit-en",
        "bank": "Alfa-Bank",
        "kind": "credit",
        "pattern": "Card \\*(?P<tail>\\d{4}): (?:credit|incoming transfer) (?P<currency>[A-Z]{3}) (?P<amount>\\d[\\d,]*(?:\\.\\d+)?)(?: from (?P<counterparty>[^.]+))?\\. Balance: [A-Z]{3} (?P<balance>\\d[\\d,]*(?:\\.\\d+)?)",
        "senders": ["Alfa-Bank", "AlfaBank", "ru.alfabank.mobile.android"],
        "decimal_sep": ".",
        "currency": None,
        "priority": 10,
    },
    {
        "template_id": "vtb-debit-en",
        "bank": "VTB",
        "kind": "debit",
        "pattern": "VTB: debit (?P<currency>[A-Z]{3}) (?P<amount>\\d[\\d,]*(?:\\.\\d+)?), card \\*(?P<tail>\\d{4}), balance [A-Z]{3} (?P<balance>\\d[\\d,]*(?:\\.\\d+)?)",
        "senders": ["VTB", "ru.vtb24.mobilebanking.android"],
        "decimal_sep": ".",
        "currency": None,
        "priority": 10,
    },
    {
        "template_id": "any-refused-en",
        "bank": "any",
        "kind": "refused",
        "pattern": "Transfer of (?P<currency>[A-Z]{3}) (?P<amount>\\d[\\d,]*(?:\\.\\d+)?) to card \\*(?P<tail>\\d{4}) (?:declined|refused|rejected)",
        "senders": [],
        "decimal_sep": ".",
        "currency": None,
        "priority": 90,
    },
]

_KINDS = "('credit', 'debit', 'refused')"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column(
        "card_pools",
        sa.Column("match_policy", sa.Text(), server_default="suggest", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_card_pools_match_policy"), "card_pools", "match_policy IN ('auto', 'suggest')"
    )
    templates = op.create_table(
        "bank_templates",
        sa.Column("template_id", sa.Text(), nullable=False),
        sa.Column("bank", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("pattern", sa.Text(), nullable=False),
        sa.Column(
            "senders",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("decimal_sep", sa.Text(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=True),
        sa.Column("priority", sa.Integer(), server_default=sa.text("100"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("template_id", name="pk_bank_templates"),
        sa.CheckConstraint(
            "template_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'",
            name=op.f("ck_bank_templates_template_id_slug"),
        ),
        sa.CheckConstraint(f"kind IN {_KINDS}", name=op.f("ck_bank_templates_kind")),
        sa.CheckConstraint("decimal_sep IN (',', '.')", name=op.f("ck_bank_templates_decimal_sep")),
        sa.CheckConstraint(
            "currency ~ '^[A-Z]{3}$'", name=op.f("ck_bank_templates_currency_iso4217")
        ),
        sa.CheckConstraint(
            "length(pattern) BETWEEN 1 AND 2000", name=op.f("ck_bank_templates_pattern_length")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_bank_templates_version_positive")),
    )
    op.bulk_insert(templates, SHIPPED)

    op.create_table(
        "devices",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("silent_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name="fk_devices_card_id_cards"),
        sa.UniqueConstraint("key_id", name="uq_devices_key_id"),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name=op.f("ck_devices_id_slug")),
        sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f("ck_devices_status")),
        sa.CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)",
            name=op.f("ck_devices_revoked_at_iff_revoked"),
        ),
    )
    op.create_index("ix_devices_card_id", "devices", ["card_id"])
    op.create_index(
        "uq_devices_card_id_active",
        "devices",
        ["card_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )

    outcomes = (
        "('received', 'ignored', 'unparsed', 'approved', 'suggested', 'unmatched', "
        "'attached', 'dismissed')"
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("device_notification_id", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("matched_uid", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_notifications_device_id_devices"
        ),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name="fk_notifications_card_id_cards"),
        sa.UniqueConstraint(
            "device_id",
            "device_notification_id",
            name="uq_notifications_device_id_device_notification_id",
        ),
        sa.UniqueConstraint(
            "card_id", "content_hash", name="uq_notifications_card_id_content_hash"
        ),
        sa.CheckConstraint(f"outcome IN {outcomes}", name=op.f("ck_notifications_outcome")),
    )
    op.create_table(
        "notification_parses",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("tail", sa.Text(), nullable=True),
        sa.Column("counterparty", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("notification_id", name="pk_notification_parses"),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name="fk_notification_parses_notification_id_notifications",
        ),
        sa.CheckConstraint(f"kind IN {_KINDS}", name=op.f("ck_notification_parses_kind")),
        sa.CheckConstraint(
            "currency ~ '^[A-Z]{3}$'", name=op.f("ck_notification_parses_currency_iso4217")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_notification_parses_amount_positive")),
    )
    op.create_index("ix_notifications_outcome_stored_at", "notifications", ["outcome", "stored_at"])
    op.create_index("ix_notifications_matched_uid", "notifications", ["matched_uid"])


def downgrade() -> None:
    op.drop_table("notification_parses")
    op.drop_table("notifications")
    op.drop_table("devices")
    op.drop_table("bank_templates")
    op.drop_constraint(op.f("ck_card_pools_match_policy"), "card_pools", type_="check")
    op.drop_column("card_pools", "match_policy")
