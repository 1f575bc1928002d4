"""The analyst dashboards with ``AppTest`` against a real PostgreSQL, and the figures
themselves from the seeded history (three decisions, two approvals, one expiry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ops_console import analytics
from tests.fixtures.console import Console, seed_history, sign_in

pytestmark = pytest.mark.integration

#: A fixed hour long enough ago to be inside the default 30-day window.
BASE = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)


@pytest.fixture
def history(console_light: Console) -> dict[str, str]:
    return seed_history(console_light, BASE)


def dashboards(console: Console) -> AppTest:
    at = sign_in(console.app(), "ann")
    at.switch_page("views/dashboards.py").run()
    assert not at.exception, at.exception
    return at


def tables(at: AppTest) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def test_figures(console_light: Console, history: dict[str, str]):
    engine = console_light.engine
    since, until = BASE - timedelta(days=1), BASE + timedelta(days=1)

    by_partner = analytics.turnover(engine, "partner", "day", since, until)
    assert by_partner[["partner", "approved_orders", "turnover_minor"]].values.tolist() == [
        ["shop", 2, 150_000]
    ]
    by_hour = analytics.turnover(engine, "card", "hour", since, until)
    assert by_hour["turnover_minor"].tolist() == [100_000, 50_000]  # 10:01 and 11:11
    assert set(by_hour["card"]) == {"411111******1111"}
    assert analytics.turnover(engine, "pool", "month", since, until)["pool"].tolist() == ["main"]

    [rates] = analytics.outcome_rates(engine, "day", since, until).to_dict("records")
    assert (rates["orders"], rates["approved"], rates["expired"]) == (5, 2, 1)
    assert rates["approval_rate"] == pytest.approx(2 / 3, abs=1e-4)  # 2 of 3 decided
    assert rates["expiry_rate"] == pytest.approx(1 / 4, abs=1e-4)  # 1 of 4 that closed

    reaction = analytics.reaction_times(engine, since, until).set_index("operator")
    assert reaction.loc["(all)", "decisions"] == 3
    assert reaction.loc["(all)", "p50_s"] == pytest.approx(90)
    assert reaction.loc["olga", "max_s"] == pytest.approx(300)
    assert reaction.loc["ivan", "p50_s"] == pytest.approx(90)

    fees = analytics.fees_earned(engine, "month", since, until)
    assert fees["fees_minor"].sum() == 3_750


def test_page_shows_charts_tables_and_csv(console_light: Console, history: dict[str, str]):
    at = dashboards(console_light)
    turnover, rates, reaction, fees = tables(at)
    assert turnover["turnover_minor"].sum() == 150_000
    assert rates["approved"].sum() == 2
    assert "(all)" in set(reaction["operator"])
    assert fees["fees_minor"].sum() == 3_750
    assert len(at.get("arrow_bar_chart") or at.get("bar_chart") or at.get("vega_lite_chart")) >= 1
    labels = [b.label for b in at.get("download_button")]
    assert labels == [
        "Download turnover-by-partner-per-day.csv",
        "Download rates-per-day.csv",
        "Download reaction-times.csv",
        "Download fees-per-day.csv",
    ]

    at.selectbox(key="d_by").select("card")
    at.selectbox(key="d_grain").select("hour").run()
    turnover = tables(at)[0]
    assert turnover["card"].tolist() == ["411111******1111", "411111******1111"]


def test_empty_period(console_light: Console, history: dict[str, str]):
    at = dashboards(console_light)
    at.date_input(key="d_from").set_value((BASE + timedelta(days=1)).date()).run()
    assert "No approved order in this period." in [i.value for i in at.info]
    at.date_input(key="d_to").set_value(BASE.date()).run()
    assert at.error


def test_operators_cannot_open_dashboards(console_light: Console, history: dict[str, str]):
    at = sign_in(console_light.app(), "olga")
    at.switch_page("views/dashboards.py").run()
    assert "Dashboards" not in [t.value for t in at.title]
    assert not at.dataframe
