"""Partner portal: the partner's terms as the platform set them (fees, order limits, request
rate), read-only, and the callback URL, which the partner edits itself (audited as
``partner.update``, published to the agents like an admin's change)."""

from __future__ import annotations

from typing import Final

import streamlit as st

from db.repositories import partners, portal_actions
from db.repositories import portal as repo
from domain.text import LABEL
from ops_console import changes, fmt, form_text, portal, runtime
from ops_console.roles import page_title

PAGE: Final = "portal_settings"

scope = portal.page_scope(PAGE)
st.title(page_title(PAGE))
changes.show_notice()
terms = portal.read(repo.partner_settings, scope)
if terms is None:
    st.error(portal.UNBOUND)
    st.stop()

st.subheader(f"{terms.name} ({terms.partner_id})")
top = st.columns(3)
top[0].metric("Status", terms.status)
top[1].metric("Deposit fee", f"{terms.deposit_fee_bp / 100:.2f} %")
top[2].metric("Withdrawal fee", f"{terms.withdrawal_fee_bp / 100:.2f} %")
st.caption(
    f"Fees in basis points: deposit {terms.deposit_fee_bp} bp, withdrawal "
    f"{terms.withdrawal_fee_bp} bp. Set by Keeper; ask your account manager to change them."
)

st.markdown("**Order limits**")
ranges = terms.order_ranges
if ranges:
    st.table(
        {
            "currency": [r.currency for r in ranges],
            "smallest deposit": [fmt.money(r.min_order_minor, r.currency) for r in ranges],
            "largest deposit": [fmt.money(r.max_order_minor, r.currency) for r in ranges],
        }
    )
    st.caption("What a card of your pool takes; a deposit outside it is declined (no_requisite).")
else:
    st.info("No card takes deposits for you yet: deposits are declined (no_requisite).")
settings = runtime.settings()
rate = settings.partner_rates.get(terms.partner_id, settings.partner_rate_per_s)
burst = (
    max(1, int(2 * rate)) if terms.partner_id in settings.partner_rates else settings.partner_burst
)
st.caption(
    f"API requests: {rate:g} a second with bursts of {burst} per API process"
    + (" (unlimited)." if rate == 0 else "; past it the API answers 429 rate_limited.")
)

st.markdown("**Callback URL**")
st.caption(
    "Where Keeper posts your order callbacks (an order's own callback_url wins). Empty: no "
    "callbacks are sent."
)
with st.form("portal_callback_url"):
    url = st.text_input("Callback URL", value=terms.callback_url or "", key="ps_url")
    saved = st.form_submit_button("Save callback URL", type="primary")
if saved and not form_text.refused(("Callback URL", url, LABEL)):
    version = terms.version
    changed = changes.apply(
        lambda s: portal_actions.set_callback_url(
            s, scope, url.strip() or None, expected_version=version
        )
    )
    if changed is not None:
        warning = changes.publish(partners=[partners.partner_config(changed)])
        changes.done(f"Callback URL saved: {changed.callback_url or 'none'}.", warning)
