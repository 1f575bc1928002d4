"""Schema conventions checked on the SQLAlchemy metadata alone (no database needed)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import CHAR, BigInteger, DateTime, PrimaryKeyConstraint, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import configure_mappers
from sqlalchemy.schema import CreateIndex, CreateTable

from db import models
from db.models import Base

TABLES = sorted(Base.metadata.tables.values(), key=lambda table: table.name)
# Words that mean "an amount of money" when they appear in a column name.
MONEY_WORDS = re.compile(r"amount|fee|balance|limit|price|available|held|total")
# Suffixes that say what unit a money-ish column is in (counts are not money).
UNIT_SUFFIX = re.compile(r"(_minor|_bp|_count_limit)$")
POSTGRES_MAX_IDENTIFIER = 63


def by_name(table: Table) -> str:
    return table.name


def test_schema_has_the_expected_tables() -> None:
    assert {table.name for table in TABLES} == {
        "api_nonces",
        "audit_log",
        "balance_snapshots",
        "bank_templates",
        "callback_deliveries",
        "callback_secrets",
        "card_alerts",
        "card_pools",
        "card_turnover",
        "cards",
        "console_recovery_codes",
        "console_second_factors",
        "console_sessions",
        "console_users",
        "dead_letters",
        "dispute_receipts",
        "disputes",
        "devices",
        "ledger_postings",
        "login_challenges",
        "login_throttle",
        "notification_parses",
        "notifications",
        "order_events",
        "orders",
        "partner_api_keys",
        "partners",
    }


@pytest.mark.parametrize("table", TABLES, ids=by_name)
def test_every_table_has_a_primary_key(table: Table) -> None:
    assert table.primary_key.columns, f"{table.name} has no primary key"


@pytest.mark.parametrize("table", TABLES, ids=by_name)
def test_money_columns_are_bigint_minor_units(table: Table) -> None:
    for column in table.columns:
        if column.name.endswith("_minor"):
            assert isinstance(column.type, BigInteger), f"{table.name}.{column.name} not BIGINT"
            assert not column.nullable, f"{table.name}.{column.name} is nullable"
        if MONEY_WORDS.search(column.name):
            assert UNIT_SUFFIX.search(column.name), (
                f"{table.name}.{column.name} looks like money but names no unit"
            )


@pytest.mark.parametrize("table", TABLES, ids=by_name)
def test_amounts_travel_with_a_currency(table: Table) -> None:
    if any(column.name.endswith("_minor") for column in table.columns):
        currency = table.columns.get("currency")
        assert currency is not None, f"{table.name} has amounts but no currency"
        assert isinstance(currency.type, CHAR)
        assert currency.type.length == 3
        assert not currency.nullable


@pytest.mark.parametrize("table", TABLES, ids=by_name)
def test_timestamps_are_timezone_aware(table: Table) -> None:
    for column in table.columns:
        if isinstance(column.type, DateTime):
            assert column.type.timezone, f"{table.name}.{column.name} is timestamp without tz"


@pytest.mark.parametrize("table", TABLES, ids=by_name)
def test_foreign_keys_are_indexed(table: Table) -> None:
    """Every FK column leads some index, so joins and ON DELETE checks never scan a table."""
    leading = {index.columns[0].name for index in table.indexes}
    leading |= {
        next(iter(constraint.columns)).name
        for constraint in table.constraints
        if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint)
    }
    for fk in table.foreign_keys:
        assert fk.parent.name in leading, f"{table.name}.{fk.parent.name} has no index"


def test_relationships_never_lazy_load() -> None:
    configure_mappers()
    for mapper in Base.registry.mappers:
        for relationship in mapper.relationships:
            assert relationship.lazy == "raise", f"{mapper.class_.__name__}.{relationship.key}"


@pytest.mark.parametrize("table", TABLES, ids=by_name)
def test_ddl_names_fit_postgres_identifiers(table: Table) -> None:
    """PostgreSQL silently truncates names past 63 bytes; two constraints could then collide."""
    dialect = postgresql.dialect()
    ddl = [str(CreateTable(table).compile(dialect=dialect))]
    ddl += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    names = re.findall(r"(?:CONSTRAINT|INDEX) (\w+)", "\n".join(ddl))
    assert names, f"no named constraints found for {table.name}"
    for name in names:
        assert len(name) <= POSTGRES_MAX_IDENTIFIER, name


def test_check_lists_agree_with_the_domain() -> None:
    """A status the domain can produce but a CHECK refuses would wedge a projector."""
    from domain.cards import CardStatus
    from domain.ledger import PostingKind
    from domain.orders import Direction, OrderStatus

    assert set(models.ORDER_STATUSES) == {status.value for status in OrderStatus}
    assert set(models.ORDER_DIRECTIONS) == {direction.value for direction in Direction}
    assert set(models.CARD_STATUSES) == {status.value for status in CardStatus}
    assert set(models.POSTING_KINDS) == {kind.value for kind in PostingKind}
