"""Partner portal: the callbacks Keeper sent (or is sending) to the partner, one in full, and
*Resend* for a finished one (audited as ``callback.resend`` with the partner user as actor).
A delivery id of another partner is answered like an unknown one."""

from __future__ import annotations

from typing import Final

import streamlit as st

from db.models.callbacks import DELIVERY_STATUSES
from db.repositories import portal as repo
from db.repositories import portal_actions
from db.repositories.errors import InvalidInput, NotFound
from ops_console import deliveries, fmt, portal, runtime
from ops_console.delivery_picker import pick_delivery
from ops_console.order_view import flash, show_flash
from ops_console.roles import page_title

PAGE: Final = "portal_callbacks"
ANY: Final = "any"

scope = portal.page_scope(PAGE)
st.title(page_title(PAGE))
st.caption(f"Partner **{scope.partner_id}**")
show_flash()

row = st.columns(2)
status = row[0].selectbox("Status", [ANY, *DELIVERY_STATUSES], key="pc_status")
order_text = row[1].text_input("Order uid", key="pc_order")
try:
    order_uid = deliveries.parse_uuid(order_text, "The order uid")
except ValueError as error:
    st.error(str(error))
    st.stop()

counts = portal.read(repo.delivery_counts, scope)
for column, name in zip(st.columns(len(DELIVERY_STATUSES)), DELIVERY_STATUSES, strict=True):
    column.metric(name, counts.get(name, 0))

found = portal.read(
    repo.deliveries, scope, status=None if status == ANY else status, order_uid=order_uid
)
st.caption(f"{len(found)} deliver(ies), newest first (at most {repo.DELIVERIES_LIMIT})")
st.dataframe(deliveries.table(found), hide_index=True, width="stretch")

wanted = pick_delivery(found, "pc")
if wanted is None:
    st.stop()

view = portal.read(repo.delivery, scope, wanted)
if view is None:
    st.warning(f"Unknown delivery {wanted}: none of your callbacks has this id.")
    st.stop()
st.table(deliveries.facts(view))
with st.expander("Body sent (the exact bytes you verify)"):
    st.code(view.body, language="json")
if view.status == "pending":
    st.caption("Pending: Keeper tries it at its next attempt; there is nothing to resend.")
elif view.status == "skipped":
    st.caption("Skipped for want of a callback URL: set one on *My settings* first.")


def resend_shown(delivery_id: str) -> None:
    """The *Resend* click for the delivery on screen; scoped to whoever clicks."""
    acting = portal.acting_scope(PAGE)
    if acting is None:
        return
    try:
        with runtime.sessions().begin() as session:
            done = portal_actions.resend_delivery(
                session, acting, delivery_id, window_s=deliveries.retry_window_s()
            )
    except NotFound:
        flash("error", f"Unknown delivery {delivery_id}: nothing was resent.")
    except InvalidInput:
        flash("warning", f"Delivery {delivery_id} is pending already: nothing changed.")
    else:
        flash(
            "success",
            f"Resent: delivery {done.delivery_id} ({done.event_type}) is pending again and due "
            f"now, retried until {fmt.when(done.give_up_at)}.",
        )


st.button(
    "Resend",
    key="pc_resend",
    type="primary",
    disabled=view.status == "pending",
    on_click=resend_shown,
    args=(str(view.delivery_id),),
)
