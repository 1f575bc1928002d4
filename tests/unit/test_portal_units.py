"""The partner portal's page helpers (no I/O): tables from dataclass rows, money columns,
and the filters an export records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ops_console import portal


@dataclass(frozen=True)
class Row:
    currency: str
    amount_minor: int
    fee_minor: int


def test_a_table_has_every_field_even_when_empty():
    assert list(portal.table([], Row).columns) == ["currency", "amount_minor", "fee_minor"]
    frame = portal.table([Row("RUB", 150_000, 3_750)], Row)
    assert frame.to_dict("records") == [
        {"currency": "RUB", "amount_minor": 150_000, "fee_minor": 3_750}
    ]


def test_money_columns_are_shown_in_their_currency():
    frame = portal.table([Row("RUB", 150_000, 3_750), Row("JPY", -500, 0)], Row)
    shown = portal.with_money(frame, "amount_minor", "fee_minor")
    assert list(shown["amount"]) == ["1,500.00 RUB", "-500 JPY"]
    assert list(shown["fee"]) == ["37.50 RUB", "0 JPY"]
    assert list(shown["amount_minor"]) == [150_000, -500]  # the raw figure stays for the CSV
    assert "amount" not in frame.columns  # the caller's frame is left alone


def test_export_filters_are_recorded_as_plain_json_values():
    moment = datetime(2026, 12, 7, tzinfo=UTC)
    filters = {"statuses": ["approved"], "direction": None, "from": moment, "limit": 500}
    assert {k: portal._plain(v) for k, v in filters.items()} == {
        "statuses": ["approved"],
        "direction": None,
        "from": "2026-12-07 00:00:00+00:00",
        "limit": 500,
    }
