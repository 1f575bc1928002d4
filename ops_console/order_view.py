"""One order in full (terms, cards masked, times, history) and the decision form.

Deciding goes through the API; when another operator was first the API refuses
(``409``), and the console reads PostgreSQL to say who decided and when. The form is only
shown while the order awaits a decision, and the API never accepts a second decision anyway.
"""

from __future__ import annotations

import time
from typing import Any, Final

import streamlit as st

from db.crypto import SecretBox
from db.repositories import orders as orders_repo
from ops_console import auth, fmt, queries, runtime
from ops_console.api_client import ApiCallError
from ops_console.auth import Who

DECIDING_ROLES: Final = frozenset({"operator", "admin"})
VERDICTS: Final = {"approve": "Approve", "reject": "Reject", "fail": "Mark failed"}
FLASH_KEY: Final = "flash"
FORMS_KEY: Final = "decision_forms"
#: How long to wait for the projector to show a decision the API reported.
PROJECTION_WAIT_S: Final = 5.0


def flash(kind: str, message: str) -> None:
    """Show ``message`` at the top of the next run (it survives ``st.rerun``)."""
    st.session_state[FLASH_KEY] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop(FLASH_KEY, (None, None))
    if kind == "success":
        st.success(message)
    elif kind == "warning":
        st.warning(message)
    elif kind == "error":
        st.error(message)


def decided_text(order: dict[str, Any]) -> str:
    by = order["decided_by"] or "someone"
    return f"{order['status']} by {by} at {fmt.when(order['decided_at'])}"


def show_order(who: Who, uid: str, *, key: str) -> None:
    """The order; ``key`` names the session-state entry holding it open (cleared on a
    successful decision) and keeps widget keys apart between pages."""
    engine = runtime.engine()
    order = queries.order(engine, uid)
    if order is None:
        st.warning(f"No order {uid}.")
        return
    st.subheader(f"Order {order['partner_order_id']} ({order['direction']})")
    st.caption(f"uid {order['uid']}")
    top = st.columns(4)
    top[0].metric("Amount", fmt.money(order["amount_minor"], order["currency"]))
    top[1].metric("Fee", fmt.money(order["fee_minor"], order["currency"]))
    top[2].metric("Partner", order["partner_id"])
    top[3].metric("Status", order["status"])
    st.table(
        {
            "field": [
                "partner",
                "card (receiving)",
                "payer card",
                "created",
                "payer confirmed",
                "expires",
                "last change",
                "decided",
                "reason",
            ],
            "value": [
                f"{order['partner_id']} ({order['partner_name']})",
                order["card"] or "—",
                order["payer_card_masked"] or "—",
                fmt.when(order["created_at"]),
                fmt.when(order["confirmed_at"]) or "—",
                fmt.when(order["expires_at"]),
                fmt.when(order["updated_at"]),
                decided_text(order) if order["status"] in queries.DECIDED else "—",
                order["decision_reason"] or order["decline_reason"] or "—",
            ],
        }
    )
    if (
        order["direction"] == "withdrawal"
        and order["payer_card_masked"]
        and who.role in DECIDING_ROLES
        and order["status"] == "processing"
    ):
        _reveal_payer_card(who, uid, key=key)
    st.markdown("**History**")
    st.dataframe(queries.history(engine, uid), hide_index=True, width="stretch")
    if order["status"] in queries.DECIDED:
        st.info(f"Decided: {decided_text(order)}.")
    # A form the operator already has on screen stays until it is used: a click that races
    # another operator's decision still reaches the API, which refuses it, and the operator
    # learns who was first.
    on_screen: set[str] = st.session_state.setdefault(FORMS_KEY, set())
    if who.role in DECIDING_ROLES and (order["status"] == "processing" or uid in on_screen):
        on_screen.add(uid)
        _decision_form(who, uid, key=key)


def _reveal_payer_card(who: Who, uid: str, *, key: str) -> None:
    """The full card a withdrawal pays out to, for the operator who pays it; each look is
    written to the audit log. Shown for this run only, never kept in the session."""
    if st.button("Show the payer's full card (audited)", key=f"reveal_{key}"):
        with runtime.sessions().begin() as session:
            pan = orders_repo.reveal_payer_card(
                session, SecretBox.from_settings(), uid, who.username
            )
        if pan is None:
            st.warning("The payer's card is not on record.")
        else:
            st.code(" ".join(pan[i : i + 4] for i in range(0, len(pan), 4)), language=None)


def _decision_form(who: Who, uid: str, *, key: str) -> None:
    with st.form(f"decide_{key}_{uid}"):
        st.markdown("**Decision**")
        reason = st.text_input(
            "Reason (required to reject or fail)", max_chars=500, key=f"reason_{key}_{uid}"
        )
        columns = st.columns(len(VERDICTS))
        clicked = [
            verdict
            for column, (verdict, label) in zip(columns, VERDICTS.items(), strict=True)
            if column.form_submit_button(
                label, type="primary" if verdict == "approve" else "secondary"
            )
        ]
    if clicked:
        decide(who, uid, clicked[0], reason, selection_key=key)


def decide(who: Who, uid: str, verdict: str, reason: str, *, selection_key: str) -> None:
    if verdict != "approve" and not reason.strip():
        st.error("Give a reason to reject or fail an order.")
        return
    try:
        result = runtime.api().decide(who.token, uid, verdict, reason.strip())
    except ApiCallError as error:
        if error.status == 401:
            auth.forget("Your session expired. Please sign in again.")
            st.rerun()
        if error.status == 409:
            _tell_who_was_first(uid, error)
            st.rerun()
        st.error(f"The decision was not recorded: {error.message}")
        return
    _wait_for_projection(uid)
    st.session_state.get(FORMS_KEY, set()).discard(uid)
    flash("success", f"Order {uid} {result.status}.")
    st.session_state.pop(selection_key, None)
    st.rerun()


def _wait_for_projection(uid: str) -> dict[str, Any] | None:
    deadline = time.monotonic() + PROJECTION_WAIT_S
    while True:
        order = queries.order(runtime.engine(), uid)
        if order is not None and order["status"] != "processing":
            return order
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def _tell_who_was_first(uid: str, error: ApiCallError) -> None:
    st.session_state.get(FORMS_KEY, set()).discard(uid)
    order = _wait_for_projection(uid)
    if order is not None and order["status"] in queries.DECIDED:
        flash(
            "warning",
            f"Another operator decided first: order {uid} was {decided_text(order)}. "
            "Your decision was not recorded.",
        )
    else:
        flash("warning", f"The order no longer awaits a decision: {error.message}")
