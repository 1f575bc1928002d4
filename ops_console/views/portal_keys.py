"""Partner portal: the partner's API keys. Issue (the secret is shown once), rotate (a new
key, the old one revoked in the same transaction: the API refuses it within a second, ADR
0006), revoke. Every action is audited with the partner user as actor; a key id of another
partner is refused like an unknown one."""

from __future__ import annotations

from typing import Final

import streamlit as st

from db.crypto import SecretBox
from db.repositories import api_keys, portal_actions
from db.repositories import portal as repo
from ops_console import portal
from ops_console.order_view import flash, show_flash
from ops_console.roles import page_title

PAGE: Final = "portal_keys"
SECRET_KEY: Final = "portal_issued_key"  # noqa: S105 - a session-state key, not a secret

scope = portal.page_scope(PAGE)
st.title(page_title(PAGE))
st.caption(f"Partner **{scope.partner_id}**")
show_flash()
portal.show_issued(SECRET_KEY, "KEEPER_KEY_ID", "KEEPER_KEY_SECRET")


def issue() -> None:
    box = SecretBox.from_settings()
    issued = portal.act(PAGE, lambda s, acting: portal_actions.issue_api_key(s, box, acting))
    if issued is not None:
        st.session_state[SECRET_KEY] = issued
        flash("success", f"Key {issued[0]} issued.")


def rotate(key_id: str) -> None:
    box = SecretBox.from_settings()
    issued = portal.act(
        PAGE, lambda s, acting: portal_actions.rotate_api_key(s, box, acting, key_id)
    )
    if issued is not None:
        st.session_state[SECRET_KEY] = issued
        flash(
            "success",
            f"Key {key_id} replaced by {issued[0]}: the old key is refused within a second.",
        )


def revoke(key_id: str) -> None:
    revoked = portal.act(PAGE, lambda s, acting: portal_actions.revoke_api_key(s, acting, key_id))
    if revoked:
        flash("success", f"Key {key_id} revoked: it signs nothing any more.")
    elif revoked is False:
        flash("warning", f"Key {key_id} was revoked already: nothing changed.")


keys = portal.read(repo.partner_api_keys, scope)
st.dataframe(portal.table(keys, api_keys.ApiKeyInfo), hide_index=True, width="stretch")
st.caption(
    "Several keys may be active at once. To switch without a gap, issue a second key, move "
    "your systems to it, then revoke the old one; *Rotate* replaces a key at once."
)
st.button("Issue a new key", key="pk_issue", type="primary", on_click=issue)

active = [key.key_id for key in keys if key.status == "active"]
if not active:
    st.info("No active key: your API requests are refused until you issue one.")
    st.stop()
st.markdown("**Active keys**")
chosen = st.selectbox("Key", active, key="pk_pick")
columns = st.columns(2)
columns[0].button(
    "Rotate (new key, this one revoked at once)",
    key="pk_rotate",
    on_click=rotate,
    args=(chosen,),
    width="stretch",
)
columns[1].button("Revoke", key="pk_revoke", on_click=revoke, args=(chosen,), width="stretch")
