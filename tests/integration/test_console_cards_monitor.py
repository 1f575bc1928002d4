"""The card monitoring page with ``AppTest`` against a real PostgreSQL: turnover against
limits, state (holiday, expiring, expired), and the alerts.

Until the page is listed in ``ops_console.roles`` (the console's navigation), the test
registers it there itself for the duration of the test, exactly as the listing will.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from db.crypto import SecretBox
from db.repositories import cards
from ops_console import card_queries, roles
from tests.fixtures.console import Console, sign_in

pytestmark = pytest.mark.integration

PAGE_PATH = "views/card_monitoring.py"
ENTRY = ("card_monitoring", PAGE_PATH, "Card monitoring", ":material/monitor_heart:")


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        roles.PAGE_ROLES,
        "card_monitoring",
        frozenset({roles.OPERATOR, roles.ADMIN, roles.ANALYST}),
    )
    operations = [p for p in roles.SECTIONS["Operations"] if p[0] != ENTRY[0]]
    monkeypatch.setitem(roles.SECTIONS, "Operations", [*operations, ENTRY])


def add_card(console: Console, pan: str, expires_on: date, **limits: int) -> uuid.UUID:
    values = {
        "daily_limit_minor": 1_000_000,
        "monthly_limit_minor": 10_000_000,
        "daily_count_limit": 10,
        "monthly_count_limit": 100,
        "min_order_minor": 100,
        "max_order_minor": 500_000,
    } | limits
    with console.sessions.begin() as s:
        return cards.add_card(
            s,
            SecretBox.from_settings(),
            pool_id="main",
            pan=pan,
            bank="Bank",
            holder="IVAN P",
            currency="RUB",
            expires_on=expires_on,
            actor="test",
            **values,
        )


def window(console: Console, card_id: uuid.UUID, kind: str, now: datetime, **v: Any) -> None:
    start = {
        "day": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "month": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    }[kind]
    end = start + (timedelta(days=1) if kind == "day" else timedelta(days=40))
    console.execute(
        "INSERT INTO card_turnover (card_id, window_kind, window_start, window_end, time_zone,"
        " currency, in_minor, in_count, version)"
        " VALUES (:card, :kind, :start, :end, 'UTC', 'RUB', :minor, :count, :count)",
        card=card_id,
        kind=kind,
        start=start,
        end=end,
        minor=v["minor"],
        count=v["count"],
    )


@pytest.fixture
def seeded(console_light: Console) -> dict[str, uuid.UUID]:
    now = datetime.now(UTC)
    today = now.date()
    busy = add_card(console_light, "2202200000001238", today + timedelta(days=400))
    soon = add_card(console_light, "2202200000005676", today + timedelta(days=10))
    gone = add_card(console_light, "2202200000009017", today - timedelta(days=3))
    window(console_light, busy, "day", now, minor=800_000, count=8)
    window(console_light, busy, "month", now, minor=2_500_000, count=20)
    console_light.execute(
        "UPDATE cards SET holiday_until = :until WHERE id = :card",
        until=now + timedelta(hours=5),
        card=busy,
    )
    console_light.execute(
        "INSERT INTO card_alerts (alert_id, card_id, kind, at, metric, threshold_pct, used,"
        " ceiling, window_kind, window_start)"
        " VALUES (:id, :card, 'limit_share', :at, 'daily_amount', 80, 800000, 1000000, 'day',"
        " :at)",
        id=uuid.uuid4(),
        card=busy,
        at=now - timedelta(minutes=5),
    )
    console_light.execute(
        "INSERT INTO card_alerts (alert_id, card_id, kind, at, expires_on)"
        " VALUES (:id, :card, 'expiring_soon', :at, :exp)",
        id=uuid.uuid4(),
        card=soon,
        at=now - timedelta(hours=1),
        exp=today + timedelta(days=10),
    )
    return {"busy": busy, "soon": soon, "gone": gone}


def page(console: Console, user: str) -> AppTest:
    at = sign_in(console.app(), user)
    at.switch_page(PAGE_PATH).run()
    assert not at.exception, at.exception
    return at


def test_queries_compare_turnover_with_limits(
    console_light: Console, seeded: dict[str, uuid.UUID]
) -> None:
    overview = card_queries.with_shares(
        card_queries.card_overview(console_light.engine, datetime.now(UTC))
    ).set_index("card_id")
    busy = overview.loc[str(seeded["busy"])]
    assert (busy["day_minor"], busy["day_count"], busy["month_minor"]) == (800_000, 8, 2_500_000)
    assert busy["day_amount_pct"] == pytest.approx(80.0)
    assert busy["month_count_pct"] == pytest.approx(20.0)
    idle = overview.loc[str(seeded["soon"])]
    assert (idle["day_minor"], idle["month_count"]) == (0, 0)


@pytest.mark.parametrize("user", ["ann", "olga", "adam"])
def test_page_shows_turnover_state_and_alerts(
    console_light: Console, seeded: dict[str, uuid.UUID], user: str
) -> None:
    at = page(console_light, user)
    assert [t.value for t in at.title] == ["Card monitoring"]
    overview, alerts = (d.value for d in at.dataframe)
    assert isinstance(overview, pd.DataFrame)
    by_card = overview.set_index("card")
    assert by_card.loc["220220******1238", "state"] == "on holiday"
    assert by_card.loc["220220******1238", "today"] == "8,000.00 RUB / 10,000.00 RUB"
    assert by_card.loc["220220******1238", "today %"] == pytest.approx(80.0)
    assert by_card.loc["220220******5676", "state"] == "expiring soon"
    assert by_card.loc["220220******9017", "state"] == "expired"
    assert list(alerts["kind"]) == ["limit_share", "expiring_soon"]
    assert [b.label for b in at.get("download_button")] == ["Download card-alerts.csv"]


def test_alerts_filter_by_kind(console_light: Console, seeded: dict[str, uuid.UUID]) -> None:
    at = page(console_light, "ann")
    at.multiselect(key="cm_kinds").set_value(["expiring_soon"]).run()
    [_, alerts] = (d.value for d in at.dataframe)
    assert list(alerts["kind"]) == ["expiring_soon"]
