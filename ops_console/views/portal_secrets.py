"""Partner portal: the secrets Keeper signs the partner's callbacks with. Issue (shown
once), revoke; several may be active, for rotation (each callback carries one signature per
active secret). Audited with the partner user as actor; another partner's secret id is
refused like an unknown one."""

from __future__ import annotations

from typing import Final

import streamlit as st

from db.crypto import SecretBox
from db.repositories import callbacks, portal_actions
from db.repositories import portal as repo
from ops_console import portal
from ops_console.order_view import flash, show_flash
from ops_console.roles import page_title

PAGE: Final = "portal_secrets"
SECRET_KEY: Final = "portal_issued_callback_secret"  # noqa: S105 - a session-state key

scope = portal.page_scope(PAGE)
st.title(page_title(PAGE))
st.caption(f"Partner **{scope.partner_id}**")
show_flash()
portal.show_issued(SECRET_KEY, "KEEPER_CALLBACK_SECRET_ID", "KEEPER_CALLBACK_SECRET")


def issue() -> None:
    box = SecretBox.from_settings()
    issued = portal.act(
        PAGE, lambda s, acting: portal_actions.issue_callback_secret(s, box, acting)
    )
    if issued is not None:
        st.session_state[SECRET_KEY] = issued
        flash("success", f"Callback secret {issued[0]} issued.")


def revoke(secret_id: str) -> None:
    revoked = portal.act(
        PAGE, lambda s, acting: portal_actions.revoke_callback_secret(s, acting, secret_id)
    )
    if revoked:
        flash("success", f"Callback secret {secret_id} revoked: callbacks are no longer signed.")
    elif revoked is False:
        flash("warning", f"Callback secret {secret_id} was revoked already: nothing changed.")


own = portal.read(repo.partner_callback_secrets, scope)
st.dataframe(portal.table(own, callbacks.CallbackSecretInfo), hide_index=True, width="stretch")
active = [info.secret_id for info in own if info.active]
st.caption(
    f"{len(active)} active: every callback is signed with each of them. To rotate, issue a "
    "new secret, accept both signatures, then revoke the old one."
)
st.button("Issue a new secret", key="ps_issue", type="primary", on_click=issue)
if not active:
    st.warning(
        "No active callback secret: your callbacks are not sent (each attempt fails with 'no "
        "active callback secret' and is retried) until you issue one."
    )
    st.stop()
st.markdown("**Active secrets**")
chosen = st.selectbox("Secret", active, key="ps_pick")
if len(active) == 1:
    st.caption("This is the only active secret: revoking it stops your callbacks until a new one.")
st.button("Revoke", key="ps_revoke", on_click=revoke, args=(chosen,))
