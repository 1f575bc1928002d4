"""Operator queue: orders awaiting a decision, oldest first, refreshed live.

The list is a fragment that re-reads PostgreSQL every ``refresh_s`` (about a second) without
rerunning the page; a new order raises a toast and a chime and is marked as new. Opening an
order shows it in full below the list with the decision form.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Final

import streamlit as st

from ops_console import auth, fmt, notify, quarantine, queries, runtime
from ops_console.order_view import decide, show_flash, show_order
from ops_console.sound import chime_html

OPEN_KEY: Final = "queue_open"
SEEN_KEY: Final = "queue_seen"
UNMATCHED_SEEN_KEY: Final = "queue_unmatched_seen"
#: How long an order stays marked as new, in seconds.
NEW_FOR_S: Final = 15.0

who = auth.require("queue")
st.title("Operator queue")
show_flash()


def _notice(uids: list[str]) -> set[str]:
    """Remember when each uid was first seen; toast and chime (and, in a background tab, a
    browser notification) for the ones new this run. The uids first seen within
    ``NEW_FOR_S``."""
    first_seen: dict[str, float] | None = st.session_state.get(SEEN_KEY)
    now = time.monotonic()
    if first_seen is None:  # the first look at the queue: nothing is "new"
        st.session_state[SEEN_KEY] = dict.fromkeys(uids, now - NEW_FOR_S)
        return set()
    fresh = [uid for uid in uids if uid not in first_seen]
    if fresh:
        st.toast(
            f"{len(fresh)} new order(s) awaiting a decision",
            icon=":material/notifications_active:",
        )
        st.html(chime_html())
        notify.raise_for(who, fresh)
    kept = {uid: first_seen.get(uid, now) for uid in uids}
    st.session_state[SEEN_KEY] = kept
    return {uid for uid, seen in kept.items() if now - seen < NEW_FOR_S}


def _notice_unmatched(ids: list[str]) -> None:
    """Toast (and, in the background, notify) the bank credits that matched no order since
    the last look: an operator attaches or dismisses them on *Bank notifications*."""
    seen: set[str] | None = st.session_state.get(UNMATCHED_SEEN_KEY)
    st.session_state[UNMATCHED_SEEN_KEY] = set(ids)
    fresh = [] if seen is None else [ident for ident in ids if ident not in seen]
    if fresh:
        st.toast(
            f"{len(fresh)} bank credit(s) matched no order: see Bank notifications",
            icon=":material/sms:",
        )
        notify.raise_unmatched(who, fresh)


@st.fragment(run_every=runtime.settings().refresh_s)
def live_queue() -> None:
    if auth.current_user(touch=False) is None:
        st.rerun(scope="app")  # the session ended: back to sign-in
    flagged = quarantine.flagged_orders(runtime.sessions())
    if flagged:
        st.warning(
            f"{len(flagged)} order(s) have quarantined records that did not reach PostgreSQL: "
            "see Dead letters."
        )
    _notice_unmatched(queries.unmatched_notifications(runtime.engine()))
    waiting = queries.queue(runtime.engine())
    new = _notice(list(waiting["uid"]))
    now = datetime.now(UTC)
    st.caption(
        f"{len(waiting)} awaiting a decision · updated {fmt.when(now)} · "
        f"refreshes every {runtime.settings().refresh_s:g} s"
    )
    if waiting.empty:
        st.info("No order awaits a decision.")
        return
    header = st.columns([1.2, 1.6, 2.2, 1.6, 1.8, 1.8, 1])
    for column, title in zip(
        header,
        ["waiting", "partner", "order", "amount", "card", "payer card", ""],
        strict=True,
    ):
        column.markdown(f"**{title}**")
    for row in waiting.itertuples(index=False):
        cells = st.columns([1.2, 1.6, 2.2, 1.6, 1.8, 1.8, 1])
        badge = ":red-badge[new] " if row.uid in new else ""
        cells[0].write(f"{badge}{fmt.waited(fmt.seconds_since(row.waiting_since, now))}")
        cells[1].write(row.partner_id)
        cells[2].write(f"{row.partner_order_id} · {row.direction}")
        cells[3].write(fmt.money(row.amount_minor, row.currency))
        cells[4].write(row.card or "—")
        if row.suggested_by:  # a bank notification pays it (ADR 0010): one click approves
            cells[5].markdown(":green-badge[bank notification matches]")
            if cells[5].button("Approve match", key=f"match_{row.uid}", type="primary"):
                decide(
                    who,
                    row.uid,
                    "approve",
                    f"bank notification {row.suggested_by}",
                    selection_key=OPEN_KEY,
                )
        elif row.unmatched_credit:  # a credit on the card matched nothing: why not automatic
            cells[5].markdown(f":orange-badge[bank credit unmatched: {row.unmatched_credit}]")
        else:
            cells[5].write(row.payer_card_masked or "—")
        if cells[6].button("Open", key=f"open_{row.uid}"):
            st.session_state[OPEN_KEY] = row.uid
            st.rerun(scope="app")


live_queue()

selected = st.session_state.get(OPEN_KEY)
if selected:
    st.divider()
    if st.button("Close", key="close_order"):
        st.session_state.pop(OPEN_KEY, None)
        st.rerun()
    show_order(who, selected, key=OPEN_KEY)
