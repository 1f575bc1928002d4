"""Bank notifications: what the cards' phones forwarded, how each parsed, what it matched.

Filters by outcome, device and card. An ``unmatched`` notification (or a suggestion nobody
approved) is resolved here: attached to the deposit it pays, or dismissed with a reason. An
open deposit is approved at once through the API, with the notification named in the
decision's reason; one still ``new`` (the payer never pressed "I have paid") is first
confirmed on the operator's word, as a match by the desk confirms it. One already closed
(expired, rejected) gets a dispute with the notification as its evidence (issue 14), and the
page says so. See docs/devices.md.
"""

from __future__ import annotations

import uuid
from typing import Final

import pandas as pd
import streamlit as st

from db.repositories import devices, notifications
from ops_console import auth, changes, fmt, runtime
from ops_console.api_client import ApiCallError
from ops_console.order_view import decide, show_flash
from ops_console.roles import page_title

PAGE: Final = "notifications"
#: The deposits an attached notification approves at once (an operator's word for the payer's).
OPEN_DEPOSITS: Final = ("new", "processing")
OUTCOMES: Final = (
    "unmatched",
    "suggested",
    "approved",
    "received",
    "unparsed",
    "ignored",
    "attached",
    "dismissed",
)


def approve_attached(who: auth.Who, uid: str, notice: str, status: str) -> None:
    """Approve the deposit ``notice`` pays, confirming it first if it is still ``new``."""
    if status == "new":
        try:
            runtime.api().confirm_payment(who.token, uid, notice)
        except ApiCallError as error:
            if error.status == 401:
                auth.forget("Your session expired. Please sign in again.")
                st.rerun()
            st.error(
                f"Attached, but order {uid} was not confirmed: {error.message}. If it closes "
                "unpaid, the notification becomes the evidence of a dispute on it."
            )
            st.stop()
    decide(who, uid, "approve", f"bank notification {notice}", selection_key="nt_pick")


who = auth.require(PAGE)
st.title(page_title(PAGE))
changes.show_notice()
show_flash()


with runtime.sessions()() as session:
    known = devices.list_devices(session)
cards = {d.card_id: d.pan_masked for d in known}
columns = st.columns(3)
outcome = columns[0].selectbox("Outcome", ["all", *OUTCOMES], key="nt_outcome")
device = columns[1].selectbox("Device", ["all", *(d.device_id for d in known)], key="nt_device")
card = columns[2].selectbox(
    "Card", ["all", *cards], format_func=lambda c: cards.get(c, c), key="nt_card"
)
filters = notifications.NotificationFilter(
    outcome=None if outcome == "all" else outcome,
    device_id=None if device == "all" else device,
    card_id=None if card == "all" else card,
)
with runtime.sessions()() as session:
    rows = notifications.recent(session, filters)
if not rows:
    st.info("No bank notification matches these filters.")
    st.stop()

shown = pd.DataFrame(rows)
shown["amount"] = [
    fmt.money(a, c) if a is not None and not pd.isna(a) else "—"
    for a, c in zip(shown["amount_minor"], shown["currency"], strict=True)
]
shown["order"] = shown["order"].astype("string")
shown["id"] = shown["id"].astype("string")
st.dataframe(
    shown[
        [
            "received_at",
            "device",
            "card",
            "sender",
            "text",
            "parse",
            "template",
            "kind",
            "amount",
            "outcome",
            "reason",
            "order",
            "id",
        ]
    ],
    hide_index=True,
    width="stretch",
)

labels = {
    str(r["id"]): f"{fmt.money(r['amount_minor'], r['currency'])} · {r['card']} · {r['text'][:60]}"
    for r in rows
    if r["outcome"] in notifications.RESOLVABLE
}
picked = st.session_state.get("nt_pick")
if picked and picked not in labels:
    # Resolved meanwhile (another operator) or filtered out: kept as picked, so that a click
    # meant for it is refused with the reason, never applied to the next one in the list.
    labels[picked] = f"{picked} (not among the unmatched shown)"
if not labels:
    st.stop()
st.subheader("Resolve an unmatched notification")
chosen = st.selectbox("Notification", list(labels), format_func=labels.__getitem__, key="nt_pick")
attach_col, dismiss_col = st.columns(2)
with attach_col.form("nt_attach"):
    uid_text = st.text_input("Order id it pays", key="nt_uid")
    if st.form_submit_button("Attach to this order", type="primary"):
        try:
            uid = uuid.UUID(uid_text.strip())
        except ValueError:
            st.error("Enter the order's id (a UUID).")
            st.stop()
        done = changes.apply(
            lambda s: notifications.attach(s, uuid.UUID(chosen), uid, who.username)
        )
        if done is not None and done.order_status in OPEN_DEPOSITS:
            approve_attached(who, str(uid), chosen, done.order_status)
        elif done is not None:
            st.session_state.pop("nt_pick", None)
            changes.done(
                f"Attached to order {uid}, which is {done.order_status}: it is settled as a "
                "dispute."
            )
with dismiss_col.form("nt_dismiss"):
    reason = st.text_input("Reason", key="nt_reason")
    if st.form_submit_button("Dismiss") and changes.apply(
        lambda s: notifications.dismiss(s, uuid.UUID(chosen), reason, who.username)
    ):
        st.session_state.pop("nt_pick", None)
        changes.done("Dismissed.")
