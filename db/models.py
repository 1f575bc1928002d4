"""Keeper's durable record as SQLAlchemy models.

The schema itself is owned by the Alembic migrations in ``db/migrations``; these models must
describe exactly what the migrations build (``tests/integration/test_migrations.py`` compares
them). Triggers (ledger balance, append-only tables) exist only in the migrations.

Conventions, so the database itself refuses impossible states rather than trusting callers:

* money is ``BIGINT`` minor units in a ``*_minor`` column next to an ISO-4217 ``currency``;
  fees are basis points (``*_fee_bp``), never floats;
* enumerations are ``text`` plus a CHECK (cheaper to extend than PostgreSQL enums);
* every relationship is ``lazy="raise"``: an agent or console page that forgets to load what
  it needs fails loudly in tests instead of issuing hidden queries per row;
* rows that are edited by people (partners, cards) carry an optimistic-lock ``version``;
  orders carry the projector's event ``version`` instead (newer version wins, see
  ``Order.version``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

PARTNER_STATUSES = ("active", "suspended", "closed")
API_KEY_STATUSES = ("active", "revoked")
CONSOLE_ROLES = ("admin", "operator", "analyst")
CARD_STATUSES = ("active", "blocked", "retired")
ORDER_DIRECTIONS = ("deposit", "withdrawal")
ORDER_STATUSES = (
    "pending",
    "new",
    "processing",
    "approved",
    "rejected",
    "failed",
    "declined",
    "expired",
    "cancelled",
)
POSTING_KINDS = ("hold", "release", "capture", "deposit_credit")

# Patterns match the domain's own validation (domain/_checks.py, domain/money.py): a CHECK
# stricter than the domain would turn a valid event into a poison message for a projector.
# Slugs end up inside ledger account names ("partner:<id>:held"), so no ':' and no spaces.
SLUG_PATTERN = "^[a-z0-9][a-z0-9_-]{0,62}$"
CURRENCY_PATTERN = "^[A-Z]{3}$"
# First six and last four digits only: a full PAN can never land in this column.
PAN_MASKED_PATTERN = "^[0-9]{6}[*]+[0-9]{4}$"
ACCOUNT_PATTERN = "^[a-z]+(:[a-z0-9_-]+)+$"


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for ``column IN (...)``; the migration spells the same lists out literally."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def matches(column: str, pattern: str) -> str:
    return f"{column} ~ '{pattern}'"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        str: Text(),
        int: Integer(),
        bytes: LargeBinary(),
        uuid.UUID: Uuid(),
        date: Date(),
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB(),
    }


# Reusable column shapes (SQLAlchemy merges these with any mapped_column() given alongside).
Money = Annotated[int, mapped_column(BigInteger)]
"""An amount in minor units (cents, kopecks): exact, and BIGINT is wide enough for any total."""
Currency = Annotated[str, mapped_column(CHAR(3))]
CreatedAt = Annotated[datetime, mapped_column(server_default=func.now())]
UpdatedAt = Annotated[datetime, mapped_column(server_default=func.now(), onupdate=func.now())]


class CardPool(Base):
    """A named group of cards that partners are routed to."""

    __tablename__ = "card_pools"
    __table_args__ = (CheckConstraint(matches("id", SLUG_PATTERN), name="id_slug"),)

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    description: Mapped[str | None]

    cards: Mapped[list[Card]] = relationship(back_populates="pool", lazy="raise")
    partners: Mapped[list[Partner]] = relationship(back_populates="pool", lazy="raise")


class Partner(Base):
    """A merchant integrating with Keeper; fees are basis points of the order amount."""

    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint(matches("id", SLUG_PATTERN), name="id_slug"),
        CheckConstraint(one_of("status", PARTNER_STATUSES), name="status"),
        CheckConstraint("deposit_fee_bp BETWEEN 0 AND 10000", name="deposit_fee_bp_range"),
        CheckConstraint("withdrawal_fee_bp BETWEEN 0 AND 10000", name="withdrawal_fee_bp_range"),
        CheckConstraint(matches("callback_url", "^https?://"), name="callback_url_http"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    status: Mapped[str] = mapped_column(server_default="active")
    deposit_fee_bp: Mapped[int]
    withdrawal_fee_bp: Mapped[int]
    callback_url: Mapped[str | None]
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("card_pools.id"), index=True)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    version: Mapped[int] = mapped_column(server_default=text("1"))

    pool: Mapped[CardPool | None] = relationship(back_populates="partners", lazy="raise")
    api_keys: Mapped[list[PartnerApiKey]] = relationship(back_populates="partner", lazy="raise")

    __mapper_args__ = {"version_id_col": version}


class PartnerApiKey(Base):
    """A partner credential. Several may be active at once so keys can be rotated without
    downtime; the secret is stored encrypted (HMAC verification needs it, a hash would not do).
    """

    __tablename__ = "partner_api_keys"
    __table_args__ = (
        CheckConstraint(one_of("status", API_KEY_STATUSES), name="status"),
        CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name="revoked_at_iff_revoked"
        ),
    )

    key_id: Mapped[str] = mapped_column(primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    secret_encrypted: Mapped[bytes]
    status: Mapped[str] = mapped_column(server_default="active")
    created_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    partner: Mapped[Partner] = relationship(back_populates="api_keys", lazy="raise")


class ConsoleUser(Base):
    """A person using the ops console. Only argon2id hashes are accepted, never plain text."""

    __tablename__ = "console_users"
    __table_args__ = (
        CheckConstraint(one_of("role", CONSOLE_ROLES), name="role"),
        CheckConstraint("password_hash LIKE '$argon2id$%'", name="password_hash_argon2id"),
        CheckConstraint(
            "username = lower(username) AND length(username) BETWEEN 1 AND 64",
            name="username_lowercase",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    username: Mapped[str] = mapped_column(unique=True)
    password_hash: Mapped[str]
    role: Mapped[str]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[CreatedAt]


class Card(Base):
    """A receiving card. The PAN is stored encrypted; ``pan_fingerprint`` (a keyed hash of the
    PAN) is UNIQUE so one physical card can never be registered twice, even across pools.
    """

    __tablename__ = "cards"
    __table_args__ = (
        CheckConstraint(matches("pan_masked", PAN_MASKED_PATTERN), name="pan_masked_format"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint(one_of("status", CARD_STATUSES), name="status"),
        CheckConstraint(
            "daily_limit_minor >= 0 AND monthly_limit_minor >= 0"
            " AND daily_count_limit >= 0 AND monthly_count_limit >= 0"
            " AND min_order_minor >= 0 AND max_order_minor >= 0",
            name="limits_non_negative",
        ),
        CheckConstraint("min_order_minor <= max_order_minor", name="order_range"),
        CheckConstraint(
            "daily_limit_minor <= monthly_limit_minor AND daily_count_limit <= monthly_count_limit",
            name="daily_within_monthly",
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_cards_pool_id_status", "pool_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    pool_id: Mapped[str] = mapped_column(ForeignKey("card_pools.id"))
    pan_encrypted: Mapped[bytes]
    pan_masked: Mapped[str]
    pan_fingerprint: Mapped[bytes] = mapped_column(unique=True)
    bank: Mapped[str]
    holder: Mapped[str]
    currency: Mapped[Currency]
    expires_on: Mapped[date]
    status: Mapped[str] = mapped_column(server_default="active")
    daily_limit_minor: Mapped[Money]
    monthly_limit_minor: Mapped[Money]
    daily_count_limit: Mapped[int]
    monthly_count_limit: Mapped[int]
    min_order_minor: Mapped[Money]
    max_order_minor: Mapped[Money]
    holiday_until: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    version: Mapped[int] = mapped_column(server_default=text("1"))

    pool: Mapped[CardPool] = relationship(back_populates="cards", lazy="raise")

    __mapper_args__ = {"version_id_col": version}


class Order(Base):
    """Projection of an order's event stream (the events, not this row, are the truth).

    ``version`` is the version of the newest event folded into the row; projectors write with
    ``INSERT .. ON CONFLICT (uid) DO UPDATE .. WHERE orders.version < excluded.version`` so a
    replayed or reordered event can never roll an order back.
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_order_id"),
        CheckConstraint(one_of("direction", ORDER_DIRECTIONS), name="direction"),
        CheckConstraint(one_of("status", ORDER_STATUSES), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("fee_minor >= 0", name="fee_non_negative"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint(
            "length(partner_order_id) BETWEEN 1 AND 128", name="partner_order_id_length"
        ),
        CheckConstraint(
            matches("payer_card_masked", PAN_MASKED_PATTERN), name="payer_card_masked_format"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_partner_id_created_at", "partner_id", "created_at"),
        Index("ix_orders_card_id_created_at", "card_id", "created_at"),
    )

    uid: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    partner_order_id: Mapped[str]
    direction: Mapped[str]
    status: Mapped[str]
    amount_minor: Mapped[Money]
    fee_minor: Mapped[Money] = mapped_column(server_default=text("0"))
    currency: Mapped[Currency]
    card_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cards.id"))
    payer_card_masked: Mapped[str | None]
    decline_reason: Mapped[str | None]
    decided_by: Mapped[str | None]
    decision_reason: Mapped[str | None]
    callback_url: Mapped[str | None]
    expires_at: Mapped[datetime]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    version: Mapped[int] = mapped_column(BigInteger)

    partner: Mapped[Partner] = relationship(lazy="raise")
    card: Mapped[Card | None] = relationship(lazy="raise")


class OrderEvent(Base):
    """Append-only copy of an order's events. ``event_id`` as primary key makes a redelivered
    Kafka message a no-op (``ON CONFLICT DO NOTHING``); ``(order_uid, seq)`` keeps one history.

    No foreign key to ``orders``: events are recorded by a different agent than the projector
    and may arrive first.
    """

    __tablename__ = "order_events"
    __table_args__ = (
        UniqueConstraint("order_uid", "seq"),
        CheckConstraint("seq >= 0", name="seq_non_negative"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_uid: Mapped[uuid.UUID]
    seq: Mapped[int]
    type: Mapped[str]
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerPosting(Base):
    """One leg of a double-entry ledger transaction.

    A transaction is every leg sharing ``(order_uid, kind)``; a deferred constraint trigger
    checks at COMMIT that its legs sum to zero per currency, and ``UNIQUE(order_uid, kind,
    account)`` means a redelivered event can never post the same movement twice. Postings are
    append-only: corrections are new postings, never edits.
    """

    __tablename__ = "ledger_postings"
    __table_args__ = (
        UniqueConstraint("order_uid", "kind", "account"),
        CheckConstraint(one_of("kind", POSTING_KINDS), name="kind"),
        CheckConstraint("amount_minor <> 0", name="amount_non_zero"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint(matches("account", ACCOUNT_PATTERN), name="account_format"),
        CheckConstraint(
            "CASE WHEN split_part(account, ':', 1) = 'partner'"
            " THEN partner_id IS NOT NULL AND split_part(account, ':', 2) = partner_id"
            " ELSE partner_id IS NULL END",
            name="partner_matches_account",
        ),
        Index("ix_ledger_postings_account_currency", "account", "currency"),
    )

    posting_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    order_uid: Mapped[uuid.UUID]
    kind: Mapped[str]
    account: Mapped[str]
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    currency: Mapped[Currency]
    amount_minor: Mapped[Money]
    posted_at: Mapped[datetime] = mapped_column(server_default=func.now())


class BalanceSnapshot(Base):
    """A partner's balance per currency, derived from postings; the CHECKs make an overdraft
    impossible to record, and ``version`` orders concurrent snapshot writers.
    """

    __tablename__ = "balance_snapshots"
    __table_args__ = (
        CheckConstraint("available_minor >= 0", name="available_non_negative"),
        CheckConstraint("held_minor >= 0", name="held_non_negative"),
        CheckConstraint(matches("currency", CURRENCY_PATTERN), name="currency_iso4217"),
        CheckConstraint("version >= 0", name="version_non_negative"),
    )

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    currency: Mapped[Currency] = mapped_column(primary_key=True)
    available_minor: Mapped[Money] = mapped_column(server_default=text("0"))
    held_minor: Mapped[Money] = mapped_column(server_default=text("0"))
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[UpdatedAt]

    partner: Mapped[Partner] = relationship(lazy="raise")


class AuditLog(Base):
    """Who changed what, with before/after images. Append-only, enforced by a trigger."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity_entity_id_at", "entity", "entity_id", "at"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str]
    action: Mapped[str]
    entity: Mapped[str]
    entity_id: Mapped[str]
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
