"""Bank message templates (admin): the formats the intake reads bank notifications with.

Each template is a pattern with named fields (``amount`` required; ``currency``, ``tail``,
``balance``, ``counterparty``) in RE2 syntax, which runs in linear time whatever is typed
(no back-references, no look-arounds). Try a template on a sample message before saving; a
save is refused if the engine or the core refuses the template, and is audited.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.regex_engine import ENGINE
from db.repositories import bank_templates
from db.repositories.errors import InvalidInput
from domain.bank_messages import MessageKind, compile_templates, parse
from domain.errors import DomainError
from ops_console import auth, changes, runtime
from ops_console.roles import page_title

NEW = "(new template)"

who = auth.require("bank_templates")
st.title(page_title("bank_templates"))
changes.show_notice()

with runtime.sessions()() as session:
    rows = bank_templates.list_templates(session)
    images = [bank_templates.image(row) for row in rows]
st.dataframe(pd.DataFrame(images), hide_index=True, width="stretch")

chosen = st.selectbox("Edit", [NEW, *(i["template_id"] for i in images)], key="tpl_pick")
current = next((i for i in images if i["template_id"] == chosen), None)
# widget keys name the template: each template's form keeps its own values
with st.form("tpl_edit"):
    template_id = st.text_input(
        "Template id",
        value=current["template_id"] if current else "",
        key=f"tpl_id_{chosen}",
        disabled=current is not None,
    )
    bank = st.text_input("Bank", value=current["bank"] if current else "", key=f"tpl_bank_{chosen}")
    kinds = [k.value for k in MessageKind]
    kind = st.selectbox(
        "Kind",
        kinds,
        index=kinds.index(current["kind"]) if current else 0,
        key=f"tpl_kind_{chosen}",
    )
    pattern = st.text_area(
        "Pattern (RE2)", value=current["pattern"] if current else "", key=f"tpl_pattern_{chosen}"
    )
    senders = st.text_input(
        "Senders (comma-separated; empty: any)",
        value=", ".join(current["senders"]) if current else "",
        key=f"tpl_senders_{chosen}",
    )
    columns = st.columns(4)
    decimal_sep = columns[0].selectbox(
        "Decimal mark",
        [",", "."],
        index=[",", "."].index(current["decimal_sep"]) if current else 0,
        key=f"tpl_sep_{chosen}",
    )
    currency = columns[1].text_input(
        "Currency if not printed",
        value=(current or {}).get("currency") or "",
        key=f"tpl_cur_{chosen}",
    )
    priority = columns[2].number_input(
        "Priority (lower first)",
        0,
        1000,
        current["priority"] if current else 100,
        key=f"tpl_prio_{chosen}",
    )
    enabled = columns[3].checkbox(
        "Enabled", value=current["enabled"] if current else True, key=f"tpl_enabled_{chosen}"
    )
    sample = st.text_area("Try it on a message", key="tpl_sample")
    sample_sender = st.text_input("…from sender", key="tpl_sample_sender")
    trying = st.form_submit_button("Try")
    saving = st.form_submit_button("Save", type="primary")

if trying or saving:
    try:
        template = bank_templates.build(
            template_id=template_id.strip(),
            bank=bank.strip(),
            kind=MessageKind(kind),
            pattern=pattern,
            senders=[s.strip() for s in senders.split(",")],
            decimal_sep=decimal_sep,
            currency=currency.strip() or None,
            priority=int(priority),
            enabled=enabled,
        )
    except InvalidInput as error:
        st.error(f"Refused: {error.message}")
        st.stop()
    if trying:
        try:
            result = parse(sample, sample_sender.strip(), compile_templates([template], ENGINE))
        except DomainError as error:
            st.error(f"The message matches, but is refused: {error.message}")
        else:
            if result.parsed is None:
                st.warning("This template does not read that message (from that sender).")
            else:
                st.success(f"Read: {result.parsed}")
    if saving:
        version = current["version"] if current else None
        if changes.apply(
            lambda s: bank_templates.save_template(s, template, who.username, version)
        ):
            changes.done(f"Template {template.template_id} saved.")
