"""Declarative base, naming convention, column shapes and the CHECK vocabulary.

Every model module imports from here, and only from here, so the conventions in the package
docstring are spelled once. The lists below are the allowed values of ``text`` enumerations;
the migrations spell the same lists out literally (a migration must never change meaning when
this file changes).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, mapped_column

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

PARTNER_STATUSES = ("active", "suspended", "closed")
API_KEY_STATUSES = ("active", "revoked")
#: ``partner``: a partner's own user, bound to that partner (``console_users.partner_id``).
CONSOLE_ROLES = ("admin", "operator", "analyst", "partner")
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
POSTING_KINDS = ("hold", "release", "capture", "deposit_credit", "dispute_credit")

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
