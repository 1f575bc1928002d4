"""Balances and ledger: each partner's balance per currency, Keeper's own accounts, and the
postings behind them."""

from __future__ import annotations

import streamlit as st

from ops_console import auth, fmt, queries, runtime
from ops_console.roles import page_title

auth.require("balances")
st.title(page_title("balances"))
engine = runtime.engine()

balances = queries.balances(engine)
st.subheader("Partner balances")
if balances.empty:
    st.info("No balance yet: balances appear with a partner's first posting.")
else:
    money = {
        column: [
            fmt.money(v, c) for v, c in zip(balances[column], balances["currency"], strict=True)
        ]
        for column in ("available_minor", "held_minor", "total_minor")
    }
    st.dataframe(
        balances.assign(
            available=money["available_minor"], held=money["held_minor"], total=money["total_minor"]
        )[["partner_id", "partner_name", "currency", "available", "held", "total", "updated_at"]],
        hide_index=True,
        width="stretch",
    )

st.subheader("Keeper's accounts")
system = queries.system_accounts(engine)
if system.empty:
    st.info("No fee or settlement posting yet.")
else:
    st.dataframe(
        system.assign(
            balance=[
                fmt.money(v, c)
                for v, c in zip(system["balance_minor"], system["currency"], strict=True)
            ]
        )[["account", "currency", "balance", "postings"]],
        hide_index=True,
        width="stretch",
    )

st.subheader("Postings")
columns = st.columns(2)
partner = columns[0].selectbox(
    "Partner", ["all", *queries.partner_ids(engine)], key="postings_partner"
)
currencies = sorted(set(balances["currency"])) if not balances.empty else []
currency = columns[1].selectbox("Currency", ["all", *currencies], key="postings_currency")
postings = queries.postings(
    engine,
    partner_id=None if partner == "all" else partner,
    currency=None if currency == "all" else currency,
)
st.caption(
    f"{len(postings)} posting leg(s), newest first; a leg's amount is the change of its account"
)
st.dataframe(postings, hide_index=True, width="stretch")
st.download_button(
    "Download CSV",
    postings.to_csv(index=False).encode(),
    file_name="postings.csv",
    mime="text/csv",
    key="postings_csv",
)
