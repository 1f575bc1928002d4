"""Audit log: every decision-relevant and configuration change, with actor, before and
after (append-only in PostgreSQL)."""

from __future__ import annotations

import streamlit as st

from domain.text import LABEL
from ops_console import auth, form_text, queries, runtime
from ops_console.roles import page_title

auth.require("audit")
st.title(page_title("audit"))
engine = runtime.engine()
columns = st.columns(2)
actor = columns[0].text_input("Actor", key="audit_actor")
entity = columns[1].selectbox(
    "Entity",
    [
        "any",
        "order",
        "partner",
        "api_key",
        "callback_secret",
        "callback_delivery",
        "pool",
        "card",
        "user",
        "dead_letter",
        "login_throttle",
    ],
    key="audit_entity",
)
if form_text.refused(("Actor", actor, LABEL)):
    st.stop()
log = queries.audit_log(
    engine, actor=actor.strip() or None, entity=None if entity == "any" else entity
)
st.caption(f"{len(log)} entr(ies), newest first")
st.dataframe(log, hide_index=True, width="stretch")
st.download_button(
    "Download CSV",
    log.to_csv(index=False).encode(),
    file_name="audit.csv",
    mime="text/csv",
    key="audit_csv",
)
