"""Card monitoring: each card's turnover today and this month against its limits, its
status, holiday and expiry, and the alerts the card monitor raised (docs/card-monitoring.md).

Read-only: holidays are set and ended on the cards page; automatic holidays come from the
monitor's rules, expired cards are retired by the card projector's expiry sweep.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import pandas as pd
import streamlit as st

from db.repositories import devices
from ops_console import auth, card_queries, fmt, runtime

PAGE: Final = "card_monitoring"
TITLE: Final = "Card monitoring"
EXPIRY_HORIZON_DAYS: Final = 30
ALERT_KINDS: Final = ("limit_share", "holiday_started", "expiring_soon", "expired")

auth.require(PAGE)
st.title(TITLE)
engine = runtime.engine()
now = datetime.now(UTC)


with runtime.sessions()() as session:
    phones = {d.card_id: d for d in devices.list_devices(session) if d.status == "active"}


def state_of(row: pd.Series) -> str:
    """One word for the card's state, the most pressing first."""
    if row["status"] != "active":
        return str(row["status"])
    phone = phones.get(str(row["card_id"]))
    if phone is not None and phone.silent_since is not None:
        return "device silent"  # out of rotation until the device is heard (ADR 0010)
    if row["expires_on"] < now.date():
        return "expired"
    holiday = row["holiday_until"]
    if holiday is not None and not pd.isna(holiday) and holiday > now:
        return "on holiday"
    if (row["expires_on"] - now.date()).days <= EXPIRY_HORIZON_DAYS:
        return "expiring soon"
    return "active"


columns = st.columns(3)
pool = columns[0].selectbox("Pool", ["all", *card_queries.pool_ids(engine)], key="cm_pool")
cards = card_queries.card_overview(engine, now, None if pool == "all" else pool)

st.subheader("Cards against their limits")
if cards.empty:
    st.info("No card yet: cards are added on the cards page.")
else:
    cards = card_queries.with_shares(cards)
    money = {
        name: [fmt.money(v, c) for v, c in zip(cards[name], cards["currency"], strict=True)]
        for name in ("day_minor", "daily_limit_minor", "month_minor", "monthly_limit_minor")
    }
    shown = pd.DataFrame(
        {
            "card": cards["pan_masked"],
            "pool": cards["pool_id"],
            "state": cards.apply(state_of, axis=1),
            "today": [
                f"{u} / {lim}"
                for u, lim in zip(money["day_minor"], money["daily_limit_minor"], strict=True)
            ],
            "today %": cards["day_amount_pct"],
            "orders today": [
                f"{u} / {lim}"
                for u, lim in zip(cards["day_count"], cards["daily_count_limit"], strict=True)
            ],
            "orders today %": cards["day_count_pct"],
            "this month": [
                f"{u} / {lim}"
                for u, lim in zip(money["month_minor"], money["monthly_limit_minor"], strict=True)
            ],
            "month %": cards["month_amount_pct"],
            "orders this month %": cards["month_count_pct"],
            "holiday until": cards["holiday_until"],
            "expires on": cards["expires_on"],
        }
    )
    percent = {
        name: st.column_config.ProgressColumn(name, format="%.0f%%", min_value=0, max_value=100)
        for name in ("today %", "orders today %", "month %", "orders this month %")
    }
    st.dataframe(shown, hide_index=True, width="stretch", column_config=percent)
    zones = sorted({z for z in cards["time_zone"] if isinstance(z, str)})
    st.caption(
        "Turnover is approved deposits (money in) by approval time; days and months are "
        f"calendar periods in {', '.join(zones) or 'UTC'}. Open orders are "
        "not included here; the pool agent counts them too when it hands out a card."
    )

st.subheader("Devices")
if not phones:
    st.info("No card has a device forwarding its bank messages: see the Devices page.")
else:
    health = pd.DataFrame(
        {
            "card": [d.pan_masked for d in phones.values()],
            "device": [d.device_id for d in phones.values()],
            "last heard": [d.last_seen_at for d in phones.values()],
            "health": [
                "silent: card out of rotation" if d.silent_since else "heard"
                for d in phones.values()
            ],
            "silent since": [d.silent_since for d in phones.values()],
        }
    )
    st.dataframe(health, hide_index=True, width="stretch")
    st.caption(
        "A card whose device is silent longer than the card projector's "
        "`device_silent_after_s` leaves rotation until the device is heard again."
    )

st.subheader("Alerts")
alert_columns = st.columns(2)
days = alert_columns[0].number_input("Days back", 1, 400, 7, key="cm_alert_days")
kinds = alert_columns[1].multiselect(
    "Kinds", ALERT_KINDS, default=list(ALERT_KINDS), key="cm_kinds"
)
alerts = card_queries.recent_alerts(engine, now - timedelta(days=int(days)), list(kinds) or None)
if alerts.empty:
    st.info("No alert in this period.")
else:
    st.dataframe(alerts.drop(columns=["card_id"]), hide_index=True, width="stretch")
    st.download_button(
        "Download card-alerts.csv",
        alerts.to_csv(index=False).encode(),
        file_name="card-alerts.csv",
        mime="text/csv",
        key="cm_alerts_csv",
    )

if not cards.empty:
    st.subheader("Daily turnover of one card")
    labels = dict(
        zip(cards["card_id"], cards["pan_masked"] + " · " + cards["pool_id"], strict=True)
    )
    chosen = st.selectbox("Card", list(labels), format_func=labels.__getitem__, key="cm_card")
    history = card_queries.daily_turnover(engine, chosen, now - timedelta(days=62))
    if history.empty:
        st.info("This card took no approved deposit in the last 62 days.")
    else:
        st.bar_chart(history.set_index("day")["in_minor"], y_label="minor units")
