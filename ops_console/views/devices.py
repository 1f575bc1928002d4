"""Devices: the phones that forward each card's bank messages (docs/devices.md).

Register a device for a card (its secret is shown once), revoke one, and see each device's
health: when it was last heard, and whether its card is out of rotation for its silence.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial

import pandas as pd
import streamlit as st

from db.crypto import SecretBox
from db.repositories import cards, devices, notifications
from ops_console import auth, changes, runtime
from ops_console.roles import page_title

SECRET_KEY = "device_secret"  # noqa: S105 - a session-state key, not a secret

who = auth.require("devices")
st.title(page_title("devices"))
changes.show_notice()

issued = st.session_state.pop(SECRET_KEY, None)
if issued:
    device_id, key_id, secret = issued
    st.warning("Enter these on the phone now: the secret is shown this once.")
    st.code(f"device: {device_id}\nkey id: {key_id}\nsecret: {secret}", language="text")

with runtime.sessions()() as session:
    known = devices.list_devices(session)
    card_list = cards.list_cards(session)
    policies = notifications.pool_policies(session)

if known:
    st.dataframe(pd.DataFrame([asdict(d) for d in known]), hide_index=True, width="stretch")
else:
    st.info("No device yet.")

st.subheader("Register a device")
labels = {str(c.card_id): f"{c.pan_masked} · {c.pool_id}" for c in card_list}
with st.form("dev_register"):
    device_id = st.text_input("Device id (a slug, e.g. phone-4417)", key="dev_id")
    card_id = st.selectbox("Card", list(labels), format_func=labels.__getitem__, key="dev_card")
    if st.form_submit_button("Register", type="primary"):
        box = SecretBox.from_settings()
        result = changes.apply(
            lambda s: devices.register_device(s, box, device_id.strip(), card_id, who.username)
        )
        if result is not None:
            st.session_state[SECRET_KEY] = (device_id.strip(), *result)
            changes.done(f"Device {device_id.strip()} registered.")

active = [d.device_id for d in known if d.status == "active"]
if active:
    st.subheader("Revoke a device")
    chosen = st.selectbox("Device", active, key="dev_revoke_pick")
    if st.button("Revoke", key="dev_revoke") and changes.apply(
        lambda s: devices.revoke_device(s, chosen, who.username)
    ):
        changes.done(f"Device {chosen} revoked: its requests are refused from now on.")

st.subheader("Match policy per pool")
st.caption(
    "auto: a bank notification that matches one open deposit approves it; suggest: the "
    "operator queue shows the match and one click approves."
)
for pool_id, current in policies.items():
    picked = st.radio(
        pool_id,
        ["suggest", "auto"],
        index=["suggest", "auto"].index(current),
        horizontal=True,
        key=f"dev_policy_{pool_id}",
    )
    if picked != current and changes.apply(
        partial(notifications.set_match_policy, pool_id=pool_id, policy=picked, actor=who.username)
    ):
        changes.done(f"Pool {pool_id}: {picked}.")
