"""Callback secrets: the keys a partner verifies Keeper's callbacks with. Issue (the secret
is shown once), revoke. Several may be active at once, for rotation: every callback carries
one signature per active secret. Secrets are sealed at rest; no page can show one again.

The buttons act through callbacks bound to the partner and the secret on screen when they
were clicked, so a list changed meanwhile never redirects a click to another secret."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Final

import pandas as pd
import streamlit as st

from db.crypto import SecretBox
from db.repositories import callbacks, partners
from ops_console import auth, changes, runtime
from ops_console.order_view import flash, show_flash
from ops_console.roles import may_open, page_title

PAGE: Final = "callback_secrets"
SECRET_KEY: Final = "issued_callback_secret"  # noqa: S105 - a session-state key, not a secret

auth.require(PAGE)
st.title(page_title(PAGE))
show_flash()

issued = st.session_state.pop(SECRET_KEY, None)
if issued:
    secret_id, secret = issued
    st.warning("Copy the secret now: it is shown this once and cannot be read back.")
    st.code(
        f"KEEPER_CALLBACK_SECRET_ID={secret_id}\nKEEPER_CALLBACK_SECRET={secret}", language="bash"
    )


def acting_admin() -> str | None:
    """Who clicks, if still allowed: callbacks run before the page's own role check."""
    acting = auth.current_user(touch=False)
    return acting.username if acting and may_open(acting.role, PAGE) else None


def issue_for(partner_id: str) -> None:
    actor = acting_admin()
    if actor is None:
        return  # the run that follows refuses the page
    box = SecretBox.from_settings()
    result = changes.apply(lambda s: callbacks.issue_callback_secret(s, box, partner_id, actor))
    if result is not None:
        st.session_state[SECRET_KEY] = result
        flash("success", f"Callback secret {result[0]} issued for {partner_id}.")


def revoke(secret_id: str) -> None:
    actor = acting_admin()
    if actor is None:
        return
    revoked = changes.apply(lambda s: callbacks.revoke_callback_secret(s, secret_id, actor))
    if revoked:
        flash(
            "success",
            f"Callback secret {secret_id} revoked: callbacks are no longer signed with it.",
        )
    elif revoked is False:
        flash("warning", f"Callback secret {secret_id} was revoked already: nothing changed.")


with runtime.sessions()() as session:
    partner_ids = [terms.partner_id for terms in partners.list_partners(session)]
if not partner_ids:
    st.info("No partner yet: create one on the Partners page.")
    st.stop()

partner = st.selectbox("Partner", partner_ids, key="cbs_partner")
with runtime.sessions()() as session:
    own = callbacks.list_callback_secrets(session, partner)
st.dataframe(
    pd.DataFrame(
        [asdict(info) for info in own],
        columns=[f.name for f in fields(callbacks.CallbackSecretInfo)],
    ),
    hide_index=True,
    width="stretch",
)
active = [info.secret_id for info in own if info.active]
st.caption(
    f"{len(active)} active: every callback to {partner} is signed with each of them. To "
    "rotate, issue a new secret, let the partner accept both, then revoke the old one."
)
st.button(
    "Issue a new secret",
    key="issue_callback_secret",
    type="primary",
    on_click=issue_for,
    args=(partner,),
)

if not active:
    st.warning(
        f"{partner} has no active callback secret: its callbacks are not sent (each attempt "
        "fails with 'no active callback secret' and is retried) until one is issued."
    )
    st.stop()

st.markdown("**Active secrets**")
chosen = st.selectbox("Secret", active, key="cbs_pick")
if len(active) == 1:
    st.caption("This is the only active secret: revoking it stops the callbacks until a new one.")
st.button("Revoke", key="revoke_callback_secret", on_click=revoke, args=(chosen,))
