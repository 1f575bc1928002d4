"""Partner portal: the partner's own orders, filtered by status, direction, time and id,
with CSV export (audited) and one order in full with its history."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import streamlit as st

from db.models import ORDER_DIRECTIONS, ORDER_STATUSES
from db.repositories import portal as repo
from domain.text import LABEL
from ops_console import fmt, form_text, portal
from ops_console.roles import page_title

PAGE: Final = "portal_orders"
COLUMNS: Final = [
    "created_at",
    "partner_order_id",
    "direction",
    "status",
    "amount",
    "fee",
    "card",
    "payer_card_masked",
    "decline_reason",
    "uid",
]

scope = portal.page_scope(PAGE)
st.title(page_title(PAGE))
st.caption(f"Partner **{scope.partner_id}**")

with st.expander("Filters", expanded=True):
    row = st.columns(5)
    statuses = row[0].multiselect("Status", list(ORDER_STATUSES), key="po_status")
    direction = row[1].selectbox("Direction", ["any", *ORDER_DIRECTIONS], key="po_direction")
    search = row[2].text_input("Order id or your order id", key="po_search")
    today = datetime.now(UTC).date()
    start = row[3].date_input("Created from", today - timedelta(days=30), key="po_from")
    end = row[4].date_input("Created until (inclusive)", today, key="po_to")


def _day(value: object) -> datetime | None:
    return datetime.combine(value, time(), tzinfo=UTC) if isinstance(value, date) else None


created_from, created_to = _day(start), _day(end)
if created_from and created_to and created_to < created_from:
    st.error("'Created until' is before 'Created from'.")
    st.stop()
if form_text.refused(("Order id", search, LABEL)):
    st.stop()
filters = {
    "statuses": statuses or None,
    "direction": None if direction == "any" else direction,
    "created_from": created_from,
    "created_to": created_to + timedelta(days=1) if created_to else None,
    "search": search or None,
}
found = portal.table(portal.read(repo.orders, scope, **filters), repo.PortalOrder)
shown = portal.with_money(found, "amount_minor", "fee_minor")
st.caption(f"{len(found)} order(s), newest first (at most {repo.ORDERS_LIMIT})")
st.dataframe(shown[COLUMNS], hide_index=True, width="stretch")
portal.export_button(
    found,
    page=PAGE,
    what="orders",
    filters=filters,
    file_name=f"{scope.partner_id}-orders.csv",
    key="po_csv",
)

if found.empty:
    st.stop()
labels = {
    o.uid: f"{o.partner_order_id} · {o.status} · {fmt.money(o.amount_minor, o.currency)}"
    for o in found.itertuples(index=False)
}
chosen = st.selectbox(
    "Open an order", ["", *labels], format_func=lambda u: labels.get(u, "—"), key="po_pick"
)
if not chosen:
    st.stop()
order = portal.read(repo.order, scope, chosen)
if order is None:
    st.warning(f"No order {chosen}.")
    st.stop()
st.divider()
st.subheader(f"Order {order.partner_order_id} ({order.direction})")
st.caption(f"uid {order.uid}")
top = st.columns(4)
top[0].metric("Amount", fmt.money(order.amount_minor, order.currency))
top[1].metric("Fee", fmt.money(order.fee_minor, order.currency))
top[2].metric("Status", order.status)
top[3].metric("Card", order.card or order.payer_card_masked or "—")
st.table(
    {
        "field": ["created", "expires", "last change", "decline reason"],
        "value": [
            fmt.when(order.created_at),
            fmt.when(order.expires_at),
            fmt.when(order.updated_at),
            order.decline_reason or "—",
        ],
    }
)
st.markdown("**History**")
st.dataframe(
    portal.table(portal.read(repo.order_history, scope, order.uid), repo.OrderStep),
    hide_index=True,
    width="stretch",
)
