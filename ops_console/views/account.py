"""My account: who I am, password change, two-factor sign-in, browser notifications,
sign-out.

A password change revokes every session of the user (the API does it), so the console signs
in again with the new password to keep this browser session going (or, with two-factor
sign-in on, asks for a fresh sign-in).
"""

from __future__ import annotations

import streamlit as st

from ops_console import auth, credentials, notify, runtime
from ops_console.order_view import show_flash

who = auth.require("account")
st.title("My account")
show_flash()
st.write(f"Signed in as **{who.username}**, role **{who.role}**.")
settings = runtime.settings()
st.caption(
    f"Sessions end after {settings.session_idle_s // 60} min without activity and at the "
    "absolute limit set by the API; changing the password closes every other session."
)
if st.session_state.pop("password_changed", False):
    st.success("Password changed; your other sessions were closed.")

credentials.password_form(who)
st.divider()
credentials.second_factor_section(who)
if who.role in notify.ROLES:
    st.divider()
    notify.opt_in_section(who)
st.divider()
if st.button("Sign out", key="account_sign_out"):
    auth.sign_out(who)
    st.rerun()
