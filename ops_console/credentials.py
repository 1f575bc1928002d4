"""The forms of one's own credentials: password change and two-factor enrolment.

Used on *My account* and, before anything else, right after a sign-in that needs them: an
admin without a second factor is sent to enrolment, a user whose reset an admin forced to a
new password (``app.py``).

Enrolment writes through ``db.repositories.second_factor``: a fresh secret is sealed in
PostgreSQL while it waits for its first code, shown as a QR code drawn here (``segno``, no
external service) and as text; the first right code turns it on and the recovery codes are
shown once (they are kept only as argon2id hashes).
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import segno
import streamlit as st

from db.crypto import SecretBox
from db.repositories import second_factor
from db.repositories import users as users_repo
from db.repositories.errors import RepositoryError
from ops_console import auth, runtime
from ops_console.api_client import ApiCallError, Challenge

#: Recovery codes waiting to be shown (once) after enrolment or renewal.
CODES_KEY = "recovery_codes_once"


def qr_png(uri: str) -> bytes:
    """The QR code of ``uri`` as PNG bytes (drawn locally)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def _user_id(who: auth.Who) -> uuid.UUID:
    with runtime.sessions()() as session:
        user = users_repo.get_user(session, who.username)
    if user is None:
        st.error("Your user no longer exists.")
        st.stop()
    return user.id


def password_form(who: auth.Who, *, forced: bool = False) -> None:
    """Change one's own password, the current one required. Every session of the user
    ends (the API does it); the console then signs in again with the new password, or, for
    a user with two-factor sign-in, asks for a fresh sign-in."""
    title = "Set a new password" if forced else "Change password"
    with st.form("password_change", clear_on_submit=True):
        st.markdown(f"**{title}**")
        current = st.text_input("Current password", type="password", key="pw_current")
        new = st.text_input(
            f"New password (at least {users_repo.MIN_PASSWORD_LENGTH} characters)",
            type="password",
            key="pw_new",
        )
        again = st.text_input("New password again", type="password", key="pw_again")
        submitted = st.form_submit_button(title, type="primary" if forced else "secondary")
    if not submitted:
        return
    if new != again:
        st.error("The new passwords differ.")
        return
    if len(new) < users_repo.MIN_PASSWORD_LENGTH:
        st.error(
            f"The new password must have at least {users_repo.MIN_PASSWORD_LENGTH} characters."
        )
        return
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
        return
    try:
        signed = runtime.api().login(who.username, new, auth.browser_address())
    except ApiCallError as error:  # changed, but this session was closed with the rest
        auth.forget(f"Password changed. Sign in again: {auth.refusal_text(error)}")
        st.rerun()
    if isinstance(signed, Challenge):  # the second factor is asked for again
        auth.forget("Password changed; every session was closed. Sign in with the new one.")
        st.rerun()
    auth.keep(signed)
    st.session_state["password_changed"] = True
    st.rerun()


def show_recovery_codes() -> bool:
    """The recovery codes of a fresh enrolment or renewal, shown this once; ``True`` while
    they are on screen."""
    codes = st.session_state.get(CODES_KEY)
    if not codes:
        return False
    st.success("Two-factor sign-in is on.")
    st.warning(
        "Save these recovery codes now (a password manager, or on paper). Each one signs you "
        "in once without your phone. They will not be shown again."
    )
    st.code("\n".join(codes), language=None)
    if st.button("I have saved my recovery codes", key="codes_saved", type="primary"):
        del st.session_state[CODES_KEY]
        st.rerun()
    return True


def enrolment(who: auth.Who, *, required: bool) -> None:
    """Set up two-factor sign-in: a QR code for the authenticator app, then its code."""
    if show_recovery_codes():
        return
    settings = runtime.settings()
    box = SecretBox.from_settings()
    user_id = _user_id(who)
    if required:
        st.info(
            f"Your role ({who.role}) must sign in with a second factor. Set it up now: "
            "nothing else opens before."
        )
    with runtime.sessions().begin() as session:
        pending = second_factor.pending_enrolment(
            session, box, user_id, issuer=settings.totp_issuer
        )
        if pending is None:
            pending = second_factor.begin_enrolment(
                session, box, user_id, issuer=settings.totp_issuer
            )
    st.markdown(
        "1. Scan this code with an authenticator app (any TOTP app: FreeOTP, Aegis, "
        "Google Authenticator, 1Password ...), or type the key below into it."
    )
    st.image(qr_png(pending.uri), caption="Keeper two-factor sign-in", width=220)
    st.text_input("Key", value=pending.secret, disabled=True, key="totp_key")
    with st.form("totp_confirm", clear_on_submit=True):
        code = st.text_input("2. The 6-digit code the app shows now", key="totp_code")
        submitted = st.form_submit_button("Turn on two-factor sign-in", type="primary")
    if not submitted:
        return
    try:
        with runtime.sessions().begin() as session:
            codes = second_factor.confirm_enrolment(session, box, user_id, code, datetime.now(UTC))
    except RepositoryError as error:
        st.error(str(error))
        return
    st.session_state[CODES_KEY] = codes
    st.rerun()


def second_factor_section(who: auth.Who) -> None:
    """*My account*: the state of two-factor sign-in, renewal of recovery codes, or
    enrolment for a role that may choose."""
    st.markdown("**Two-factor sign-in**")
    if show_recovery_codes():
        return
    user_id = _user_id(who)
    with runtime.sessions()() as session:
        state = second_factor.status(session, user_id)
    if not state.enabled:
        st.caption(
            "Off. Your role may choose; with it on, a stolen password alone no longer opens "
            "your account."
        )
        if st.toggle("Set up two-factor sign-in", key="totp_setup"):
            enrolment(who, required=False)
        return
    st.write(
        f"On since {state.confirmed_at:%Y-%m-%d %H:%M} UTC; "
        f"{state.recovery_codes_left} unused recovery code(s). A lost phone: an admin resets "
        "it."
    )
    if st.button("New recovery codes (the old ones stop working)", key="codes_renew"):
        with runtime.sessions().begin() as session:
            st.session_state[CODES_KEY] = second_factor.new_recovery_codes(session, user_id)
        st.rerun()
