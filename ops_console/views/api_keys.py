"""API keys: issue (the secret is shown once), rotate, revoke. Secrets are sealed at rest;
no page can show one again."""

from __future__ import annotations

from dataclasses import asdict, fields

import pandas as pd
import streamlit as st

from db.crypto import SecretBox
from db.repositories import api_keys, partners
from ops_console import auth, changes, runtime
from ops_console.roles import page_title

SECRET_KEY = "issued_secret"  # noqa: S105 - a session-state key, not a secret

who = auth.require("api_keys")
st.title(page_title("api_keys"))
changes.show_notice()

issued = st.session_state.pop(SECRET_KEY, None)
if issued:
    key_id, secret = issued
    st.warning("Copy the secret now: it is shown this once and cannot be read back.")
    st.code(f"KEEPER_KEY_ID={key_id}\nKEEPER_KEY_SECRET={secret}", language="bash")


def remember(result: tuple[str, str] | None, message: str) -> None:
    if result is not None:
        st.session_state[SECRET_KEY] = result
        changes.done(message.format(key_id=result[0]))


with runtime.sessions()() as session:
    partner_ids = [terms.partner_id for terms in partners.list_partners(session)]
    keys = api_keys.list_all_api_keys(session)
if not partner_ids:
    st.info("No partner yet: create one on the Partners page.")
    st.stop()

partner = st.selectbox("Partner", partner_ids, key="keys_partner")
own = [key for key in keys if key.partner_id == partner]
st.dataframe(
    pd.DataFrame(
        [asdict(key) for key in own], columns=[f.name for f in fields(api_keys.ApiKeyInfo)]
    ),
    hide_index=True,
    width="stretch",
)
box = SecretBox.from_settings()
if st.button("Issue a new key", key="issue_key", type="primary"):
    remember(
        changes.apply(lambda s: api_keys.issue_api_key(s, box, partner, who.username)),
        f"Key {{key_id}} issued for {partner}.",
    )

active = [key.key_id for key in own if key.status == "active"]
if active:
    st.markdown("**Active keys**")
    chosen = st.selectbox("Key", active, key="keys_pick")
    columns = st.columns(2)
    if columns[0].button(
        "Rotate (new key, this one revoked at once)", key="rotate_key", width="stretch"
    ):
        remember(
            changes.apply(lambda s: api_keys.rotate_api_key(s, box, chosen, who.username)),
            f"Key {chosen} replaced by {{key_id}}.",
        )
    if columns[1].button("Revoke", key="revoke_key", width="stretch") and changes.apply(
        lambda s: api_keys.revoke_api_key(s, chosen, who.username)
    ):
        changes.done(f"Key {chosen} revoked: it signs nothing any more.")
