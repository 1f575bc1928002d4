"""Keeper operations console: ``streamlit run ops_console/app.py``.

The navigation offers only the pages the signed-in role may open (``roles.PAGE_ROLES``);
signed out, the only page is the sign-in form. Every run the user causes checks the session
against PostgreSQL (idle and absolute timeouts), so an expired session lands on sign-in.
"""

from __future__ import annotations

import streamlit as st

from ops_console import auth
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


main()
