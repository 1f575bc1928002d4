"""Disputes: payers and partners who say a closed deposit was paid, with their receipts.

Open disputes are listed by deadline, the most urgent first, with the time left (an overdue
one is marked red). Opening one shows the order, the comment and the receipt (an image
inline, a PDF to download; the receipt is served here only, never on a public link), and the
two verdicts: *Accept* credits the deposit late through the ledger, *Reject* needs a reason,
which the payer and the partner see. An accepted dispute whose credit is not booked yet says
so and offers to send the credit again (the ledger books it once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import streamlit as st

from db.repositories import disputes as repo
from db.repositories import notifications
from domain.disputes import DisputeStatus
from ops_console import auth, fmt, runtime
from ops_console.api_client import ApiCallError
from ops_console.auth import Who
from ops_console.order_view import flash, show_flash
from ops_console.roles import page_title

PAGE: Final = "disputes"
OPEN_KEY: Final = "dispute_open"
LIST_LIMIT: Final = 200

who = auth.require(PAGE)
st.title(page_title(PAGE))
show_flash()


def time_left(deadline: datetime, now: datetime) -> str:
    """``5h 12m left``, or ``overdue 1h 03m`` (red): how the queue shows a deadline."""
    seconds = (deadline - now).total_seconds()
    if seconds < 0:
        return f":red-badge[overdue] {fmt.waited(-seconds)}"
    return f"{fmt.waited(seconds)} left"


def cases(statuses: tuple[DisputeStatus, ...]) -> list[repo.DisputeCase]:
    with runtime.sessions()() as session:
        return repo.list_cases(session, statuses=statuses, limit=LIST_LIMIT)


now = datetime.now(UTC)
with runtime.sessions()() as session:
    open_count, overdue = repo.count_open(session, now)
counts = st.columns(2)
counts[0].metric("Open disputes", open_count)
counts[1].metric("Past their deadline", overdue)

view = st.segmented_control(
    "Show", ["Open", "Resolved"], default="Open", key="disputes_view", label_visibility="collapsed"
)
resolved = view == "Resolved"
shown = cases(
    (DisputeStatus.ACCEPTED, DisputeStatus.REJECTED) if resolved else (DisputeStatus.OPEN,)
)
if not shown:
    st.info("No resolved dispute yet." if resolved else "No dispute awaits a decision.")

widths = [1.6, 1.4, 2.2, 1.4, 1.6, 1.2, 0.8]
if shown:
    header = st.columns(widths)
    titles = ["deadline" if not resolved else "resolved", "partner", "order", "amount"]
    for column, title in zip(header, [*titles, "card", "status", ""], strict=True):
        column.markdown(f"**{title}**")
for case in shown:
    d = case.dispute
    cells = st.columns(widths)
    if resolved:
        cells[0].write(fmt.when(d.resolved_at))
    else:
        cells[0].write(time_left(d.deadline_at, now))
    cells[1].write(d.partner_id)
    cells[2].write(f"{case.partner_order_id} · {case.order_status}")
    cells[3].write(fmt.money(case.amount_minor, case.currency))
    cells[4].write(case.card_masked or "—")
    cells[5].write(d.status.value)
    if cells[6].button("Open", key=f"open_dispute_{d.dispute_id}"):
        st.session_state[OPEN_KEY] = str(d.dispute_id)
        st.rerun()


def settle(who: Who, dispute_id: str, verdict: str, reason: str) -> None:
    if verdict == "reject" and not reason.strip():
        st.error("Say why the dispute is rejected: the payer and the partner see the reason.")
        return
    try:
        result = runtime.api().decide_dispute(who.token, dispute_id, verdict, reason.strip())
    except ApiCallError as error:
        if error.status == 401:
            auth.forget("Your session expired. Please sign in again.")
            st.rerun()
        st.error(f"The verdict was not recorded: {error.message}")
        return
    if result.credit_sent:
        flash("success", f"Dispute {dispute_id} accepted: the deposit is credited late.")
    else:
        flash("success", f"Dispute {dispute_id} {result.status}.")
    st.session_state.pop(OPEN_KEY, None)
    st.rerun()


def show_case(who: Who, dispute_id: str) -> None:
    with runtime.sessions()() as session:
        case = repo.get_case(session, dispute_id)
        receipt = repo.receipt_of(session, dispute_id)
        notice = None
        if case is not None and case.dispute.notification_id is not None:
            notice = notifications.evidence(session, case.dispute.notification_id)
    if case is None or (receipt is None and notice is None):
        st.warning("This dispute is not in the list any more.")
        return
    d = case.dispute
    st.subheader(f"Dispute on order {case.partner_order_id}")
    facts = st.columns(4)
    facts[0].metric("Amount", fmt.money(case.amount_minor, case.currency))
    facts[1].metric("Order", case.order_status)
    facts[2].metric("Opened by", d.opened_by.value)
    facts[3].metric("Status", d.status.value)
    st.caption(
        f"Order {d.order_uid} · created {fmt.when(case.order_created_at)} · card "
        f"{case.card_masked or '—'} ({case.card_bank or 'bank unknown'}) · dispute opened "
        f"{fmt.when(d.created_at)}, deadline {fmt.when(d.deadline_at)}"
    )
    if d.comment:
        st.markdown("**Comment**")
        st.text(d.comment)
    if notice is not None:
        st.markdown(
            f"**Bank notification** from {notice['sender']}, received by {notice['device_id']} "
            f"at {fmt.when(notice['received_at'])}"
        )
        st.text(notice["text"])
    if receipt is not None:
        show_receipt(d.dispute_id, *receipt)
    settle_form(who, case, dispute_id)


def show_receipt(ident: object, content_type: str, data: bytes) -> None:
    st.markdown(f"**Receipt** ({content_type}, {len(data):,} bytes)")
    if content_type.startswith("image/"):
        try:  # its first bytes say PNG or JPEG; the rest may still be broken, or hostile
            st.image(data, width=420)
        except Exception:  # any decoder error means: no preview
            st.warning("This receipt cannot be shown as an image; download it to inspect it.")
    st.download_button(
        "Download the receipt",
        data,
        file_name=f"receipt-{ident}.{content_type.rsplit('/', 1)[1]}",
        mime=content_type,
        key=f"receipt_{ident}",
    )


def settle_form(who: Who, case: repo.DisputeCase, dispute_id: str) -> None:
    d = case.dispute
    if d.status is DisputeStatus.REJECTED:
        st.info(f"Rejected by {d.resolved_by} at {fmt.when(d.resolved_at)}: {d.resolution_reason}")
        return
    if d.status is DisputeStatus.ACCEPTED:
        if case.credited:
            st.success(f"Accepted by {d.resolved_by} at {fmt.when(d.resolved_at)}; credited.")
            return
        st.warning("Accepted, but the late credit is not booked yet.")
        if st.button("Send the credit again", key=f"resend_{d.dispute_id}"):
            settle(who, dispute_id, "accept", "")
        return
    with st.form(f"settle_{d.dispute_id}"):
        reason = st.text_area("Reason (required to reject; the payer and partner see it)")
        accept, reject = st.columns(2)
        accepted = accept.form_submit_button("Accept: credit the deposit", type="primary")
        rejected = reject.form_submit_button("Reject")
    if accepted or rejected:
        settle(who, dispute_id, "accept" if accepted else "reject", reason)


selected = st.session_state.get(OPEN_KEY)
if selected:
    st.divider()
    if st.button("Close", key="close_dispute"):
        st.session_state.pop(OPEN_KEY, None)
        st.rerun()
    show_case(who, selected)
