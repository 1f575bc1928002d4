"""Card pools and cards: a card number is typed once, sealed, and shown masked from then on;
limits, expiry, status and holidays are edited here and published to ``config-cards``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from db.crypto import SecretBox
from db.models import CARD_STATUSES
from db.repositories import cards
from domain.text import IDENTIFIER, LABEL, SECRET
from ops_console import auth, changes, form_text, runtime
from ops_console.roles import page_title
from schemas.cards import CardConfigured

LIMIT_FIELDS = {
    "daily_limit_minor": "Daily amount limit (minor units)",
    "monthly_limit_minor": "Monthly amount limit (minor units)",
    "daily_count_limit": "Daily order count limit",
    "monthly_count_limit": "Monthly order count limit",
    "min_order_minor": "Smallest order (minor units)",
    "max_order_minor": "Largest order (minor units)",
}

who = auth.require("cards")
st.title(page_title("cards"))
changes.show_notice()

with runtime.sessions()() as session:
    pools = cards.list_pools(session)
    listed = cards.list_cards(session)
configs = {str(card.card_id): card for card in listed}


def limit_inputs(key: str, current: dict[str, Any] | None) -> dict[str, Any]:
    """Six integer inputs; below-zero values are refused by the repository with a message."""
    columns = st.columns(3)
    return {
        name: int(
            columns[i % 3].number_input(
                label, value=int(current[name]) if current else 0, step=1, key=f"{key}_{name}"
            )
        )
        for i, (name, label) in enumerate(LIMIT_FIELDS.items())
    }


def publish_card(card_id: str, message: str) -> None:
    with runtime.sessions()() as session:
        config = cards.card_config(session, card_id)
    changes.done(message, changes.publish(cards=[config] if config else []))


def save_card(card_id: str, work: Callable[[Session], CardConfigured], message: str) -> None:
    if changes.apply(work) is not None:
        publish_card(card_id, message)


cards_tab, add_tab, edit_tab, pools_tab = st.tabs(["Cards", "Add a card", "Edit a card", "Pools"])

with pools_tab:
    st.dataframe(
        pd.DataFrame([asdict(pool) for pool in pools], columns=["pool_id", "name", "description"]),
        hide_index=True,
        width="stretch",
    )
    with st.form("new_pool", clear_on_submit=True):
        pool_id = st.text_input("Pool id (a-z, 0-9, '-', '_')", key="pool_id")
        pool_name = st.text_input("Name", key="pool_name")
        description = st.text_input("Description", key="pool_description")
        if st.form_submit_button("Create pool") and not form_text.refused(
            ("Pool id", pool_id.strip(), IDENTIFIER),
            ("Name", pool_name, LABEL),
            ("Description", description.strip(), LABEL),
        ):
            made = changes.apply(
                lambda s: cards.create_pool(
                    s,
                    pool_id=pool_id.strip(),
                    name=pool_name,
                    description=description.strip() or None,
                    actor=who.username,
                )
            )
            if made is not None:
                changes.done(f"Pool {made.pool_id} created.")

with cards_tab:
    st.dataframe(
        pd.DataFrame([asdict(card) for card in listed]).drop(columns=[], errors="ignore"),
        hide_index=True,
        width="stretch",
    )

with add_tab:
    if not pools:
        st.info("Create a pool first.")
    else:
        # clear_on_submit: the number does not linger in the browser session after a submit.
        with st.form("new_card", clear_on_submit=True):
            columns = st.columns(3)
            pool = columns[0].selectbox("Pool", [p.pool_id for p in pools], key="card_pool")
            pan = columns[1].text_input(
                "Card number (entered once, then only shown masked)",
                type="password",
                key="card_pan",
            )
            currency = columns[2].text_input("Currency (ISO 4217)", "RUB", key="card_currency")
            columns = st.columns(3)
            bank = columns[0].text_input("Bank", key="card_bank")
            holder = columns[1].text_input("Holder", key="card_holder")
            expires = columns[2].date_input(
                "Expires on", date.today() + timedelta(days=3 * 365), key="card_expires"
            )
            limits = limit_inputs("card_new", None)
            submitted = st.form_submit_button("Add card", type="primary")
        if submitted:
            st.session_state.pop("card_pan", None)  # typed once: never kept for a rerun
        if submitted and not form_text.refused(
            ("Card number", pan, SECRET),
            ("Currency", currency.strip(), LABEL),
            ("Bank", bank, LABEL),
            ("Holder", holder, LABEL),
        ):
            box = SecretBox.from_settings()
            added = changes.apply(
                lambda s: cards.add_card(
                    s,
                    box,
                    pool_id=pool,
                    pan=pan,
                    bank=bank,
                    holder=holder,
                    currency=currency.strip().upper(),
                    expires_on=expires,
                    actor=who.username,
                    **limits,
                )
            )
            if added is not None:
                publish_card(str(added), f"Card {added} added.")

with edit_tab:
    if not configs:
        st.info("No card yet.")
    else:
        chosen = st.selectbox(
            "Card",
            list(configs),
            format_func=lambda c: (
                f"{configs[c].pan_masked} · {configs[c].pool_id} · {configs[c].status}"
            ),
            key="card_pick",
        )
        with runtime.sessions()() as session:
            config = cards.card_config(session, chosen)
        assert config is not None
        current = config.model_dump()
        with st.form(f"limits_{chosen}"):
            st.markdown(f"**Limits and expiry of {config.pan_masked}**")
            new_expiry = st.date_input("Expires on", config.expires_on, key=f"exp_{chosen}")
            new_limits = limit_inputs(f"edit_{chosen}", current)
            version = config.version
            if st.form_submit_button("Save limits", type="primary"):
                save_card(
                    chosen,
                    lambda s: cards.update_card(
                        s,
                        chosen,
                        actor=who.username,
                        expected_version=version,
                        expires_on=new_expiry,
                        **new_limits,
                    ),
                    f"Card {config.pan_masked} saved.",
                )
        halves = st.columns(2)
        with halves[0].form(f"status_{chosen}"):
            status = st.selectbox(
                "Status",
                CARD_STATUSES,
                index=CARD_STATUSES.index(config.status.value),
                key=f"status_{chosen}_value",
            )
            if st.form_submit_button("Set status"):
                save_card(
                    chosen,
                    lambda s: cards.set_card_status(s, chosen, status, actor=who.username),
                    f"Card {config.pan_masked} is {status}.",
                )
        with halves[1].form(f"holiday_{chosen}"):
            holiday = config.holiday_until_ms
            st.markdown(
                "On holiday until "
                + datetime.fromtimestamp(holiday / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
                if holiday
                else "Not on holiday"
            )
            until_day = st.date_input(
                "Holiday until (UTC)", date.today() + timedelta(days=1), key=f"hol_d_{chosen}"
            )
            until_time = st.time_input("at", time(0, 0), key=f"hol_t_{chosen}")
            pause, end = st.columns(2)
            until = datetime.combine(until_day, until_time, tzinfo=UTC)
            if pause.form_submit_button("Start holiday"):
                save_card(
                    chosen,
                    lambda s: cards.set_card_holiday(s, chosen, until, actor=who.username),
                    f"Card {config.pan_masked} on holiday until {until:%Y-%m-%d %H:%M} UTC.",
                )
            if end.form_submit_button("End holiday"):
                save_card(
                    chosen,
                    lambda s: cards.set_card_holiday(s, chosen, None, actor=who.username),
                    f"Card {config.pan_masked} back from holiday.",
                )
