"""Who is signed in: the API's session token in ``st.session_state``, checked against
PostgreSQL on every run.

Sign-in is the API's: a password, and for a user with two-factor sign-in a second step
with the code (the challenge between the two steps is kept in ``st.session_state`` only,
never the password).

The token comes from ``POST /v1/auth/login``, which throttles failed attempts per username
and per address (the browser's address is passed on as ``X-Forwarded-For``; the API counts
it only if the console's host is one of its ``KEEPER_TRUSTED_PROXIES``, otherwise every
console sign-in counts against the console's own address). Its idle and absolute limits live in
``console_sessions``, the table the API itself checks. A run the user caused (a click, a
page switch) counts as activity and moves ``last_seen_at``; the queue's self-refresh only
peeks, so an abandoned console still times out.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

import streamlit as st

from db.repositories import sessions as sessions_repo
from ops_console import runtime
from ops_console.api_client import ApiCallError, Challenge, SignedIn
from ops_console.roles import may_open

AUTH_KEY = "auth"
NOTICE_KEY = "auth_notice"


CHALLENGE_KEY = "sign_in_challenge"


@dataclass(frozen=True, slots=True)
class Who:
    username: str
    role: str
    token: str
    #: Two-factor sign-in is on; an admin forced a password reset; notifications opt-in.
    second_factor: bool = False
    must_change_password: bool = False
    notify_desktop: bool = False
    must_enrol: bool = False


def current_user(*, touch: bool = True) -> Who | None:
    """The signed-in user, or ``None`` (then any stale token is forgotten)."""
    state = st.session_state.get(AUTH_KEY)
    if not state:
        return None
    token = state["token"]
    check = sessions_repo.session_user if touch else sessions_repo.peek_session_user
    idle_s = runtime.settings().session_idle_s
    with runtime.sessions().begin() as session:
        user = check(session, token, datetime.now(UTC), idle_s)
    if user is None:
        forget("Your session expired or was closed. Please sign in again.")
        return None
    required = user.role in runtime.settings().second_factor_roles
    return Who(
        user.username,
        user.role,
        token,
        second_factor=user.second_factor,
        must_change_password=user.must_change_password,
        notify_desktop=user.notify_desktop,
        must_enrol=required and not user.second_factor,
    )


def forget(notice: str | None = None) -> None:
    """Drop everything this browser session knew (token, selections, notices)."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if notice:
        st.session_state[NOTICE_KEY] = notice


def require(page: str) -> Who:
    """The user if their role may open ``page``; otherwise the page stops with a refusal."""
    who = current_user(touch=False)
    if who is None:
        st.warning("Please sign in.")
        st.stop()
    if not may_open(who.role, page):
        st.error(f"Your role ({who.role}) may not open this page.")
        st.stop()
    if who.must_enrol or who.must_change_password:  # app.py shows only that step
        st.warning("Finish signing in first.")
        st.stop()
    return who


def sign_in_page() -> None:
    st.title("Keeper console")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice)
    if st.session_state.get(CHALLENGE_KEY):
        _code_step()
        return
    with st.form("sign_in"):
        username = st.text_input("Username", key="sign_in_username")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    if not username.strip() or not password:
        st.error("Enter a username and a password.")
        return
    try:
        signed = runtime.api().login(username.strip(), password, browser_address())
    except ApiCallError as error:
        st.error(refusal_text(error))
        return
    if isinstance(signed, Challenge):
        st.session_state[CHALLENGE_KEY] = {"challenge": signed.challenge}
    else:
        keep(signed)
    st.rerun()


def _code_step() -> None:
    """Step 2 of a sign-in with two-factor sign-in: the app's code or a recovery code."""
    with st.form("sign_in_code"):
        st.markdown(
            "**Two-factor sign-in.** Type the 6-digit code your authenticator app "
            "shows, or one of your recovery codes."
        )
        code = st.text_input("Code", key="sign_in_code", autocomplete="one-time-code")
        submitted = st.form_submit_button("Verify", type="primary")
    if st.button("Start over", key="sign_in_restart"):
        st.session_state.pop(CHALLENGE_KEY, None)
        st.rerun()
    if not submitted:
        return
    if not code.strip():
        st.error("Enter the code.")
        return
    challenge = st.session_state[CHALLENGE_KEY]["challenge"]
    try:
        signed = runtime.api().login_second_factor(challenge, code.strip(), browser_address())
    except ApiCallError as error:
        if error.code == "invalid_challenge":
            st.session_state.pop(CHALLENGE_KEY, None)
            st.session_state[NOTICE_KEY] = "The sign-in took too long. Please sign in again."
            st.rerun()
        st.error(
            "That code is wrong or was used already. Wait for the next code."
            if error.code == "invalid_code"
            else refusal_text(error)
        )
        return
    st.session_state.pop(CHALLENGE_KEY, None)
    keep(signed)
    st.rerun()


def keep(signed: SignedIn) -> None:
    """Remember a fresh session in this browser session."""
    st.session_state[AUTH_KEY] = {
        "token": signed.token,
        "username": signed.username,
        "role": signed.role,
    }


def browser_address() -> str | None:
    """The browser's address as Streamlit saw it (``None`` on localhost or when unknown)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None


def refusal_text(error: ApiCallError) -> str:
    """What to tell someone whose sign-in the API refused."""
    if error.code == "too_many_attempts":
        wait = f"{error.retry_after_s} s" if error.retry_after_s else "a moment"
        return f"Too many sign-in attempts. Try again in {wait}."
    if error.status == 401:
        return "Wrong username or password."
    return error.message


def sign_out(who: Who) -> None:
    with contextlib.suppress(ApiCallError):  # an expired session is signed out already
        runtime.api().logout(who.token)
    forget("You are signed out.")
