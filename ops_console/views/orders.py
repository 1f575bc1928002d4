"""Orders: search and filter by partner, status, direction, card and time; an order in full
with its history (and the decision form while it awaits one, for operators and admins)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from db.models import ORDER_DIRECTIONS, ORDER_STATUSES
from domain.text import LABEL
from ops_console import auth, fmt, form_text, queries, runtime
from ops_console.order_view import show_flash, show_order
from ops_console.roles import page_title

OPEN_KEY = "orders_open"

who = auth.require("orders")
st.title(page_title("orders"))
show_flash()
engine = runtime.engine()

with st.expander("Filters", expanded=True):
    row1 = st.columns(3)
    partners = row1[0].multiselect("Partner", queries.partner_ids(engine), key="f_partner")
    statuses = row1[1].multiselect("Status", list(ORDER_STATUSES), key="f_status")
    direction = row1[2].selectbox("Direction", ["any", *ORDER_DIRECTIONS], key="f_direction")
    row2 = st.columns(4)
    card = row2[0].text_input("Card (masked digits, e.g. last four)", key="f_card")
    search = row2[1].text_input("Order id or partner's order id", key="f_search")
    today = datetime.now(UTC).date()
    start = row2[2].date_input("Created from", today - timedelta(days=30), key="f_from")
    end = row2[3].date_input("Created until (inclusive)", today, key="f_to")


def _day(value: object) -> datetime | None:
    return datetime.combine(value, time(), tzinfo=UTC) if isinstance(value, date) else None


created_from = _day(start)
created_to = _day(end)
if created_from and created_to and created_to < created_from:
    st.error("'Created until' is before 'Created from'.")
    st.stop()
if form_text.refused(("Card", card, LABEL), ("Order id", search, LABEL)):
    st.stop()
found = queries.orders(
    engine,
    partner_ids=partners or None,
    statuses=statuses or None,
    direction=None if direction == "any" else direction,
    card_masked=card or None,
    created_from=created_from,
    created_to=created_to + timedelta(days=1) if created_to else None,
    search=search or None,
)
shown = found.assign(
    amount=[fmt.money(a, c) for a, c in zip(found["amount_minor"], found["currency"], strict=True)]
)
st.caption(f"{len(found)} order(s), newest first (at most {queries.ORDERS_LIMIT})")
st.dataframe(
    shown[
        [
            "created_at",
            "partner_id",
            "partner_order_id",
            "direction",
            "status",
            "amount",
            "card",
            "payer_card_masked",
            "decided_by",
            "uid",
        ]
    ],
    hide_index=True,
    width="stretch",
)
st.download_button(
    "Download CSV",
    found.to_csv(index=False).encode(),
    file_name="orders.csv",
    mime="text/csv",
    key="orders_csv",
)

if not found.empty:
    labels = {
        row.uid: f"{row.partner_order_id} · {row.partner_id} · {row.status} · "
        f"{fmt.money(row.amount_minor, row.currency)}"
        for row in found.itertuples(index=False)
    }
    options = ["", *labels]
    current = st.session_state.get(OPEN_KEY)
    chosen = st.selectbox(
        "Open an order",
        options,
        index=options.index(current) if current in options else 0,
        format_func=lambda uid: labels.get(uid, "—"),
        key="orders_pick",
    )
    if chosen:
        st.session_state[OPEN_KEY] = chosen
        st.divider()
        show_order(who, chosen, key=OPEN_KEY)
