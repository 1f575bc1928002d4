"""Who is signed in: the API's session token in ``st.session_state``, checked against
PostgreSQL on every run.

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
from ops_console.api_client import ApiCallError
from ops_console.roles import may_open

AUTH_KEY = "auth"
NOTICE_KEY = "auth_notice"


@dataclass(frozen=True, slots=True)
class Who:
    username: str
    role: str
    token: str


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
    return Who(user.username, user.role, token)


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
    return who


def sign_in_page() -> None:
    st.title("Keeper console")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice)
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
    st.session_state[AUTH_KEY] = {
        "token": signed.token,
        "username": signed.username,
        "role": signed.role,
    }
    st.rerun()


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
