"""Partners: fees per direction, callback URL, card pool, status. Every change is audited
and published to ``config-partners``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from db.models import PARTNER_STATUSES
from db.repositories import cards, partners
from domain.text import IDENTIFIER, LABEL
from ops_console import auth, changes, form_text, runtime
from ops_console.roles import page_title

who = auth.require("partners")
st.title(page_title("partners"))
changes.show_notice()

with runtime.sessions()() as session:
    listed = partners.list_partners(session)
    pools = [pool.pool_id for pool in cards.list_pools(session)]
st.dataframe(pd.DataFrame([terms.as_dict() for terms in listed]), hide_index=True, width="stretch")
NO_POOL = "(none)"


def terms_form(key: str, current: partners.PartnerTerms | None) -> dict[str, Any] | None:
    """The form's values once submitted (``None`` before)."""
    with st.form(key):
        if current is None:
            partner_id = st.text_input("Partner id (a-z, 0-9, '-', '_')", key=f"{key}_id")
        name = st.text_input("Name", current.name if current else "", key=f"{key}_name")
        columns = st.columns(3)
        deposit = columns[0].number_input(
            "Deposit fee (basis points)",
            value=current.deposit_fee_bp if current else 0,
            step=1,
            key=f"{key}_deposit",
        )
        withdrawal = columns[1].number_input(
            "Withdrawal fee (basis points)",
            value=current.withdrawal_fee_bp if current else 0,
            step=1,
            key=f"{key}_withdrawal",
        )
        status = columns[2].selectbox(
            "Status",
            PARTNER_STATUSES,
            index=PARTNER_STATUSES.index(current.status) if current else 0,
            key=f"{key}_status",
        )
        url = st.text_input(
            "Callback URL (http or https; empty for none)",
            (current.callback_url or "") if current else "",
            key=f"{key}_url",
        )
        options = [NO_POOL, *pools]
        pool = st.selectbox(
            "Card pool",
            options,
            index=options.index(current.pool_id) if current and current.pool_id in pools else 0,
            key=f"{key}_pool",
        )
        if not st.form_submit_button("Save" if current else "Create partner", type="primary"):
            return None
    values: dict[str, Any] = {
        "name": name,
        "deposit_fee_bp": int(deposit),
        "withdrawal_fee_bp": int(withdrawal),
        "status": status,
        "callback_url": url.strip() or None,
        "pool_id": None if pool == NO_POOL else pool,
    }
    texts = [("Name", name, LABEL), ("Callback URL", url.strip(), LABEL)]
    if current is None:
        values["partner_id"] = partner_id.strip()
        texts.append(("Partner id", values["partner_id"], IDENTIFIER))
    return None if form_text.refused(*texts) else values


edit, create = st.tabs(["Edit a partner", "New partner"])
with edit:
    by_id = {terms.partner_id: terms for terms in listed}
    chosen = st.selectbox("Partner", list(by_id), key="partner_pick") if by_id else None
    if chosen is not None:
        current = by_id[chosen]
        edited = terms_form(f"edit_{chosen}", current)
        if edited is not None:
            partner_id, version, change = current.partner_id, current.version, edited
            saved = changes.apply(
                lambda s: partners.update_partner(
                    s, partner_id, actor=who.username, expected_version=version, **change
                )
            )
            if saved is not None:
                warning = changes.publish(partners=[partners.partner_config(saved)])
                changes.done(f"Partner {chosen} saved (version {saved.version}).", warning)
with create:
    created = terms_form("new_partner", None)
    if created is not None:
        fresh = created
        saved = changes.apply(lambda s: partners.create_partner(s, actor=who.username, **fresh))
        if saved is not None:
            warning = changes.publish(partners=[partners.partner_config(saved)])
            changes.done(f"Partner {saved.partner_id} created.", warning)
