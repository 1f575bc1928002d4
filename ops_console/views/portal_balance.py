"""Partner portal: the partner's balance per currency and its ledger, each posting with the
fee Keeper earned in the same transaction; CSV export (audited)."""

from __future__ import annotations

from typing import Final

import streamlit as st

from db.repositories import balances
from db.repositories import portal as repo
from ops_console import portal
from ops_console.roles import page_title

PAGE: Final = "portal_balance"

scope = portal.page_scope(PAGE)
st.title(page_title(PAGE))
st.caption(f"Partner **{scope.partner_id}**")

held = portal.table(portal.read(repo.partner_balances, scope), balances.BalanceView)
st.subheader("Balance")
if held.empty:
    st.info("No balance yet: it appears with your first approved deposit.")
else:
    held["total_minor"] = held["available_minor"] + held["held_minor"]
    shown = portal.with_money(held, "available_minor", "held_minor", "total_minor")
    st.dataframe(
        shown[["currency", "available", "held", "total", "updated_at"]],
        hide_index=True,
        width="stretch",
    )
    st.caption("Held: reserved for withdrawals in progress.")

st.subheader("Ledger")
currencies = sorted(set(held["currency"])) if not held.empty else []
currency = st.selectbox("Currency", ["all", *currencies], key="pb_currency")
filters = {"currency": None if currency == "all" else currency}
lines = portal.table(portal.read(repo.ledger, scope, **filters), repo.LedgerLine)
st.caption(
    f"{len(lines)} posting(s) on your accounts, newest first (at most {repo.LEDGER_LIMIT}); "
    "amount is the change of the account, fee what Keeper earned in the same transaction"
)
st.dataframe(
    portal.with_money(lines, "amount_minor", "fee_minor")[
        ["posted_at", "partner_order_id", "kind", "account", "amount", "fee", "order_uid"]
    ],
    hide_index=True,
    width="stretch",
)
portal.export_button(
    lines,
    page=PAGE,
    what="ledger",
    filters=filters,
    file_name=f"{scope.partner_id}-ledger.csv",
    key="pb_csv",
)
