"""Dead letters: records a consumer could never write (a poison record), quarantined so the
rest keeps flowing. Operators and admins see the open ones with their source coordinates,
the reason and the order they belong to; *Retry* re-publishes one to its source topic after
its cause is fixed, *Resolve* closes it by hand. Both are audited (``dead_letter.retry``,
``dead_letter.resolve``); the record's bytes are never shown."""

from __future__ import annotations

from typing import Final

import streamlit as st

from db.repositories import dead_letters as repo
from ops_console import auth, quarantine, runtime
from ops_console.order_view import flash, show_flash
from ops_console.roles import may_open, page_title

PAGE: Final = "dead_letters"

auth.require(PAGE)
st.title(page_title(PAGE))
show_flash()
sessions = runtime.sessions()

with sessions() as session:
    total = repo.count_open(session)
    letters = repo.list_open(session, quarantine.LIST_LIMIT)
flagged = quarantine.flagged_orders(sessions)

counts = st.columns(2)
counts[0].metric("Open dead letters", total)
counts[1].metric("Orders flagged", len(flagged))
if total == 0:
    st.success("Nothing is quarantined: every record reached PostgreSQL.")
    st.stop()

st.caption(f"Oldest first (at most {quarantine.LIST_LIMIT} shown)")
st.dataframe(quarantine.table(letters), hide_index=True, width="stretch")


def act(action: str, dead_letter_id: int) -> None:
    """A button's click, run before the page's own role check, so it checks the role."""
    acting = auth.current_user(touch=False)
    if acting is None or not may_open(acting.role, PAGE):
        return
    if action == "retry":
        outcome = quarantine.retry(
            runtime.sessions(), runtime.republisher, dead_letter_id, acting.username
        )
    else:
        outcome = quarantine.resolve(runtime.sessions(), dead_letter_id, acting.username)
    flash(outcome.kind, outcome.message)


st.subheader("Act on one")
labels = {
    letter.id: f"{letter.id} · {letter.source_topic} · {letter.reason[:80]}" for letter in letters
}
picked = st.selectbox(
    "Dead letter", list(labels), format_func=lambda ident: labels[ident], key="dl_pick"
)
st.caption(
    "Retry after the cause is fixed (a missing partner or card created, the consumer upgraded). "
    "Resolve leaves the record out for good."
)
buttons = st.columns(2)
buttons[0].button("Retry", key="dl_retry", type="primary", on_click=act, args=("retry", picked))
buttons[1].button("Resolve", key="dl_resolve", on_click=act, args=("resolve", picked))
