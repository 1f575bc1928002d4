"""Analyst dashboards: turnover by card, pool and partner per hour, day or month; approval
and expiry rates; operator reaction times; fees earned. Every table can be downloaded as
CSV, exactly as shown."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from ops_console import analytics, auth, runtime
from ops_console.roles import page_title

auth.require("dashboards")
st.title(page_title("dashboards"))


@st.cache_data(ttl=30, max_entries=64, show_spinner=False)
def load(database_url: str, kind: str, grain: str, by: str, since: datetime, until: datetime):  # type: ignore[no-untyped-def]
    """Figures, cached for 30 s per database and filter (dashboards need not be live)."""
    engine = runtime.engine_for(database_url)
    if kind == "turnover":
        return analytics.turnover(engine, by, grain, since, until)  # type: ignore[arg-type]
    if kind == "rates":
        return analytics.outcome_rates(engine, grain, since, until)  # type: ignore[arg-type]
    if kind == "reaction":
        return analytics.reaction_times(engine, since, until)
    return analytics.fees_earned(engine, grain, since, until)  # type: ignore[arg-type]


def csv(table: pd.DataFrame, name: str) -> None:
    st.download_button(
        f"Download {name}.csv",
        table.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv_{name}",
    )


columns = st.columns(4)
today = datetime.now(UTC).date()
start = columns[0].date_input("From", today - timedelta(days=30), key="d_from")
end = columns[1].date_input("Until (inclusive)", today, key="d_to")
grain = columns[2].selectbox("Per", analytics.GRAINS, index=1, key="d_grain")
by = columns[3].selectbox("Turnover by", analytics.DIMENSIONS, index=2, key="d_by")
if not isinstance(start, date) or not isinstance(end, date) or end < start:
    st.error("Choose a period whose end is not before its start.")
    st.stop()
since = datetime.combine(start, time(), tzinfo=UTC)
until = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
url = runtime.settings().database_url

st.subheader(f"Turnover by {by} per {grain}")
turnover = load(url, "turnover", grain, by, since, until)
if turnover.empty:
    st.info("No approved order in this period.")
else:
    chart = turnover.assign(label=turnover[by].fillna("—") + " " + turnover["currency"].str.strip())
    st.bar_chart(chart, x="period", y="turnover_minor", color="label", stack=True)
st.dataframe(turnover, hide_index=True, width="stretch")
csv(turnover, f"turnover-by-{by}-per-{grain}")

st.subheader(f"Approval and expiry rates per {grain}")
rates = load(url, "rates", grain, by, since, until)
if not rates.empty:
    st.line_chart(rates, x="period", y=["approval_rate", "expiry_rate"])
st.dataframe(rates, hide_index=True, width="stretch")
csv(rates, f"rates-per-{grain}")

st.subheader("Operator reaction time (confirmation to decision, seconds)")
reaction = load(url, "reaction", grain, by, since, until)
per_operator = reaction[(reaction["operator"] != "(all)") & (reaction["decisions"] > 0)]
if not per_operator.empty:
    st.bar_chart(per_operator, x="operator", y=["p50_s", "p90_s", "p99_s"], stack=False)
st.dataframe(reaction, hide_index=True, width="stretch")
csv(reaction, "reaction-times")

st.subheader(f"Fees earned per {grain}")
fees = load(url, "fees", grain, by, since, until)
if not fees.empty:
    st.bar_chart(fees, x="period", y="fees_minor", color="partner_id")
st.dataframe(fees, hide_index=True, width="stretch")
csv(fees, f"fees-per-{grain}")
