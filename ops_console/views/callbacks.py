"""Callback deliveries: the delivery log filtered by partner, status and order; one delivery
in full (attempts, last answer, next attempt, dead-lettered or not); *Resend* makes a
finished one pending again (``db.repositories.callbacks.resend``, audited as
``callback.resend``). Signing secrets never appear here; admins manage them on the
callback secrets page."""

from __future__ import annotations

from typing import Final

import streamlit as st

from db.models.callbacks import DELIVERY_STATUSES
from db.repositories import callbacks as repo
from ops_console import auth, deliveries, queries, runtime
from ops_console.delivery_picker import pick_delivery
from ops_console.order_view import flash, show_flash
from ops_console.roles import may_open, page_title

PAGE: Final = "callbacks"
ANY: Final = "any"

auth.require(PAGE)
st.title(page_title(PAGE))
show_flash()
engine = runtime.engine()

with st.expander("Filters", expanded=True):
    row = st.columns(3)
    partner = row[0].selectbox("Partner", [ANY, *queries.partner_ids(engine)], key="cb_partner")
    status = row[1].selectbox("Status", [ANY, *DELIVERY_STATUSES], key="cb_status")
    order_text = row[2].text_input("Order uid", key="cb_order")

try:
    order_uid = deliveries.parse_uuid(order_text, "The order uid")
except ValueError as error:
    st.error(str(error))
    st.stop()

counts = deliveries.status_counts(engine, None if partner == ANY else partner)
for column, name in zip(st.columns(len(DELIVERY_STATUSES)), DELIVERY_STATUSES, strict=True):
    column.metric(name, counts.get(name, 0))

with runtime.sessions()() as session:
    found = repo.list_deliveries(
        session,
        partner_id=None if partner == ANY else partner,
        status=None if status == ANY else status,
        order_uid=order_uid,
        limit=deliveries.LIST_LIMIT,
    )
st.caption(f"{len(found)} deliver(ies), newest first (at most {deliveries.LIST_LIMIT})")
st.dataframe(deliveries.table(found), hide_index=True, width="stretch")

wanted = pick_delivery(found, "cb")
if wanted is None:
    st.stop()

with runtime.sessions()() as session:
    view = repo.get_delivery(session, wanted)
if view is None:
    st.warning(f"Unknown delivery {wanted}: no callback delivery has this id.")
    st.stop()

st.table(deliveries.facts(view))
with st.expander("Body sent (the exact bytes the partner verifies)"):
    st.code(view.body, language="json")

if view.status == "pending":
    st.caption("Pending: the sender tries it at its next attempt; there is nothing to resend.")
elif view.status == "delivered":
    st.caption(
        "Delivered already: a resend sends the same callback again (same Keeper-Delivery-Id, "
        "so the partner can dedupe it)."
    )
elif view.status == "skipped":
    st.caption(
        "Skipped for want of a callback URL: set the partner's callback URL first, or the "
        "resend is skipped again."
    )


def resend_shown(delivery_id: str) -> None:
    """The *Resend* click, for the delivery that was on screen. A callback, so the click
    reaches the repository even if the sender or another operator changed the delivery
    meanwhile (the repository decides; the page says what happened). It runs before the
    page's own role check, so it checks the role itself."""
    acting = auth.current_user(touch=False)
    if acting is None or not may_open(acting.role, PAGE):
        return  # the run that follows refuses the page
    outcome = deliveries.resend(runtime.sessions(), delivery_id, acting.username)
    flash(outcome.kind, outcome.message)


st.button(
    "Resend",
    key="cb_resend",
    type="primary",
    disabled=view.status == "pending",
    on_click=resend_shown,
    args=(str(view.delivery_id),),
)
