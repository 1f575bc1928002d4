"""Keeper operations console: ``streamlit run ops_console/app.py``.

The navigation offers only the pages the signed-in role may open (``roles.PAGE_ROLES``);
signed out, the only page is the sign-in form; signed in but not done (an admin forced a
password reset, or the role must have a second factor and has none), the only page is that
step. Every run the user causes checks the session
against PostgreSQL (idle and absolute timeouts), so an expired session lands on sign-in.
"""

from __future__ import annotations

import streamlit as st

from ops_console import auth, credentials
from ops_console.nav import SIGN_IN_PATH, pages_for


def main() -> None:
    st.set_page_config(page_title="Keeper console", page_icon=":material/payments:", layout="wide")
    who = auth.current_user()
    if who is None:
        # Every page stays registered (hidden) so any address resolves; whatever was asked
        # for, a signed-out visitor gets the sign-in form.
        _, hidden = pages_for(None)
        sign_in = st.Page(auth.sign_in_page, title="Sign in", url_path=SIGN_IN_PATH, default=True)
        st.navigation([sign_in, *hidden], position="hidden")
        auth.sign_in_page()
        return
    if who.must_change_password or who.must_enrol or credentials.CODES_KEY in st.session_state:
        _finish_sign_in(who)
        return
    offered, hidden = pages_for(who.role)
    landing = next(iter(offered.values()))[0]
    signed_in = st.Page(
        lambda: st.switch_page(landing), title="Sign in", url_path=SIGN_IN_PATH, visibility="hidden"
    )
    page = st.navigation({**offered, "": [*hidden, signed_in]}, expanded=True)  # every page shown
    with st.sidebar:
        st.markdown(f"Signed in as **{who.username}** ({who.role})")
        if st.button("Sign out", key="sign_out"):
            auth.sign_out(who)
            st.rerun()
    page.run()


def _finish_sign_in(who: auth.Who) -> None:
    """Before anything else: a new password (an admin forced a reset), then a second factor
    (the role must have one) and its recovery codes, shown once. Every page stays
    registered, hidden, and shows this."""
    _, hidden = pages_for(None)

    def step() -> None:
        st.title("Finish signing in")
        if who.must_change_password:
            st.info("An admin reset your password. Set a new one to go on.")
            credentials.password_form(who, forced=True)
        else:
            credentials.enrolment(who, required=True)

    page = st.Page(step, title="Finish signing in", url_path=SIGN_IN_PATH, default=True)
    st.navigation([page, *hidden], position="hidden")
    with st.sidebar:
        st.markdown(f"Signed in as **{who.username}** ({who.role})")
        if st.button("Sign out", key="sign_out"):
            auth.sign_out(who)
            st.rerun()
    step()


main()
