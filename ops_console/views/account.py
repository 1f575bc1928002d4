"""My account: who I am, password change, sign-out.

A password change revokes every session of the user (the API does it), so the console signs
in again with the new password to keep this browser session going.
"""

from __future__ import annotations

import streamlit as st

from ops_console import auth, runtime
from ops_console.api_client import ApiCallError
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

with st.form("password_change", clear_on_submit=True):
    st.markdown("**Change password**")
    current = st.text_input("Current password", type="password", key="pw_current")
    new = st.text_input("New password (at least 12 characters)", type="password", key="pw_new")
    again = st.text_input("New password again", type="password", key="pw_again")
    submitted = st.form_submit_button("Change password")

if submitted:
    if new != again:
        st.error("The new passwords differ.")
    elif len(new) < 12:
        st.error("The new password must have at least 12 characters.")
    else:
        try:
            runtime.api().change_password(who.token, current, new)
        except ApiCallError as error:
            st.error(
                "The current password is wrong."
                if error.code == "invalid_credentials"
                else auth.refusal_text(error)
                if error.code == "too_many_attempts"
                else f"The password was not changed: {error.message}"
            )
        else:
            try:
                signed = runtime.api().login(who.username, new, auth.browser_address())
            except ApiCallError as error:  # changed, but this session was closed with the rest
                auth.forget(f"Password changed. Sign in again: {auth.refusal_text(error)}")
                st.rerun()
            st.session_state[auth.AUTH_KEY] = {
                "token": signed.token,
                "username": signed.username,
                "role": signed.role,
            }
            st.success("Password changed; your other sessions were closed.")

if st.button("Sign out", key="account_sign_out"):
    auth.sign_out(who)
    st.rerun()
