"""Console users and roles: create, change role, disable (which closes their sessions),
reset a second factor, force a new password. Admins cannot demote or disable themselves, so
the console never loses its last admin by accident. A partner user is created with the
partner it belongs to and keeps it: its role does not change (the repository refuses), only
whether it is enabled."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from db.models import CONSOLE_ROLES
from db.repositories import second_factor, users
from db.repositories.users import PARTNER_ROLE
from domain.text import IDENTIFIER, SECRET
from ops_console import auth, changes, form_text, queries, runtime
from ops_console.roles import page_title

who = auth.require("users")
st.title(page_title("users"))
changes.show_notice()

listed = queries.users(runtime.engine())
st.dataframe(listed, hide_index=True, width="stretch")


def credentials_admin(name: str) -> None:
    """Reset a user's second factor (a lost phone) or force a new password; both end the
    user's sessions and are audited."""
    st.markdown("**Sign-in**")
    columns = st.columns(2)
    if columns[0].button("Reset two-factor sign-in", key="reset_second_factor"):
        now = datetime.now(UTC)
        reset = changes.apply(lambda s: second_factor.reset(s, name, actor=who.username, now=now))
        if reset is not None:
            changes.done(
                f"{name}'s second factor was removed; their sessions ended and the next "
                "sign-in sets a new one up."
                if reset
                else f"{name} has no second factor."
            )
    with columns[1].form("force_reset", clear_on_submit=True):
        temporary = st.text_input(
            "Temporary password (optional: for a user who forgot theirs)",
            type="password",
            key="reset_temporary",
        )
        forced = st.form_submit_button("Force a new password at next sign-in")
    if forced and not (temporary and form_text.refused(("Temporary password", temporary, SECRET))):
        done = changes.apply(
            lambda s: users.force_password_reset(
                s, name, actor=who.username, temporary_password=temporary or None
            )
        )
        if done is not None:
            changes.done(f"{name} must set a new password at the next sign-in.")


change, create = st.tabs(["Change a user", "New user"])
with change:
    others = [name for name in listed["username"] if name != who.username]
    if not others:
        st.info("No other user.")
    else:
        name = st.selectbox("User", others, key="user_pick")
        row = listed[listed["username"] == name].iloc[0]
        staff_roles = [r for r in CONSOLE_ROLES if r != PARTNER_ROLE]
        bound = row["role"] == PARTNER_ROLE
        if bound:
            st.caption(f"Partner user of **{row['partner_id']}**: its role does not change.")
        role = st.selectbox(
            "Role",
            [PARTNER_ROLE] if bound else staff_roles,
            index=0 if bound else staff_roles.index(row["role"]),
            key="user_role",
            disabled=bound,
        )
        columns = st.columns(2)
        if columns[0].button("Save role", key="save_role", type="primary", disabled=bound):
            changed = changes.apply(
                lambda s: users.set_user_role(s, name, role, actor=who.username)
            )
            if changed is not None:
                changes.done(f"{name} is now {role}." if changed else f"{name} already is {role}.")
        active = bool(row["is_active"])
        label = "Disable (closes their sessions)" if active else "Enable"
        if columns[1].button(label, key="toggle_user"):
            changed = changes.apply(
                lambda s: users.set_user_active(s, name, not active, actor=who.username)
            )
            if changed is not None:
                changes.done(f"{name} {'disabled' if active else 'enabled'}.")
        credentials_admin(name)

with create:
    with st.form("new_user", clear_on_submit=True):
        username = st.text_input("Username", key="new_username")
        new_role = st.selectbox("Role", CONSOLE_ROLES, index=1, key="new_role")
        new_partner = st.selectbox(
            f"Partner (for the {PARTNER_ROLE} role only)",
            ["", *queries.partner_ids(runtime.engine())],
            key="new_partner",
        )
        password = st.text_input(
            f"Initial password (at least {users.MIN_PASSWORD_LENGTH} characters)",
            type="password",
            key="new_password",
        )
        submitted = st.form_submit_button("Create user", type="primary")
    if submitted and not form_text.refused(
        ("Username", username, IDENTIFIER), ("Initial password", password, SECRET)
    ):
        created = changes.apply(
            lambda s: users.create_user(
                s, username, password, new_role, who.username, partner_id=new_partner or None
            )
        )
        if created is not None:
            of = f" of {new_partner}" if new_role == PARTNER_ROLE else ""
            changes.done(f"User {created.username} ({created.role}{of}) created.")
